"""SVG snapshots of the main screens (a local fixture: pytest-textual-snapshot caps pytest < 9).

Fixed size, no animations, no cursor blink, Rich's random terminal ids stripped. To accept a
change on purpose (a Textual bump, a layout change): LVM_UPDATE_SNAPSHOTS=1 pytest tests/test_tui_snapshots.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from textual.widgets import Input

from workbench.plugin_host import load_plugins
from workbench.tui import datasets
from workbench.tui.app import WorkbenchApp

from ._tui_helpers import scripted_events

SNAPSHOTS = Path(__file__).parent / "snapshots"
SIZE = (100, 30)


def normalize_svg(svg: str) -> str:
    """Drop what changes between identical renders: the random terminal-<n> class ids."""
    return re.sub(r"terminal-\d+-", "terminal-", re.sub(r"terminal-\d+\b", "terminal", svg))


def assert_snapshot(name: str, svg: str) -> None:
    path = SNAPSHOTS / f"{name}.svg"
    got = normalize_svg(svg)
    if os.environ.get("LVM_UPDATE_SNAPSHOTS") == "1" or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got, encoding="utf-8")
        if os.environ.get("LVM_UPDATE_SNAPSHOTS") != "1":
            pytest.fail(f"no snapshot {path.name} yet: wrote it; check it by eye and run again")
        return
    assert got == path.read_text(encoding="utf-8"), f"{name} differs from {path}; LVM_UPDATE_SNAPSHOTS=1 to accept"


async def stable_screenshot(pilot, app) -> str:
    """The screen once two renders in a row agree (a loaded machine paints late), bounded."""
    last = None
    for _ in range(20):
        await pilot.pause(0.1)
        svg = app.export_screenshot()
        if last is not None and normalize_svg(svg) == normalize_svg(last):
            return svg
        last = svg
    return last


@pytest.fixture(autouse=True)
def _quiet(tmp_path, monkeypatch):
    monkeypatch.setenv("LVM_WORKBENCH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)
    monkeypatch.setattr(datasets, "known_stores", lambda cwd=None: [])  # no store: nothing async in the header


def _app() -> WorkbenchApp:
    app = WorkbenchApp(host=load_plugins(entry_points=False), runs_dir=Path("/nonexistent/runs"))
    app.animation_level = "none"
    return app


LAYOUT_SIZES = [(80, 24), (100, 30), (140, 42), (200, 60)]


@pytest.mark.parametrize("size", LAYOUT_SIZES, ids=[f"{w}x{h}" for w, h in LAYOUT_SIZES])
async def test_snapshot_train_screen_after_a_run(size):
    """The Train screen at each size the layout adapts to (tests/test_tui_layout.py checks the
    same sizes for overlaps; these pictures catch what a check cannot name)."""
    app = _app()
    async with app.run_test(size=size) as pilot:
        records = [e.to_json() for e in scripted_events("runs/scripted-20260101-000000")]
        for i, r in enumerate(records):
            r["t"] = 1_700_000_000.0 + i
        app.action_tab("train")
        await pilot.pause()
        app.train_pane.add_records(records)
        app.train_pane._redraw_if_dirty()
        assert_snapshot(f"train_after_run_{size[0]}x{size[1]}", await stable_screenshot(pilot, app))


async def test_snapshot_help_screen():
    app = _app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert_snapshot("help", await stable_screenshot(pilot, app))
