"""Keys that work from any focus, a help text and a palette made from the bindings, and the
run controls (stop right after start, detach) that depend on them. Each test is a bug a new
user hit (issue 13)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from textual.widgets import RichLog, Sparkline, Static, TabbedContent
from textual_plot import PlotWidget

from workbench.tui import datasets
from workbench.tui.app import GLOBAL_KEYS, PANE_KEYS, WorkbenchApp
from workbench.tui.dialogs import HelpScreen, PathScreen
from workbench.tui.keys import key_text

from ._tui_helpers import until as _until, ScriptedRun, append_events, host, scripted_events, tui_state_dir  # noqa: F401 (fixtures)

SIZE = (120, 40)


def _active(app) -> str:
    return app.query_one("#tabs", TabbedContent).active


async def test_a_screen_key_is_not_undone_by_the_focus_left_on_the_old_screen(host, tmp_path):
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "tab", "tab", "tab", "3")
        await pilot.pause(0.6)  # the fallback came about half a second later
        assert _active(app) == "gates"
        focused = app.focused
        assert focused is not None and app.query_one("TabPane#gates") in focused.ancestors


async def test_palette_go_to_gates_stays_on_gates(host, tmp_path):
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "tab", "tab")
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Go to Gates")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.6)
        assert _active(app) == "gates"


async def test_ctrl_t_with_the_load_dialog_open_closes_it_and_trains(host, tmp_path):
    run = ScriptedRun("wait")
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs", train_command=run, poll_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, PathScreen)
        await pilot.press("ctrl+t")
        assert await _until(pilot, lambda: app.train_pane.status == "running")
        await pilot.pause(0.6)
        assert not isinstance(app.screen, PathScreen) and _active(app) == "train"
        await pilot.press("x")
        assert await _until(pilot, lambda: not app.training)


async def test_pane_keys_work_with_the_tab_bar_focused(host, tmp_path):
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause()
        app.query_one("ContentTabs").focus()
        await pilot.pause()
        await pilot.press("g")
        await pilot.pause()
        assert "choose a checkpoint or a baseline first" in str(app.query_one("#gates-status", Static).render())
        ran = []
        app.query_one("#data-pane").action_diagnose = lambda: ran.append("d")
        await pilot.press("4")
        await pilot.pause()
        app.query_one("ContentTabs").focus()
        await pilot.pause()
        await pilot.press("d")
        await pilot.pause()
        assert ran == ["d"]
        # a pane key is off on other screens: `g` on Data does nothing to Gates
        await pilot.press("g")
        await pilot.pause()
        assert _active(app) == "data"


async def test_the_footer_shows_the_keys_of_the_screen_in_view(host, tmp_path):
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await pilot.pause()
        shown = {b.binding.description for b in app.screen.active_bindings.values() if b.enabled and b.binding.show}
        assert {"Compare", "Resume", "Attach", "Train", "Stop", "Help"} <= shown and "Run 5CAT" not in shown
        await pilot.press("3")
        await pilot.pause()
        shown = {b.binding.description for b in app.screen.active_bindings.values() if b.enabled and b.binding.show}
        assert "Run 5CAT" in shown and "Compare" not in shown


async def test_help_names_the_keys_that_are_bound(host, tmp_path):
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.text
        assert "press s" not in text and "| s |" not in text
        for b in GLOBAL_KEYS:
            if not b.action.startswith("tab("):
                assert f"| {key_text(b)} |" in text
        for keys in PANE_KEYS.values():
            for b in keys:
                assert f"| {key_text(b)} | {b.tooltip or b.description} |" in text
        assert "| ctrl+t | train the current setup" in text
        await pilot.press("q")  # closes help, does not quit
        await pilot.pause()
        assert app.is_running and not isinstance(app.screen, HelpScreen)


async def test_the_palette_offers_every_action(host, tmp_path):
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE):
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Check plan", "Runs: Resume", "Runs: Attach", "Train: Cos/margin", "Gates: Run 5CAT",
                "Train", "Stop training", "Load plan", "Save plan", "Help"} <= titles
        for keys in PANE_KEYS.values():
            for b in keys:
                assert any(t.endswith(f": {b.description}") for t in titles)


async def test_stop_right_after_train_is_clean(host, tmp_path):
    """ctrl+t then x within a second: no KeyboardInterrupt traceback, no old curves."""
    first = ScriptedRun("complete")
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs", train_command=first, poll_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.train_pane
        await pilot.press("ctrl+t")
        assert await _until(pilot, lambda: not app.training and pane.status == "completed")
        await pilot.pause(0.6)
        assert app.query_one("#loss-plot", PlotWidget)._datasets
        app.train_command = ScriptedRun("slow")
        await pilot.press("ctrl+t")
        # the new run is set up (the slow child writes nothing for a second): a condition, not a time
        assert await _until(pilot, lambda: app.training and pane.status.startswith("starting"))
        assert not app.query_one("#loss-plot", PlotWidget)._datasets  # the previous run's curves are gone
        assert not app.query_one("#loss-spark", Sparkline).data
        await pilot.press("x")
        assert await _until(pilot, lambda: not app.training, timeout=15)
        log = "\n".join(str(line.text) for line in app.query_one("#alerts", RichLog).lines)
        assert "KeyboardInterrupt" not in log and "Traceback" not in log
        assert pane.status == "stopped" and app.result["status"] == "stopped"


async def test_detach_clears_the_running_status(host, tmp_path):
    run = tmp_path / "runs" / "headless-1"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"status": "running"}))
    append_events(run, scripted_events(str(run))[:8])
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs", poll_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        app.attach(run)
        assert await _until(pilot, lambda: app.train_pane.status == "running")
        await pilot.press("x")
        await pilot.pause(0.6)
        status = str(app.query_one("#train-status", Static).render())
        assert status.startswith("detached from headless-1") and "ETA" not in status
        assert app.train_pane.status.startswith("detached")


async def test_gates_error_names_the_path_as_typed(host, tmp_path):
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause()
        gates = app.query_one("#gates-pane")
        gates.follow(str(datasets.BUNDLED / "python-docs-minilm"), "")
        app.query_one("#gates-path").value = "/nope/model.pt"
        gates.action_run_gates()
        await pilot.pause()
        said = str(app.query_one("#gates-status", Static).render())
        assert said == "/nope/model.pt: no such checkpoint file"


def test_each_bundled_store_is_offered_once(tmp_path):
    """A second checkout of the bundled data (./examples/data of another clone) is the same store."""
    for p in (datasets.BUNDLED).iterdir():
        shutil.copytree(p, tmp_path / "examples" / "data" / p.name, ignore=shutil.ignore_patterns("*.npy"))
    stores = datasets.known_stores(tmp_path)
    names = [p.name for p in stores]
    assert sorted(names) == sorted({*names}) and "python-docs-minilm" in names
    assert all(Path(p).parent == datasets.BUNDLED.resolve() for p in stores)
