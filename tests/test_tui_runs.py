"""The Runs screen the CLI way (issue 13): the comparison is `runs compare`'s own (lvm_core/
compare.py) with every baseline and the seed groups' intervals, the best column names its metric,
resume takes the newest complete checkpoint generation (issue 11), and plugins' own metrics can
be overlaid (issue 12)."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

from textual.widgets import DataTable, Select, Static

from lvm_core.evaluation import compare as run_compare
from lvm_core.evaluation.seed_stats import GROUP_JSON
from workbench.cli import main
from workbench.tui.app import WorkbenchApp

from ._tui_helpers import ScriptedRun, host, tui_state_dir, until, write_run  # noqa: F401 (fixtures)

SIZE = (140, 42)
PLAN = {"name": "a", "seed": 0, "model": {"arch": "mlp", "params": {"hidden_dim": 64}},
        "loss": [{"name": "mse", "weight": 1.0}]}


async def _mark(pilot, app, labels: list[str]) -> None:
    pane = app.runs_pane
    table = app.query_one("#runs-table", DataTable)
    table.focus()
    for label in labels:
        table.move_cursor(row=[r.label for r in pane.runs].index(label))
        await pilot.press("space")


async def _compare(pilot, app, labels: list[str]) -> None:
    """On Runs, mark the runs named `labels` and press c."""
    app.action_tab("runs")
    await pilot.pause()
    await _mark(pilot, app, labels)
    await pilot.press("c")
    await pilot.pause()


def _cli_compare(*paths: Path) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["runs", "compare", *map(str, paths)]) == 0
    return out.getvalue()


async def test_compare_shows_the_cli_comparison_and_its_plan_keys(host, tmp_path):
    runs = tmp_path / "runs"
    a = write_run(runs / "a-1", status="completed", plan=PLAN, margins=[-0.1, 0.05, 0.12])
    b = write_run(runs / "b-1", status="completed", margins=[-0.2, -0.05],
                  plan={**PLAN, "name": "b", "loss": [{"name": "mse", "weight": 0.5}]})
    app = WorkbenchApp(host=host, runs_dir=runs)
    async with app.run_test(size=SIZE) as pilot:
        await _compare(pilot, app, ["a-1", "b-1"])
        pane = app.runs_pane
        # the very keys `runs compare` writes (it was loss[mse].weight here, loss.mse.weight there)
        assert pane.diff == run_compare.plan_diff([PLAN, {**PLAN, "name": "b", "loss": [{"name": "mse", "weight": 0.5}]}])
        assert ("loss.mse.weight", [1.0, 0.5]) in pane.diff
        shown = str(app.query_one("#plan-diff", Static).render())
        assert "loss[mse]" not in shown
        cli = _cli_compare(a, b)
        # the CLI's plan-difference table, line for line, and every cell of its comparison table
        diff_block = cli.split("plan differences:\n", 1)[1].strip()
        for line in diff_block.splitlines():
            assert line.strip() in shown
        table = run_compare.comparison_rows(run_compare.run_rows([a, b]))
        for header, *cells in zip(*table):
            line = next(ln for ln in shown.splitlines() if ln.startswith(header + " "))
            assert line.split()[-len(cells):] == [c for cell in cells for c in cell.split()][-len(cells):]
        assert "copy-last cos" in shown and "0.5500" in shown and "ctx-mean cos" in shown and "0.5800" in shown


async def test_a_seed_group_is_listed_and_compared_with_its_intervals(host, tmp_path):
    runs = tmp_path / "runs"
    group = runs / "g-20260101-000000"
    for seed in (0, 1):
        write_run(group / f"g-seed{seed}", status="completed", margins=[-0.1, 0.02 + 0.01 * seed],
                  plan={**PLAN, "name": "g", "seed": seed})
    (group / GROUP_JSON).write_text(json.dumps({"runs": ["g-seed0", "g-seed1"], "status": "completed"}))
    app = WorkbenchApp(host=host, runs_dir=runs)
    async with app.run_test(size=SIZE) as pilot:
        app.action_tab("runs")
        await pilot.pause()
        labels = [r.label for r in app.runs_pane.runs]
        assert sorted(labels) == ["g-20260101-000000/g-seed0", "g-20260101-000000/g-seed1"]
        await _compare(pilot, app, labels)
        shown = str(app.query_one("#plan-diff", Static).render())
        # mean ± sd across the seeds, and the gain over each baseline (the CLI's seed table)
        assert "seeds (mean ± sd across runs" in shown
        assert "val vs copy_last" in shown and "val vs context_mean" in shown


async def test_the_best_column_names_its_metric_and_differs_per_run(host, tmp_path):
    runs = tmp_path / "runs"
    write_run(runs / "a-1", status="completed", plan=PLAN, margins=[-0.1, 0.12, 0.05])
    write_run(runs / "b-1", status="completed", plan=PLAN, margins=[-0.003, -0.2])
    app = WorkbenchApp(host=host, runs_dir=runs)
    async with app.run_test(size=SIZE) as pilot:
        app.action_tab("runs")
        await pilot.pause()
        table = app.query_one("#runs-table", DataTable)
        col = [str(c.label) for c in table.columns.values()].index("best")
        best = {table.get_row_at(i)[1]: table.get_row_at(i)[col] for i in range(table.row_count)}
        assert best == {"a-1": "val/cos +0.620 @1", "b-1": "val/cos +0.497 @0"}


async def test_resume_takes_the_newest_checkpoint_generation_or_says_there_is_none(host, tmp_path):
    runs = tmp_path / "runs"
    good = write_run(runs / "good-1", status="stopped", plan=PLAN, margins=[-0.2, -0.05], checkpoint=True)
    assert not (good / "checkpoints" / "last.state.pt").exists()  # the generation layout, not the old files
    none = write_run(runs / "none-1", status="failed", plan=PLAN, margins=[-0.2])
    (none / "checkpoints" / ".gen-000001-step-10-last.1.ab.tmp").mkdir(parents=True)  # killed mid-save
    run = ScriptedRun("complete")
    app = WorkbenchApp(host=host, runs_dir=runs, train_command=run, poll_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        app.action_tab("runs")
        await pilot.pause()
        table = app.query_one("#runs-table", DataTable)
        table.focus()
        table.move_cursor(row=[r.label for r in app.runs_pane.runs].index("none-1"))
        await pilot.press("r")
        await pilot.pause()
        said = str(app.query_one("#runs-message", Static).render())
        assert said == f"none-1: no complete checkpoint in {none / 'checkpoints'} to resume from"
        assert run.calls == []
        table.move_cursor(row=[r.label for r in app.runs_pane.runs].index("good-1"))
        await pilot.press("r")
        assert await until(pilot, lambda: run.calls and not app.training)
        assert run.calls == [{"plan": None, "run_dir": good, "resume": True}]


async def test_plugin_metrics_can_be_picked_and_overlaid(host, tmp_path):
    runs = tmp_path / "runs"
    lines = [{"kind": "PluginMetrics", "t": 1.0 + e, "plugin": "probe", "hook": "on_eval_end", "epoch": e,
              "step": 10 * (e + 1), "metrics": {"plugin/probe/norm": 1.0 + e}} for e in range(2)]
    write_run(runs / "a-1", status="completed", plan=PLAN, margins=[-0.1, 0.0], extra=lines)
    write_run(runs / "b-1", status="completed", plan=PLAN, margins=[-0.2, -0.1])
    app = WorkbenchApp(host=host, runs_dir=runs)
    async with app.run_test(size=SIZE) as pilot:
        await _compare(pilot, app, ["a-1", "b-1"])
        pane = app.runs_pane
        assert "plugin/probe/norm" in pane.metrics
        picker = app.query_one("#compare-metric", Select)
        picker.value = "plugin/probe/norm"
        await pilot.pause()
        assert pane.metric == "plugin/probe/norm"
        assert pane.compared == {"a-1": ([0.0, 1.0], [1.0, 2.0])}
        assert "b-1: no plugin/probe/norm recorded" in str(app.query_one("#plan-diff", Static).render())
