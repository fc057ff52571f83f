"""The Train screen's charts are for reading: baselines inside the axes, axis titles, trend bars
labelled with their range, and an epoch table that follows the newest row (issue 13)."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Label
from textual_plot import PlotWidget

from lvm_core.events import EvalDone
from workbench.tui.app import WorkbenchApp
from workbench.tui.train_pane import smooth

from ._tui_helpers import host, scripted_events, tui_state_dir  # noqa: F401 (fixtures)


def _records(epochs: int = 3) -> list[dict]:
    return [e.to_json() for e in scripted_events("runs/scripted-1", epochs=epochs)]


async def _train_screen_showing_a_run(app, pilot):
    """The Train screen with the scripted run's records drawn; returns its pane."""
    pane = app.train_pane
    app.action_tab("train")
    pane.add_records(_records())
    pane._redraw_if_dirty()
    await pilot.pause()
    return pane


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


async def test_the_cursor_reads_out_every_series_at_an_epoch_and_its_step(host, tmp_path):
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await _train_screen_showing_a_run(app, pilot)
        assert pane.cursor is None and pane.readout == ""
        await pilot.press("left")  # the cursor starts at the newest epoch
        await pilot.pause()
        assert pane.cursor == 2
        await pilot.press("left")
        await pilot.pause()
        # epoch 1 ends at step 8: margin -0.05, copy-last -0.4, context mean -0.2; loss 1/8, mse 0.5/8
        assert pane.readout == ("epoch 1 step 8: val margin_vs_last model -0.0500, copy-last -0.4000, ctx-mean -0.2000"
                                " | total 0.125, mse 0.0625")
        assert str(app.query_one("#chart-readout", Label).render()) == pane.readout
        val = app.query_one("#val-plot", PlotWidget)
        assert any(list(d.x) == [1.0, 1.0] for d in val._datasets)  # the cursor's line at epoch 1
        loss = app.query_one("#loss-plot", PlotWidget)
        assert any(list(d.x) == [8.0, 8.0] for d in loss._datasets)  # and at its step on the loss chart
        for _ in range(5):
            await pilot.press("left")
        await pilot.pause()
        assert pane.cursor == 0 and pane.readout.startswith("epoch 0 step 4:")
        for _ in range(3):
            await pilot.press("right")  # past the newest epoch: the cursor is off
        await pilot.pause()
        assert pane.cursor is None and pane.readout == ""
        assert not any(list(d.x) == [2.0, 2.0] for d in val._datasets)


async def test_smoothing_draws_the_moving_average_and_says_so(host, tmp_path):
    app = WorkbenchApp(host=host, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await _train_screen_showing_a_run(app, pilot)
        loss = app.query_one("#loss-plot", PlotWidget)
        raw = [1.0 / s for s in range(1, 13)]
        assert list(loss._datasets[0].y) == raw
        await pilot.press("e")
        await pilot.pause()
        # by hand: s0 = 1, s1 = 0.9 * 1 + 0.1 * 0.5 = 0.95, s2 = 0.9 * 0.95 + 0.1 / 3
        ys = list(loss._datasets[0].y)
        assert ys[:3] == pytest.approx([1.0, 0.95, 0.855 + 0.1 / 3])
        assert "smoothed 0.9" in str(app.query_one("#loss-title", Label).render())
        await pilot.press("e")
        await pilot.pause()
        assert list(loss._datasets[0].y) == raw


def test_smooth_on_edge_cases():
    assert smooth([]) == []
    assert smooth([2.0]) == [2.0]
    assert smooth([3.0, 3.0, 3.0]) == [3.0, 3.0, 3.0]  # a constant stays itself
    assert smooth([0.0, 1.0], weight=0.0) == [0.0, 1.0]  # weight 0: the raw values
