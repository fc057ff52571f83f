"""The workbench screen driving the real engine: plan files through workbench/plan/, the
real trainer on the bundled demo store, the 5CAT battery on the run's checkpoint, resume."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Select, Static

from workbench import plan as plan_io
from workbench.tui.app import WorkbenchApp
from workbench.tui.gates_pane import GatesPane

from ._tui_helpers import host, settle, tui_state_dir  # noqa: F401 (fixtures)
from .conftest import DEMO_STORE, make_tiny_store

SIZE = (120, 40)
needs_demo = pytest.mark.skipif(not DEMO_STORE.is_dir(), reason="bundled demo store examples/data/python-docs-minilm not built yet")


async def _choose_store(pilot, app, path: Path) -> None:
    box = app.setup_pane.query_one("#store-path", Input)
    box.value = str(path)
    await box.action_submit()
    await pilot.pause()


def _tiny_plan(app, *, epochs: int = 2) -> None:
    setup = app.setup_pane
    setup.query_one("#model-select", Select).value = "mlp"
    setup.query_one("#train-epochs", Input).value = str(epochs)
    setup.query_one("#train-batch_size", Input).value = "32"
    setup.query_one("#train-device", Input).value = "cpu"
    setup.query_one("#train-threads", Input).value = "1"
    setup.query_one("#train-log_every", Input).value = "5"


async def test_save_and_reload_a_plan_round_trips_through_the_plan_package(tmp_path, host):
    store = make_tiny_store(tmp_path / "data" / "tiny", lengths=(12, 10, 11, 9, 12, 10), dim=16)
    plan_file = tmp_path / "plans" / "mine.toml"
    app = WorkbenchApp(host=host)
    async with app.run_test(size=SIZE) as pilot:
        await _choose_store(pilot, app, store.path)
        _tiny_plan(app)
        await pilot.pause()
        app.setup_pane.query_one("#model-p-hidden_dim", Input).value = "8"
        app.setup_pane.query_one("#loss-on-directional_margin").value = True
        app.setup_pane.query_one("#loss-sched-directional_margin", Input).value = '{ kind = "step", epoch = 2, before = 0.0, after = 0.5 }'
        await pilot.pause()
        assert app.save_plan(plan_file), str(app.setup_pane.query_one("#setup-message", Static).render())
        first = app.setup_pane.plan_dict()
    text = plan_file.read_text()
    assert 'store = "../data/tiny"' in text  # relative to the plan file
    saved = plan_io.load_plan(plan_file)  # what `--run` reads
    assert saved.model.arch == "mlp" and saved.model.params["hidden_dim"] == 8
    app2 = WorkbenchApp(host=host, plan_path=plan_file)
    async with app2.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.pause()
        assert "loaded" in str(app2.setup_pane.query_one("#setup-message", Static).render())
        again = app2.setup_pane.plan_dict()
    assert again["model"] == first["model"] and again["loss"] == first["loss"] and again["train"] == {**first["train"], **again["train"]}
    assert Path(again["data"]["store"]).resolve() == store.path.resolve()
    assert plan_io.plan_to_toml(plan_io.plan_from_dict(again, tmp_path)) == plan_io.plan_to_toml(plan_io.plan_from_dict(first, tmp_path))


async def test_loading_a_bad_plan_lists_every_problem(tmp_path, host):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[model]\narch = "transfomer"\n[train]\nepochs = "many"\n')
    app = WorkbenchApp(host=host)
    async with app.run_test(size=SIZE) as pilot:
        assert not app.load_plan(bad)
        await pilot.pause()
        msg = str(app.setup_pane.query_one("#setup-message", Static).render())
        assert "transfomer" in msg and "epochs" in msg
        assert not app.load_plan(tmp_path / "absent.toml")


@needs_demo
async def test_train_the_tiny_plan_on_the_demo_store_then_gate_it_and_resume(tmp_path, host):
    runs = tmp_path / "runs"
    app = WorkbenchApp(host=host, runs_dir=runs)
    async with app.run_test(size=SIZE) as pilot:
        await _choose_store(pilot, app, DEMO_STORE)
        _tiny_plan(app, epochs=1)
        await pilot.press("ctrl+t")
        assert app.child is not None  # trained by `python -m workbench.cli --run` in a child process
        end = time.monotonic() + 180
        while app.training and time.monotonic() < end:
            await pilot.pause(0.1)
        pane = app.train_pane
        assert pane.status == "completed", [r for r in pane.records if r.get("kind") in ("Alert", "RunEnded")]
        assert app.result == {"status": "completed", "exit_code": 0}
        assert pane.epochs_shown == 1 and pane.step == pane.total_steps > 0
        run_dir = Path(pane.run_dir)
        assert (run_dir / "checkpoints" / "best.safetensors").is_file()
        table = app.query_one("#runs-table", DataTable)
        assert table.row_count == 1 and str(table.get_row_at(0)[2]) == "completed"
        # gates on the run's checkpoint
        app.action_tab("gates")
        await pilot.pause()
        gates = app.query_one(GatesPane)
        gates.query_one("#gates-path", Input).value = str(run_dir / "checkpoints" / "best.safetensors")
        gates.query_one("#gates-n", Input).value = "100"
        gates.action_run_gates()
        await settle(pilot, app)
        assert gates.doc is not None, str(gates.query_one("#gates-status", Static).render())
        gate_table = gates.query_one("#gates-table", DataTable)
        assert [gate_table.get_row_at(i)[0] for i in range(gate_table.row_count)] == ["A", "B", "C", "D", "E",
                                                                                          "vs_baselines"]
        assert set(gates.query_one("#gates-plot")._labels) >= {"model", "copy_last", "oracle"}
