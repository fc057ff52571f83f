"""Pilot tests of the workbench screen: each screen's main path, asserting on widget state and
on the messages the app handled."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import Checkbox, DataTable, Input, RichLog, Select, SelectionList, Static, TabbedContent
from textual_plot import PlotWidget

from workbench.plugin_host import load_plugins
from workbench.tui.app import WorkbenchApp
from workbench.tui.data_pane import DiagnosticDone
from workbench.tui.dialogs import ConfirmScreen, HelpScreen
from workbench.tui.train_pane import TrainPane

from ._tui_helpers import until as _until, BrokenLosses, ScriptedRun, append_events, host, settle, tui_state_dir, write_run  # noqa: F401 (fixtures)
from .conftest import make_tiny_store

SIZE = (120, 40)


def alerts_text(app) -> str:
    """The alerts as one line of words (the log wraps them to its column's width)."""
    return " ".join(" ".join(str(line.text) for line in app.query_one("#alerts", RichLog).lines).split())


async def test_plugins_screen_lists_items_and_shows_a_failing_plugin():
    host = load_plugins(extra_plugins=[("broken_losses", BrokenLosses())])
    app = WorkbenchApp(host=host)
    async with app.run_test(size=SIZE) as pilot:
        app.action_tab("plugins")
        await pilot.pause()
        problems = str(app.query_one("#plugin-problems", Static).render())
        assert "plugin broken_losses" in problems
        assert "disabled, register_losses: RuntimeError: cannot import my_cuda_kernel" in problems
        assert app.query_one("#plugin-problems").has_class("error")
        table = app.query_one("#plugin-table", DataTable)
        names = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        assert "mse" in names and "transformer" in names and "A" in names
        table.focus()
        row = names.index("mlp")
        table.move_cursor(row=row)
        await pilot.pause()
        detail = str(app.query_one("#plugin-detail", Static).render())
        assert "model mlp" in detail and "hidden_dim: int = 1024" in detail
        # the app keeps working: the other tabs still answer
        app.action_tab("setup")
        await pilot.pause()
        assert app.query_one("#tabs", TabbedContent).active == "setup"


async def test_setup_from_scratch_builds_the_plan_with_a_live_parameter_count(tmp_path, host):
    store = make_tiny_store(tmp_path / "tiny", lengths=(12, 10, 11, 9, 12, 10), dim=16)
    run = ScriptedRun()
    app = WorkbenchApp(host=host, train_command=run)
    async with app.run_test(size=SIZE) as pilot:
        setup = app.setup_pane
        path_input = setup.query_one("#store-path", Input)
        path_input.value = str(store.path)
        await path_input.action_submit()
        await pilot.pause()
        assert "16" in str(setup.query_one("#store-manifest", Static).render())
        assert setup.dim == 16
        setup.query_one("#model-select", Select).value = "mlp"
        await settle(pilot, app)
        hidden = setup.query_one("#model-p-hidden_dim", Input)
        hidden.value = "8"
        await settle(pilot, app)
        # mlp on (5 x 16) -> 8 -> 16: a hand count of its linear layers
        assert setup.param_count == (5 * 16 * 8 + 8) + (8 * 16 + 16)
        assert f"{setup.param_count:,}" in str(setup.query_one("#param-count", Static).render())
        setup.query_one("#loss-on-directional_margin", Checkbox).value = True
        setup.query_one("#loss-w-directional_margin", Input).value = "0.5"
        setup.query_one("#loss-sched-directional_margin", Input).value = '{ kind = "step", epoch = 2, before = 0.0, after = 0.5 }'
        setup.query_one("#train-epochs", Input).value = "2"
        await pilot.pause()
        plan = setup.plan_dict()
        assert plan["data"]["store"] == str(store.path)
        assert plan["data"]["split"] == {"fractions": {"train": 0.8, "val": 0.2}, "seed": 0}
        assert plan["model"] == {"arch": "mlp", "params": {"hidden_dim": 8}}
        assert {"name": "directional_margin", "weight": 0.5,
                "schedule": {"kind": "step", "epoch": 2, "before": 0.0, "after": 0.5}} in plan["loss"]
        assert plan["train"]["epochs"] == 2
        # a bad field is reported by name, with every other problem
        hidden.value = "many"
        setup.query_one("#train-lr", Input).value = "fast"
        await pilot.pause()
        await app.action_train()
        await pilot.pause()
        msg = str(setup.query_one("#setup-message", Static).render())
        assert "model.params.hidden_dim: expected an integer, got 'many'" in msg and "train.lr: expected" in msg
        assert app.child is None and run.calls == []


async def test_train_screen_follows_the_child_run_and_stop_ends_it(tmp_path, host):
    run = ScriptedRun("wait")
    app = WorkbenchApp(host=host, train_command=run, runs_dir=tmp_path / "runs", poll_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+t")
        pane = app.query_one(TrainPane)
        # every wait is on a condition, never on time: the child and the app's poll run at the
        # machine's pace (the alert of epoch 1 is in events.jsonl, read in a later poll than
        # epoch 2's evaluation when the child writes between the two reads)
        assert await _until(pilot, lambda: pane.epochs_shown == 3 and len(pane.alerts) == 1, timeout=30)
        assert await _until(pilot, lambda: app.query_one("#tabs", TabbedContent).active == "train")
        assert app.training and pane.status == "running" and pane.device.startswith("cpu")
        child_pid = app.child.pid
        table = app.query_one("#epoch-table", DataTable)
        assert [table.get_row_at(i)[4] for i in range(3)] == ["-0.100", "-0.050", "+0.000"]
        assert table.get_row_at(0)[2] == "0.2500"  # epoch 0's loss: 1 / step 4
        assert table.get_row_at(0)[5] == "0.600"  # copy-last beside the model
        losses, evals = pane.series()
        assert losses["loss"][0] == [float(s) for s in range(1, 13)]
        assert evals["val/margin_vs_last"][0] == [0.0, 1.0, 2.0]
        assert [a["code"] for a in pane.alerts] == ["collapse"]
        plot = app.query_one("#val-plot", PlotWidget)
        # drawn at the next redraw tick: copy-last, context-mean, the model's line and its markers
        assert await _until(pilot, lambda: len(plot._datasets) == 4)
        assert run.calls[0]["run_dir"].parent == (tmp_path / "runs").resolve()
        assert run.calls[0]["plan"]["train"]["epochs"] >= 1  # the Setup form, saved as a plan file
        # quitting while training asks first; "no" keeps the run going
        await pilot.press("q")
        assert await _until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        assert await _until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert app.training
        await pilot.press("x")  # SIGINT to the child: it writes RunEnded "stopped" and exits 130
        assert await _until(pilot, lambda: not app.training, timeout=30)
        assert pane.status == "stopped"
        assert app.result == {"status": "stopped", "exit_code": 130}
        with pytest.raises(ProcessLookupError):
            os.kill(child_pid, 0)  # reaped, not left behind


async def test_quit_during_a_run_stops_it_then_exits(tmp_path, host):
    run = ScriptedRun("wait")
    app = WorkbenchApp(host=host, train_command=run, runs_dir=tmp_path / "runs", poll_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.train_pane
        await pilot.press("ctrl+t")
        assert await _until(pilot, lambda: pane.status == "running")
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("y")
        assert await _until(pilot, lambda: not app.is_running)
    assert app.return_value == 0
    assert pane.status == "stopped"
    assert app.child is None


async def test_a_crashing_run_is_shown_and_the_app_keeps_working(tmp_path, host):
    app = WorkbenchApp(host=host, train_command=ScriptedRun("crash"), runs_dir=tmp_path / "runs", poll_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+t")
        pane = app.query_one(TrainPane)
        assert await _until(pilot, lambda: pane.status == "failed")
        log = alerts_text(app)
        assert "the run ended early (failed)" in log and "RuntimeError: CUDA out of memory" in log
        assert not app.training and app.result == {"status": "failed", "exit_code": 1}
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)


async def test_a_child_that_cannot_run_the_plan_says_why(tmp_path, host):
    def bad_input(plan_file, run_dir, resume):  # what the headless CLI does with a bad file
        return [sys.executable, "-c", "import sys; print('error: data/x: not an article store', file=sys.stderr); sys.exit(2)"]

    app = WorkbenchApp(host=host, train_command=bad_input, runs_dir=tmp_path / "runs", poll_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+t")
        assert await _until(pilot, lambda: app.train_pane.status == "failed")
        log = alerts_text(app)
        assert "(bad input)" in log and "error: data/x: not an article store" in log


async def test_runs_screen_compares_two_runs_and_resumes_a_stopped_one(tmp_path, host):
    runs = tmp_path / "runs"
    base = {"name": "a", "model": {"arch": "mlp", "params": {"hidden_dim": 64}}, "loss": [{"name": "mse", "weight": 1.0}]}
    write_run(runs / "a-1", status="completed", plan=base, margins=[-0.1, 0.05, 0.12],
              gates={"score": 5, "passed": True})
    other = {**base, "name": "b", "model": {"arch": "mlp", "params": {"hidden_dim": 128}}}
    write_run(runs / "b-1", status="stopped", plan=other, margins=[-0.2, -0.05], checkpoint=True)
    (runs / "broken-1").mkdir()
    (runs / "broken-1" / "run.json").write_text("{")
    run = ScriptedRun("complete")
    app = WorkbenchApp(host=host, runs_dir=runs, train_command=run, poll_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        app.action_tab("runs")
        await pilot.pause()
        pane = app.runs_pane
        table = app.query_one("#runs-table", DataTable)
        rows = {table.get_row_at(i)[1]: table.get_row_at(i) for i in range(table.row_count)}
        assert set(rows) == {"a-1", "b-1", "broken-1"}
        assert rows["a-1"][3] == "mlp" and str(rows["a-1"][4]) == "0.620" and rows["a-1"][8] == "5 pass"
        assert "broken-1: run.json: not valid JSON" in str(app.query_one("#runs-message", Static).render())
        table.focus()
        for name in ("a-1", "b-1"):
            table.move_cursor(row=[p.path.name for p in pane.runs].index(name))
            await pilot.press("space")
        await pilot.press("m")  # val/cos -> val/margin: the marked runs are compared at once
        await pilot.pause()
        assert pane.diff == [("model.params.hidden_dim", [64, 128]), ("name", ["a", "b"])]
        assert pane.compared == {"a-1": ([0, 1, 2], [-0.1, 0.05, 0.12]), "b-1": ([0, 1], [-0.2, -0.05])}
        plot = app.query_one("#compare-plot", PlotWidget)
        markers = [d for d, label in zip(plot._datasets, plot._labels) if label]  # one marker per epoch
        assert [list(d.y) for d in markers] == [[-0.1, 0.05, 0.12], [-0.2, -0.05]]
        assert plot._y_min < -0.2 and plot._y_max > 0.12  # every value inside the axes, none on the box
        assert not plot.query_one("#legend").display  # the key is in the title, not over the data
        detail = str(app.query_one("#plan-diff", Static).render())
        assert "a-1: val/margin_vs_last last +0.1200 (epoch 2)" in detail  # an old run folder
        # resume: only a stopped run with a last checkpoint
        table.move_cursor(row=[p.path.name for p in pane.runs].index("a-1"))
        await pilot.press("r")
        await pilot.pause()
        assert "only a stopped, failed or diverged run can be resumed" in str(app.query_one("#runs-message", Static).render())
        table.move_cursor(row=[p.path.name for p in pane.runs].index("b-1"))
        await pilot.press("r")
        assert await _until(pilot, lambda: not app.training)
        assert run.calls == [{"plan": None, "run_dir": runs / "b-1", "resume": True}]
        assert app.train_pane.status == "completed"
        # the earlier epochs (b-1's history) come first, then the resumed run's
        assert app.train_pane.series()[1]["val/margin_vs_last"][1][:2] == [-0.2, -0.05]


async def test_attach_follows_a_run_another_process_is_writing(tmp_path, host):
    from ._tui_helpers import scripted_events

    run = tmp_path / "runs" / "headless-1"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"status": "running"}))
    events = scripted_events(str(run))

    def append(evs):
        append_events(run, evs)

    append(events[:8])
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs", poll_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        app.action_tab("runs")
        await pilot.pause()
        app.query_one("#runs-table", DataTable).focus()
        await pilot.press("a")
        await pilot.pause(0.2)
        pane = app.train_pane
        assert pane.status == "running" and pane.total_steps == 12
        assert pane.step == 5  # RunStarted, 4 steps of epoch 0, EpochEnded, EvalDone, 1 step of epoch 1
        append(events[8:])
        await pilot.pause(0.3)
        assert pane.status == "completed" and pane.epochs_shown == 3
        assert app._attach_timer is None  # detached when the run ended


async def test_data_screen_runs_the_diagnostics_of_the_chosen_store(tmp_path, host):
    store = make_tiny_store(tmp_path / "tiny", lengths=(12, 10, 11, 9, 12, 10, 14, 8, 12, 10), dim=16)
    seen = []
    app = WorkbenchApp(host=host)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        path_input = app.setup_pane.query_one("#store-path", Input)
        path_input.value = str(store.path)
        await path_input.action_submit()
        await pilot.pause()
        app.action_tab("data")
        await pilot.pause()
        sel = app.query_one("#diag-select", SelectionList)
        sel.deselect("baselines")
        sel.deselect("split_hygiene")
        await pilot.pause()
        app.query_one("#diag-select").focus()
        await pilot.press("d")
        await settle(pilot, app)
        await pilot.pause(0.2)
        done = [m.name for m in seen if isinstance(m, DiagnosticDone) and m.name]
        assert set(done) == {"direction_profile", "pair_order_probe"}
        pane = app.query_one("#data-pane")
        prof = pane.results["direction_profile"]["offset_profile"]
        assert sorted(pane.offset_values) == prof["offsets"]
        assert list(pane.offset_values.values()) == pytest.approx(prof["cos"])
        plot = app.query_one("#data-plot", PlotWidget)
        offsets = plot._datasets[plot._labels.index("offset profile")]
        assert list(offsets.y) == pytest.approx(prof["cos"])
        assert plot._y_min < min(prof["cos"]) and plot._y_max > 1.0
        values = str(app.query_one("#data-values", Static).render())
        assert "k=0" in values and "1.000" in values
        status = str(app.query_one("#data-status", Static).render())
        assert "order probe accuracy" in status and "vs chance 0.50" in status


async def test_command_palette_offers_the_main_actions(host):
    app = WorkbenchApp(host=host)
    async with app.run_test(size=SIZE) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for t in ("Train", "Stop training", "Load plan", "Save plan", "Runs: Compare", "Data: Diagnose", "Go to Runs", "Help"):
            assert t in titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Go to Plugins")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert app.query_one("#tabs", TabbedContent).active == "plugins"


async def test_sane_at_80x24(host):
    app = WorkbenchApp(host=host)
    async with app.run_test(size=(80, 24)) as pilot:
        for tab in ("setup", "train", "data", "runs", "plugins"):
            app.action_tab(tab)
            await pilot.pause()
            assert app.query_one("#tabs", TabbedContent).active == tab
        app.action_tab("train")
        await pilot.pause()
        plot = app.query_one("#loss-plot", PlotWidget)
        assert plot.size.height >= 3 and plot.size.width >= 20


EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"


async def test_gates_screen_shows_the_offset_profile_values_on_the_bundled_stores(host):
    """The 5CAT offset profile as the Gates screen holds it (chart and table) on the real bundled
    stores: the oracle (prediction = true target) is exactly 1 at k=+1, copy-last exactly 1 at k=0."""
    app = WorkbenchApp(host=host)
    async with app.run_test(size=(120, 36)) as pilot:
        app.action_tab("gates")
        await pilot.pause()
        gates = app.query_one("#gates-pane")
        gates.follow(str(EXAMPLES / "python-docs-minilm"), str(EXAMPLES / "kjv-minilm"))
        gates.query_one("#gates-model", Select).value = "copy_last"
        gates.query_one("#gates-n", Input).value = "200"
        gates.action_run_gates()
        assert await _until(pilot, lambda: gates.doc is not None, timeout=120), \
            str(gates.query_one("#gates-status", Static).render())
        await pilot.pause(0.3)
        prof = gates.profile
        assert set(prof) == {"model", "copy_last", "context_mean", "oracle"}
        k = {f"{o:+d}" if o else "0": i for i, o in enumerate(range(-3, 4))}
        assert prof["oracle"][k["+1"]] == pytest.approx(1.0, abs=1e-3)
        assert prof["copy_last"][k["0"]] == pytest.approx(1.0, abs=1e-3)
        assert prof["model"] == pytest.approx(prof["copy_last"])  # the model here is copy-last
        assert max(prof["oracle"]) == prof["oracle"][k["+1"]] and max(prof["copy_last"]) == prof["copy_last"][k["0"]]
        # the chart draws exactly these values, inside its axes, with no legend over them
        plot = gates.query_one("#gates-plot", PlotWidget)
        for name in ("oracle", "copy_last"):
            points = plot._datasets[plot._labels.index(name)]
            assert list(points.x) == list(range(-3, 4)) and list(points.y) == pytest.approx(prof[name])
        assert plot._y_min < 0.0 and plot._y_max > 1.0 and (plot._x_min, plot._x_max) == (-3.5, 3.5)
        assert not plot.query_one("#legend").display
        # and the same numbers as text under the chart
        lines = str(gates.query_one("#gates-profile-table", Static).render()).splitlines()
        assert lines[0].split() == ["mean", "cos", "k=-3", "k=-2", "k=-1", "k=0", "k=+1", "k=+2", "k=+3"]
        rows = {line.split()[1]: line.split()[2:] for line in lines[1:]}
        assert rows["oracle"][k["+1"]] == "1.000" and rows["copy_last"][k["0"]] == "1.000"
        # the samples it scored, and the verdict against the baselines with its intervals
        samples = str(gates.query_one("#gates-scored", Static).render())
        assert samples == ("scored val python-docs-minilm: 200 samples from 160 articles; ood kjv-minilm: 200 samples "
                           "from 40 articles (split: baseline (not trained); seed 0)")
        verdict = str(gates.query_one("#gates-verdict", Static).render())
        assert "vs copy_last" in verdict and "vs ctx_mean" in verdict and "gain +0.0000 [+0.0000, +0.0000]" in verdict
        # every check of the highlighted gate is listed beside the chart (the table row is short)
        checks = str(gates.query_one("#gates-checks", Static).render())
        assert "gate A offset sweep" in checks and "val.mean_plus1" in checks and "ood.margin_vs_best_offset" in checks
