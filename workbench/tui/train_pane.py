"""Train: progress with rate and ETA, live curves of every loss term and of the validation
numbers beside the copy-last and context-mean baselines, a table of epochs, and alerts.

The pane only reads event records (the dicts of `Event.to_json()`, as metrics.jsonl and
events.jsonl hold them): a run trained from this screen and a run followed through its files are
shown by the same code. Records arrive in batches (one per poll); the charts are redrawn at most
four times a second, from per-kind lists kept as records arrive, thinned to MAX_POINTS a curve.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Label, ProgressBar, RichLog, Sparkline, Static
from textual_plot import PlotWidget

from lvm_core.progress import format_duration as format_eta  # one duration format (headless, build)

from .charts import KeyTitle, padded_limits
from .rundirs import curves

LINE_STYLES = ["bright_cyan", "bright_magenta", "bright_yellow", "bright_green", "bright_red", "bright_blue", "white"]
BASELINES = (("copy_last", "red"), ("context_mean", "yellow"))
#: seconds between redraws of the status line and charts while records arrive
REDRAW_S = 0.5
#: most points drawn per curve; longer curves are thinned evenly (the last point always kept)
MAX_POINTS = 600
#: short headers: all eight columns fit the table's share of a 100-column screen
#: (the metric names in full where two numbers share a short name: docs/metrics.md)
EPOCH_COLUMNS = ("ep", "step", "loss", "cos", "margin_vs_last", "copy-l", "ctx-m", "R@1_no_context")
#: weight of the exponential moving average the smoothing toggle draws (TensorBoard's slider)
SMOOTH_WEIGHT = 0.9


def smooth(values: list[float], weight: float = SMOOTH_WEIGHT) -> list[float]:
    """Exponential moving average, started at the first value: s[i] = w*s[i-1] + (1-w)*v[i]."""
    out: list[float] = []
    for v in values:
        out.append(v if not out else weight * out[-1] + (1.0 - weight) * v)
    return out


def short_name(metric: str) -> str:
    """A legend name: `loss` is the total, `loss/mse` its mse term (the prefix says nothing)."""
    return "total" if metric == "loss" else metric.split("/", 1)[-1]


def thin(values: list[float], most: int) -> list[float]:
    """At most `most` values, evenly spaced, first and last kept (a long curve drawn cheaply)."""
    n = len(values)
    if n <= most:
        return values
    return [values[round(i * (n - 1) / (most - 1))] for i in range(most)]


def fit_parts(parts: list[str], width: int) -> str:
    """The parts joined by " · ", leaving out the last ones until the line fits `width` (the
    status and the step are the first two and always stay): a line cut mid-word says less."""
    keep = list(parts)
    while len(keep) > 2 and width > 0 and len(" · ".join(keep)) > width:
        keep.pop()
    return " · ".join(keep)


def _fmt(value: Any, spec: str = ".3f") -> str:
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


class TrainPane(Vertical):
    """The Train tab: everything about the run in progress (or the last one)."""

    CHARTS = ("cos", "margin_vs_last")
    KEYS = [
        Binding("m", "toggle_chart", "Cos/margin", tooltip="switch the right chart between val cosine and "
                                                                 "margin_vs_last (over the last context chunk)"),
        Binding("e", "toggle_smooth", "Smooth", tooltip=f"smooth the loss curves (moving average, weight {SMOOTH_WEIGHT}) or show them raw"),
        Binding("left", "cursor(-1)", "Cursor back", key_display="←", show=False,
                tooltip="move the chart cursor an epoch back: every series read out at that epoch and its step"),
        Binding("right", "cursor(1)", "Cursor on", key_display="→", show=False,
                tooltip="move the chart cursor an epoch on (past the newest: the cursor is off)"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.records: list[dict[str, Any]] = []
        self.step_records: list[dict[str, Any]] = []
        self.eval_records: list[dict[str, Any]] = []
        self.epoch_loss: dict[Any, float] = {}
        self.status = "idle"
        self.run_dir: str | None = None
        self.device = ""
        self.total_steps = 0
        self.step = 0
        self.chart = "margin_vs_last"
        self.smoothing = False
        self.cursor: int | None = None  # index into eval_records; None: no cursor
        self.readout = ""  # the cursor's line: every series at its epoch and step
        self.alerts: list[dict[str, Any]] = []
        self.epochs_shown = 0
        self._dirty = False  # the status line and progress bar
        self._loss_dirty = False
        self._val_dirty = False
        self._shown: tuple[Any, ...] = ()
        self._started_at: float | None = None
        self._first_step: tuple[float, int] | None = None

    def compose(self) -> ComposeResult:
        yield Static("idle: ctrl+t trains the current setup", id="train-status")
        yield ProgressBar(id="train-progress", show_eta=False)
        with Horizontal(id="train-charts"):
            with Vertical(classes="chart"):
                yield KeyTitle("loss terms (by step)", id="loss-title", classes="chart-title")
                yield PlotWidget(id="loss-plot", allow_pan_and_zoom=False)
            with Vertical(classes="chart"):
                yield KeyTitle("", id="val-title", classes="chart-title")
                yield PlotWidget(id="val-plot", allow_pan_and_zoom=False)
        yield Label("", id="chart-readout")
        with Horizontal(id="train-sparks"):
            yield Label("loss", id="loss-spark-label", classes="spark-label")
            yield Sparkline([], id="loss-spark")
            yield Label("margin_vs_last", id="margin-spark-label", classes="spark-label")
            yield Sparkline([], id="margin-spark")
        with Horizontal(id="train-bottom"):
            yield DataTable(id="epoch-table", cursor_type="row", zebra_stripes=True)
            # min_width: RichLog renders at 78 columns at least, so a narrow column cut every line
            yield RichLog(id="alerts", wrap=True, markup=False, max_lines=200, min_width=12)

    def on_mount(self) -> None:
        self.query_one("#epoch-table", DataTable).add_columns(*EPOCH_COLUMNS)
        loss_plot, val_plot = self.query_one("#loss-plot", PlotWidget), self.query_one("#val-plot", PlotWidget)
        loss_plot.set_xlabel("step")
        loss_plot.set_ylabel("loss")
        val_plot.set_xlabel("epoch")
        val_plot.set_ylabel(f"val {self.chart}")
        self._set_val_title()
        self.set_interval(REDRAW_S, self._redraw_if_dirty)

    def on_resize(self) -> None:
        """The status line and the charts' keys are fitted to the width they have: fit them
        again at the next tick."""
        self._dirty = self._loss_dirty = self._val_dirty = True

    def first_focus(self) -> Any:
        """Where the focus goes when the screen is shown: the epoch table (the charts' own
        zoom and pan keys would fill the footer)."""
        return self.query_one("#epoch-table", DataTable)

    # ---- state ---------------------------------------------------------------------------
    def reset(self, source: str) -> None:
        """Forget the previous run's curves before showing a new one."""
        self.records.clear()
        self.step_records.clear()
        self.eval_records.clear()
        self.epoch_loss.clear()
        self.alerts.clear()
        self.device = ""
        self.status, self.step, self.total_steps, self.epochs_shown = "starting", 0, 0, 0
        self.cursor, self.readout = None, ""
        self.query_one("#chart-readout", Label).update("", layout=False)
        self.run_dir = None
        self._started_at, self._first_step = time.monotonic(), None
        self.query_one("#epoch-table", DataTable).clear()
        self.query_one("#alerts", RichLog).clear()
        self.query_one("#train-progress", ProgressBar).update(total=None, progress=0)
        self.query_one("#train-status", Static).update(f"starting ({source})")
        for plot in self.query(PlotWidget):  # now, not at the next tick: no old curve under a new run
            plot.clear()
        for spark in self.query(Sparkline):
            spark.data = []
        self._shown = ()
        self._dirty = self._loss_dirty = self._val_dirty = True

    def add_records(self, records: list[dict[str, Any]]) -> None:
        """Take in new event records (in order) and update what depends on them."""
        for rec in records:
            kind = rec.get("kind")
            self.records.append(rec)
            if kind == "RunStarted":
                self.run_dir = rec.get("run_dir")
                self.device = f"{rec.get('device', '?')} ({rec.get('device_reason', '')})".replace(" ()", "")
                self.total_steps = int(rec.get("total_steps") or 0)
                self.status = "running"
                self._first_step = None  # the rate counts this process's steps only
                resumed = rec.get("resumed_from_step")
                if resumed:
                    self.step = int(resumed)
                    self._log("info", f"resumed from step {resumed}")
            elif kind == "StepLogged":
                self.step = int(rec.get("step", self.step))
                self.total_steps = int(rec.get("total_steps") or self.total_steps)
                if self._first_step is None:
                    self._first_step = (time.monotonic(), self.step)
                self.step_records.append(rec)
                self._loss_dirty = True
            elif kind == "EpochEnded":
                loss = (rec.get("metrics") or {}).get("loss")
                if isinstance(loss, (int, float)):
                    self.epoch_loss[rec.get("epoch")] = loss
            elif kind == "EvalDone":
                self.eval_records.append(rec)
                self._val_dirty = True
                self._add_epoch_row(rec)
            elif kind == "Alert":
                self.alerts.append(rec)
                self._log(rec.get("level", "info"), f"epoch {rec.get('epoch')} step {rec.get('step')}: "
                                                     f"{rec.get('code')}: {rec.get('message')}")
            elif kind == "CheckpointSaved":
                self._log("info", f"checkpoint {rec.get('tag')} at step {rec.get('step')}")
            elif kind == "GatesDone":
                verdict = "passed" if rec.get("passed") else "failed"
                self._log("info" if rec.get("passed") else "warning", f"5CAT {verdict}, score {rec.get('score')}")
            elif kind == "RunEnded":
                self.status = str(rec.get("status", "ended"))
                self.step = int(rec.get("step") or self.step)
                if rec.get("error"):
                    self._log("error", f"run {self.status}: {rec['error']}")
                else:
                    self._log("info", f"run {self.status} at step {self.step}")
        self._dirty = True  # drawn by the next tick, with whatever else arrived by then

    def set_status(self, status: str) -> None:
        self.status = status
        self._dirty = True
        self._update_status()

    def fail(self, message: str) -> None:
        """The run could not start or crashed outside the trainer: say so, keep the app alive."""
        self.status = "failed"
        self._log("error", message)
        self._update_status()

    def _log(self, level: str, text: str) -> None:
        style = {"error": "bold red", "warning": "yellow"}.get(level, "")
        self.query_one("#alerts", RichLog).write(Text(f"{level}: {text}", style=style))

    def _add_epoch_row(self, rec: dict[str, Any]) -> None:
        m = rec.get("metrics", {})
        epoch = rec.get("epoch")
        loss = self.epoch_loss.get(epoch)
        table = self.query_one("#epoch-table", DataTable)
        following = table.cursor_row >= table.row_count - 1  # on the newest row (or none yet): keep following
        table.add_row(
            str(epoch), str(rec.get("step")), _fmt(loss, ".4f"), _fmt(m.get("val/cos")), _fmt(m.get("val/margin_vs_last"), "+.3f"),
            _fmt(m.get("val/copy_last/cos")), _fmt(m.get("val/context_mean/cos")), _fmt(m.get("val/R@1_no_context")),
        )
        self.epochs_shown += 1
        if following:
            table.move_cursor(row=table.row_count - 1, animate=False)

    def rate_and_eta(self) -> tuple[float | None, float | None]:
        """Steps per second since the first logged step, and the seconds left at that rate."""
        if self._first_step is None or not self.total_steps:
            return None, None
        t0, s0 = self._first_step
        dt = time.monotonic() - t0
        if dt <= 0 or self.step <= s0:
            return None, None
        rate = (self.step - s0) / dt
        return rate, (self.total_steps - self.step) / rate

    def _update_status(self) -> None:
        last = self.step_records[-1] if self.step_records else None
        samples = f"{last['samples_per_s']:.0f} samples/s" if last and last.get("samples_per_s") else ""
        rate, eta = self.rate_and_eta()
        parts = [self.status, f"step {self.step}/{self.total_steps or '?'}"]  # by importance: the tail gives way
        if self.status == "running":
            parts.append(f"ETA {format_eta(eta)}")
        if samples:
            parts.append(samples)
        if self.device:
            parts.append(f"on {self.device}")
        if self.run_dir:
            parts.append(Path(str(self.run_dir)).name)
        text = fit_parts(parts, self.query_one("#train-status", Static).content_region.width)
        if self._shown[:1] != (text,):
            self.query_one("#train-status", Static).update(text, layout=False)
        if self.total_steps and self._shown[1:] != (self.total_steps, self.step):
            self.query_one("#train-progress", ProgressBar).update(total=self.total_steps, progress=self.step)
        self._shown = (text, self.total_steps, self.step)

    # ---- charts --------------------------------------------------------------------------
    def action_toggle_chart(self) -> None:
        self.chart = self.CHARTS[(self.CHARTS.index(self.chart) + 1) % len(self.CHARTS)]
        self._val_dirty = True
        self._redraw_if_dirty()

    def action_toggle_smooth(self) -> None:
        self.smoothing = not self.smoothing
        self._loss_dirty = True
        self._redraw_if_dirty()

    def action_cursor(self, delta: int) -> None:
        """Move the chart cursor by `delta` epochs; from no cursor, `←` starts at the newest."""
        n = len(self.eval_records)
        if not n:
            return
        if self.cursor is None:
            self.cursor = n - 1 if delta < 0 else None
        else:
            moved = self.cursor + delta
            self.cursor = None if moved >= n else max(0, moved)
        self._loss_dirty = self._val_dirty = True
        self._redraw_if_dirty()

    def cursor_values(self) -> tuple[dict[str, Any], dict[str, float]]:
        """(the evaluation under the cursor, every loss term at the last logged step up to its step)."""
        if self.cursor is None or not self.eval_records:
            return {}, {}
        rec = self.eval_records[min(self.cursor, len(self.eval_records) - 1)]
        step = rec.get("step")
        losses: dict[str, float] = {}
        for name, (xs, ys) in self.loss_series().items():
            at = [y for x, y in zip(xs, ys) if isinstance(step, (int, float)) and x <= step]
            if at:
                losses[name] = at[-1]
        return rec, losses

    def _update_readout(self) -> None:
        rec, losses = self.cursor_values()
        if not rec:
            text = ""
        else:
            m = rec.get("metrics") or {}
            vals = [f"{name} {_fmt(m.get(key), '+.4f' if self.chart != 'cos' else '.4f')}"
                    for name, key in (("model", f"val/{self.chart}"), ("copy-last", f"val/copy_last/{self.chart}"),
                                      ("ctx-mean", f"val/context_mean/{self.chart}"))]
            text = (f"epoch {rec.get('epoch')} step {rec.get('step')}: val {self.chart} " + ", ".join(vals)
                    + " | " + ", ".join(f"{short_name(k)} {v:.4g}" for k, v in sorted(losses.items())))
        self.readout = text
        self.query_one("#chart-readout", Label).update(text, layout=False)

    def _set_val_title(self, keys: list[tuple[str, str]] = ()) -> None:
        self._title("#val-title", f"val {self.chart}", keys)

    def _title(self, selector: str, text: str, keys: list[tuple[str, str]]) -> None:
        """A chart's title with its key (`█ name` in each line's colour), in two fixed rows so
        that four loss terms keep every name at 100 columns. The plots' own legends are not
        used: every legend update costs a layout pass of the whole screen, and the title is a
        fixed box whose text changes without one."""
        self.query_one(selector, KeyTitle).show(text, keys)

    def series(self) -> tuple[dict[str, tuple[list[float], list[float]]], dict[str, tuple[list[float], list[float]]]]:
        """(loss terms by step, validation metrics by epoch) from the records so far."""
        return self.loss_series(), curves(self.eval_records, x_key="epoch")

    def loss_series(self) -> dict[str, tuple[list[float], list[float]]]:
        steps = curves(self.step_records, x_key="step")
        return {k: v for k, v in steps.items() if k == "loss" or k.startswith("loss/")}

    def _redraw_if_dirty(self) -> None:
        """The periodic tick (REDRAW_S): redraw only what new records changed."""
        if self._dirty:
            self._dirty = False
            self._update_status()
        if self._loss_dirty:
            self._loss_dirty = False
            self._draw_losses(self.loss_series())
        if self._val_dirty:
            self._val_dirty = False
            self._draw_val(curves(self.eval_records, x_key="epoch"))
            self._update_readout()

    def _cursor_line(self, plot: PlotWidget, x: float, ys: list[float]) -> None:
        finite = [y for y in ys if math.isfinite(y)]
        if finite:
            lo, hi = padded_limits(finite)
            plot.plot([x, x], [lo, hi], line_style="grey50")

    def _draw_losses(self, losses: dict[str, tuple[list[float], list[float]]]) -> None:
        loss_plot = self.query_one("#loss-plot", PlotWidget)
        loss_plot.clear()
        keys = []
        drawn: list[float] = []
        for i, (name, (xs, ys)) in enumerate(sorted(losses.items())):
            style = LINE_STYLES[i % len(LINE_STYLES)]
            shown = smooth(ys) if self.smoothing else ys
            loss_plot.plot(thin(xs, MAX_POINTS), thin(shown, MAX_POINTS), line_style=style, label=name)
            drawn += shown
            keys.append((short_name(name), style))
        rec, _ = self.cursor_values()
        if rec and isinstance(rec.get("step"), (int, float)):
            self._cursor_line(loss_plot, float(rec["step"]), drawn)
        title = f"loss by step{f' (smoothed {SMOOTH_WEIGHT})' if self.smoothing else ''}"
        self._title("#loss-title", title, keys if len(keys) > 1 else [])
        if "loss" in losses:
            self._spark("loss", losses["loss"][1][-60:], ".3g")

    def _draw_val(self, evals: dict[str, tuple[list[float], list[float]]]) -> None:
        val_plot = self.query_one("#val-plot", PlotWidget)
        val_plot.clear()
        model = evals.get(f"val/{self.chart}")
        keys = []
        if model:
            xs = model[0]
            span = [min(xs) - 0.5, max(xs) + 0.5] if len(xs) > 1 else [xs[0] - 1, xs[0] + 1]
            for base, style in BASELINES:
                b = evals.get(f"val/{base}/{self.chart}")
                if b:
                    val_plot.plot(span, [b[1][-1]] * 2, line_style=style, label=base.replace("_", "-"))
                    keys.append(({"copy_last": "copy-last", "context_mean": "ctx-mean"}[base], style))
            shown = list(model[1]) + [evals[f"val/{b}/{self.chart}"][1][-1] for b, _ in BASELINES
                                      if evals.get(f"val/{b}/{self.chart}")]
            val_plot.set_ylimits(*padded_limits(shown))  # every baseline inside the axes, drawn
            val_plot.set_ylabel(f"val {self.chart}")
            rec, _ = self.cursor_values()
            if rec and isinstance(rec.get("epoch"), (int, float)):
                self._cursor_line(val_plot, float(rec["epoch"]), shown)
            val_plot.plot(*model, line_style="bright_cyan", label="model")
            val_plot.scatter(*model, marker="●", marker_style="bright_cyan")  # one epoch is one point
            keys.insert(0, ("model", "bright_cyan"))
        self._set_val_title(keys)
        if "val/margin_vs_last" in evals:
            self._spark("margin", evals["val/margin_vs_last"][1][-60:], "+.3f", "margin_vs_last")

    def _spark(self, name: str, values: list[float], spec: str, title: str = "") -> None:
        """A trend bar and its label with the range it spans: the bar always fills its height,
        so -0.004..-0.003 would look like a collapse without the numbers beside it."""
        self.query_one(f"#{name}-spark", Sparkline).data = values
        title = title or name
        label = f"{title} {min(values):{spec}}..{max(values):{spec}}" if values else title
        self.query_one(f"#{name}-spark-label", Label).update(label, layout=False)
