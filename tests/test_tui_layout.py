"""A layout that adapts (issue 13): at 80x24, 100x30, 140x42 and 200x60 no two visible widgets
overlap on any screen and the Train status line is whole; at 60x20 the charts keep rows enough
to read; the epoch table's columns stay in view at 100x30 (the alerts once covered ctx-mean)."""

from __future__ import annotations

import re

import pytest
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import DataTable, Label, RichLog, Static
from textual_plot import PlotWidget

from workbench.tui.app import WorkbenchApp
from workbench.tui.keys import TABS

from ._tui_helpers import host, scripted_events, tui_state_dir  # noqa: F401 (fixtures)

SIZES = [(80, 24), (100, 30), (140, 42), (200, 60)]
#: widgets drawn as one piece (their insides are theirs to arrange)
ATOMIC = (PlotWidget, DataTable)


def _records(epochs: int = 3, terms: tuple[str, ...] = ("mse",)) -> list[dict]:
    recs = [e.to_json() for e in scripted_events("runs/scripted-20260101-000000", epochs=epochs)]
    for r in recs:
        if r["kind"] == "StepLogged":
            for t in terms[1:]:
                r["metrics"][f"loss/{t}"] = r["metrics"]["loss/mse"] / 2
    return recs


def visible_pieces(app) -> dict[Widget, Region]:
    """What each visible widget paints on the screen: its region cut by its clip; containers
    with visible children are left out (their children are what is seen), atomic widgets keep
    their insides to themselves."""
    shown = app.screen._compositor.visible_widgets
    out: dict[Widget, Region] = {}
    for w, (region, clip) in shown.items():
        if any(isinstance(a, ATOMIC) for a in w.ancestors):
            continue
        if not isinstance(w, ATOMIC) and any(c in shown for c in w.children):
            continue
        painted = region.intersection(clip)
        if painted.area:
            out[w] = painted
    return out


def overlaps(app) -> list[str]:
    pieces = list(visible_pieces(app).items())
    found = []
    for i, (a, ra) in enumerate(pieces):
        for b, rb in pieces[i + 1:]:
            if a in b.ancestors or b in a.ancestors:
                continue
            if ra.overlaps(rb):
                found.append(f"{a!r} {ra} overlaps {b!r} {rb}")
    return found


async def _show_a_run(app, pilot) -> None:
    pane = app.train_pane
    pane.add_records(_records(terms=("mse", "directional_margin", "infonce", "cosine")))
    pane._redraw_if_dirty()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_no_two_widgets_overlap_and_the_status_line_is_whole(host, tmp_path, size):
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs")
    async with app.run_test(size=size) as pilot:
        await _show_a_run(app, pilot)
        for tab in TABS:
            app.action_tab(tab)
            await pilot.pause()
            await pilot.pause()
            assert overlaps(app) == [], f"{tab} at {size}"
        app.action_tab("train")
        await pilot.pause()
        status = app.query_one("#train-status", Static)
        text = str(status.render())
        assert text.startswith("completed") and "step 12/12" in text
        assert len(text) <= status.content_region.width, f"cut at {size}: {text!r}"
        # the alerts wrap inside their column (RichLog drew at 78 columns at least: a cut line)
        alerts = app.query_one("#alerts", RichLog)
        assert alerts.lines and all(line.cell_length <= alerts.scrollable_content_region.width for line in alerts.lines)
        # every legend name whole: the titles wrap inside their fixed rows
        for title_id, names in (("#loss-title", ("total", "mse", "directional_margin", "infonce", "cosine")),
                                ("#val-title", ("model", "copy-last", "ctx-mean"))):
            label = app.query_one(title_id, Label)
            lines = [ln.plain for ln in label.render().wrap(label.content_region.width)]
            assert len(lines) <= label.content_region.height, f"{title_id} at {size}: {lines}"
            # each name whole and on the row of its colour key
            assert all(any(re.search(rf"█ {re.escape(n)}(\s|$)", ln) for ln in lines) for n in names), \
                f"{title_id} at {size}: {lines}"


async def test_a_chart_key_narrowed_after_it_was_drawn_keeps_swatch_and_name_together(host, tmp_path):
    """The layout may narrow a chart title after its key was drawn (the pane keeps its size, so
    the pane never hears of it): the key once stayed fitted to the old width and wrapped as
    '... cosine  █' / 'directional_margin ...' (the layout test failed that way under load)."""
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(140, 42)) as pilot:
        await _show_a_run(app, pilot)  # drawn while Setup is shown: the Train labels are 0 wide
        app.action_tab("train")
        await pilot.pause()
        label = app.query_one("#loss-title", Label)
        label.styles.width = 40  # what a later layout pass does to it
        await pilot.pause()
        await pilot.pause()
        assert label.content_region.width == 40
        lines = [ln.plain for ln in label.render().wrap(label.content_region.width)]
        for n in ("total", "mse", "directional_margin", "infonce", "cosine"):
            assert any(re.search(rf"█ {re.escape(n)}(\s|$)", ln) for ln in lines), lines


async def test_at_100x30_the_epoch_table_keeps_every_column_in_view(host, tmp_path):
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        app.action_tab("train")
        await _show_a_run(app, pilot)
        await pilot.pause()
        table = app.query_one("#epoch-table", DataTable)
        assert table.virtual_size.width <= table.scrollable_content_region.width
        alerts = app.query_one("#alerts")
        assert table.region.right <= alerts.region.x


async def test_at_60x20_the_charts_keep_rows_to_read(host, tmp_path):
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(60, 20)) as pilot:
        app.action_tab("train")
        await _show_a_run(app, pilot)
        await pilot.pause()
        for plot_id in ("#loss-plot", "#val-plot"):
            assert app.query_one(plot_id, PlotWidget).size.height >= 5, plot_id
        assert overlaps(app) == []
