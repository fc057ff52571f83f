"""The Gates screen (issues 9, 12, 13): a checkpoint is scored on its own val part (the split it
records, found by lvm_core.data.split_guard as `5cat` finds it), the gates come from a checklist of
every registered gate (third-party ones too), and a run's own battery shows the verdict against
every baseline, fitted ones included, with its intervals. The Plugins screen lists a disabled
plugin in red with its problem and the switch that stops loading it."""

from __future__ import annotations

import json

import numpy as np
import torch
from textual.widgets import DataTable, Select, SelectionList, Static

from lvm_core.data.windows import Split
from lvm_core.training.checkpointer import Checkpointer
from workbench.hookspecs import hookimpl
from workbench.plugin_host import load_plugins
from workbench.tui import datasets
from workbench.tui.app import WorkbenchApp

from ._tui_helpers import BrokenLosses, host, tui_state_dir, write_run  # noqa: F401 (fixtures)

SIZE = (140, 42)
PLAN = {"name": "a", "model": {"arch": "mlp", "params": {"hidden_dim": 8}}, "loss": [{"name": "mse", "weight": 1.0}]}


def _run_with_a_split(tmp_path):
    """A run folder whose checkpoint records the sha256 of the run's split.json."""
    run = write_run(tmp_path / "runs" / "r-1", status="completed", plan=PLAN, margins=[0.0, 0.1])
    split = Split({"train": np.array([1, 2, 3]), "val": np.array([4, 5])}, {"fractions": {"train": 0.6, "val": 0.4}})
    split.save(run / "split.json")
    meta = {"arch": "linear", "arch_params": {}, "input_dim": 2, "context_len": 1, "step": 20, "epoch": 1,
            "split_sha256": split.sha256()}
    weights = Checkpointer(run / "checkpoints").save("last", torch.nn.Linear(2, 2), meta, {"step": 20})
    return run, weights


async def _gates_screen(app, pilot):
    """The Gates screen following the bundled demo store, its 5cat child replaced by a list
    that records each command line's arguments: (the pane, that list)."""
    app.action_tab("gates")
    await pilot.pause()
    gates = app.query_one("#gates-pane")
    gates.follow(str(datasets.BUNDLED / "python-docs-minilm"), "")
    calls: list[list[str]] = []
    gates._run = lambda args: calls.append(args)  # the 5cat child is not started here
    return gates, calls


async def test_a_checkpoint_is_scored_on_its_own_val_part_with_the_chosen_gates(host, tmp_path):
    run, weights = _run_with_a_split(tmp_path)
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        gates, calls = await _gates_screen(app, pilot)
        app.query_one("#gates-path").value = str(weights)  # the generation's own file, two folders down
        choose = app.query_one("#gates-choose", SelectionList)
        assert list(choose.selected) == ["A", "B", "C", "D", "E", "vs_baselines"]
        choose.deselect("C")
        app.query_one("#gates-seed").value = "7"
        gates.action_run_gates()
        await pilot.pause()
        args = calls[0]
        assert args[args.index("--split-file") + 1] == str(run / "split.json")
        assert args[args.index("--val-part") + 1] == "val" and args[args.index("--seed") + 1] == "7"
        assert [args[i + 1] for i, a in enumerate(args) if a == "--gate"] == ["A", "B", "D", "E", "vs_baselines"]
        said = str(app.query_one("#gates-status", Static).render())
        assert f"the val part of {run / 'split.json'}" in said and "seed 7" in said
        choose.deselect_all()
        gates.running = False
        gates.action_run_gates()
        await pilot.pause()
        assert str(app.query_one("#gates-status", Static).render()) == "choose at least one gate in the list"
        assert len(calls) == 1


async def test_a_third_party_gate_is_in_the_checklist():
    class MyGate:
        @hookimpl
        def register_gates(self, register):
            register("CM", lambda **kw: None)

    host = load_plugins(extra_plugins=[("my_gates", MyGate())])
    app = WorkbenchApp(host=host)
    async with app.run_test(size=SIZE) as pilot:
        gates, calls = await _gates_screen(app, pilot)
        choose = app.query_one("#gates-choose", SelectionList)
        assert "CM" in gates.gate_names and "CM" not in choose.selected  # offered, not run unless chosen
        choose.select("CM")
        app.query_one("#gates-model", Select).value = "copy_last"
        gates.action_run_gates()
        await pilot.pause()
        assert [calls[0][i + 1] for i, a in enumerate(calls[0]) if a == "--gate"][-1] == "CM"


async def test_a_runs_own_battery_shows_the_verdict_against_every_baseline(host, tmp_path):
    run, weights = _run_with_a_split(tmp_path)
    against = {b: {"mean": m, "lo": m - 0.01, "hi": m + 0.01, "cos": 0.5} for b, m in
               (("copy_last", 0.05), ("context_mean", 0.004), ("ridge", -0.002), ("frame_weights", 0.02))}
    doc = {"score": 1, "max_score": 5, "passed": False, "config": {"seed": 3},
           "splits": {"val": {"store": "/data/python-docs-minilm", "samples": 300, "articles": 32}},
           "gates": {}, "beats_baselines": {"gate": "vs_baselines", "passed": False, "level": 0.95, "splits": {
               "val": {"passed": False, "vs": "ridge", "cos": 0.55, "against": against}}}}
    (run / "gates.json").write_text(json.dumps(doc))
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        app.action_tab("gates")
        await pilot.pause()
        app.query_one("#gates-model", Select).value = str(run / "checkpoints" / "last.safetensors")
        await pilot.pause()
        verdict = str(app.query_one("#gates-verdict", Static).render())
        assert "beats the baselines (95% interval over articles): no" in verdict
        assert "ok vs copy_last     cos 0.5000  gain +0.0500 [+0.0400, +0.0600]" in verdict
        assert " x vs ridge         cos 0.5000  gain -0.0020 [-0.0120, +0.0080]" in verdict
        assert "vs frame_weights" in verdict and "vs ctx_mean" in verdict
        samples = str(app.query_one("#gates-scored", Static).render())
        assert samples == "scored val python-docs-minilm: 300 samples from 32 articles (the run's own split, in training; seed 3)"


async def test_a_disabled_plugin_is_red_with_its_problem_and_switch():
    app = WorkbenchApp(host=load_plugins(extra_plugins=[("broken_losses", BrokenLosses())]))
    async with app.run_test(size=SIZE) as pilot:
        app.action_tab("plugins")
        await pilot.pause()
        table = app.query_one("#plugin-table", DataTable)
        first = table.get_row_at(0)
        assert str(first[0]) == "disabled" and str(first[1]) == "broken_losses"
        assert all(part.style == "bold red" for part in first[:3])
        detail = str(app.query_one("#plugin-detail", Static).render())
        assert "plugin broken_losses: disabled" in detail and "RuntimeError: cannot import my_cuda_kernel" in detail
        assert "LVM_WORKBENCH_DISABLE_PLUGINS=broken_losses" in detail
        problems = str(app.query_one("#plugin-problems", Static).render())
        assert "(to stop loading it: LVM_WORKBENCH_DISABLE_PLUGINS=broken_losses)" in problems
        assert "mse" in [str(table.get_row_at(i)[1]) for i in range(table.row_count)]  # everything else is there
