"""The Train screen's charts are for reading: baselines inside the axes, axis titles, trend bars
labelled with their range, and an epoch table that follows the newest row (issue 13)."""

from __future__ import annotations

from textual.widgets import DataTable, Label
from textual_plot import PlotWidget

from lvm_core.events import EvalDone
from workbench.tui.app import WorkbenchApp

from ._tui_helpers import host, scripted_events, tui_state_dir  # noqa: F401 (fixtures)


def _records(epochs: int = 3) -> list[dict]:
    return [e.to_json() for e in scripted_events("runs/scripted-1", epochs=epochs)]


async def test_val_chart_holds_the_baselines_and_names_its_axes(host, tmp_path):
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.train_pane
        pane.add_records(_records())
        pane._redraw_if_dirty()
        await pilot.pause()
        plot = app.query_one("#val-plot", PlotWidget)
        # margin: the model -0.1..0.0, copy-last -0.4, context mean -0.2: all inside
        assert plot._y_min < -0.4 and plot._y_max > 0.0
        assert plot._x_label == "epoch" and plot._y_label == "val margin_vs_last"
        pane.action_toggle_chart()
        await pilot.pause()
        # cosine: the model 0.40..0.50 under the copy-last 0.60 and context mean 0.55 lines
        assert plot._y_min < 0.40 and plot._y_max > 0.60 and plot._y_label == "val cos"
        loss = app.query_one("#loss-plot", PlotWidget)
        assert loss._x_label == "step" and loss._y_label == "loss"


async def test_trend_bars_say_their_range(host, tmp_path):
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.train_pane
        pane.add_records([EvalDone(epoch=e, step=e + 1, metrics={"val/margin_vs_last": m}).to_json()
                          for e, m in enumerate([-0.003, -0.0035, -0.004])])
        pane._redraw_if_dirty()
        await pilot.pause()
        assert str(app.query_one("#margin-spark-label", Label).render()) == "margin_vs_last -0.004..-0.003"


async def test_the_epoch_table_follows_the_newest_row(host, tmp_path):
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.train_pane
        app.action_tab("train")
        pane.add_records(_records(epochs=12))
        pane._redraw_if_dirty()
        await pilot.pause()
        table = app.query_one("#epoch-table", DataTable)
        assert table.row_count == 12 and table.cursor_row == 11
        assert table.is_valid_row_index(11) and table.scroll_y == table.max_scroll_y
        # a person who moved the cursor up is not dragged down by the next row
        table.move_cursor(row=3)
        pane.add_records([EvalDone(epoch=12, step=999, metrics={"val/margin_vs_last": 0.1}).to_json()])
        await pilot.pause()
        assert table.cursor_row == 3
