"""Data: the diagnostics of the chosen dataset and split, as numbers (the same tables
`lvm-workbench diagnose` prints) and charts (offset and position profiles, probe vs chance)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Label, RichLog, SelectionList, Static
from textual_plot import PlotWidget

from lvm_core.errors import InputError
from lvm_core.params import resolve_params

from .charts import draw_points, key_title, padded_limits, value_table
from ..plugin_host import PluginHost

OFFSET_STYLE, POSITION_STYLE = "bright_cyan", "bright_magenta"
OFFSET_MARKER, POSITION_MARKER = "●", "■"


class DiagnosticDone(Message):
    """One diagnostic finished (or failed: `error` is set)."""

    def __init__(self, name: str, result: dict[str, Any] | None, seconds: float, error: str | None = None) -> None:
        super().__init__()
        self.name = name
        self.result = result
        self.seconds = seconds
        self.error = error


class DataPane(Vertical):
    """The Data tab."""

    KEYS = [Binding("d", "diagnose", "Diagnose", tooltip="run the chosen diagnostics on the Setup dataset")]

    DEFAULT_CSS = """
    #data-chart-col { width: 1fr; }
    #data-plot { height: 1fr; }
    #data-values { width: 32; height: 1fr; padding: 0 0 0 1; }
    """

    def __init__(self, host: PluginHost, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.host = host
        self.store_path: Path | None = None
        self.split_rule: dict[str, Any] = {"fractions": {"train": 0.8, "val": 0.2}, "seed": 0}
        self.context_len = 5
        self.results: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, str] = {}
        # what the chart and the table beside it show: k -> cos(x_t, x_t+k), and the context
        # position (as its offset from the target, -context_len..-1) -> cos(position, target)
        self.offset_values: dict[int, float] = {}
        self.position_values: dict[int, float] = {}
        self.running = False

    def compose(self) -> ComposeResult:
        yield Static("choose a dataset on Setup, then press d", id="data-status")
        with Horizontal(id="data-top"):
            yield SelectionList[str](*[(n, n, True) for n in self.host.names("diagnostic")], id="diag-select")
            with Vertical(id="data-chart-col"):
                yield Label(self._chart_title(), id="data-plot-title", classes="chart-title")
                yield PlotWidget(id="data-plot", allow_pan_and_zoom=False)
            yield Static("", id="data-values")
        with Horizontal(classes="buttons"):
            yield Button("Run diagnostics", id="diag-run", compact=True)
        yield RichLog(id="diag-log", wrap=False, markup=False, highlight=False, max_lines=2000)

    @staticmethod
    def _chart_title() -> Text:
        return key_title("by offset k:", [("cos(x_t, x_t+k)", OFFSET_STYLE, OFFSET_MARKER),
                                          ("cos(context at k, target)", POSITION_STYLE, POSITION_MARKER)])

    def on_mount(self) -> None:
        plot = self.query_one("#data-plot", PlotWidget)
        plot.margin_top, plot.margin_bottom, plot.margin_left = 0, 1, 6

    def follow(self, store: Path, split: dict[str, Any] | None, context_len: int | None) -> None:
        """Take the dataset (and split and context length) chosen on Setup."""
        self.store_path = store
        if split:
            self.split_rule = split
        if context_len:
            self.context_len = context_len
        if not self.running:
            self.query_one("#data-status", Static).update(f"{store}: press d to run the selected diagnostics")

    def action_diagnose(self) -> None:
        if self.running:
            return
        if self.store_path is None:
            self.query_one("#data-status", Static).update("no dataset chosen: pick one on Setup first")
            return
        names = list(self.query_one("#diag-select", SelectionList).selected)
        if not names:
            self.query_one("#data-status", Static).update("select at least one diagnostic")
            return
        self.results.clear()
        self.errors.clear()
        self.query_one("#diag-log", RichLog).clear()
        self.running = True
        self.query_one("#data-status", Static).update(f"running {', '.join(names)} on {self.store_path.name} ...")
        self._run(self.store_path, dict(self.split_rule), self.context_len, names)

    @work(thread=True, exclusive=True, group="diagnostics", exit_on_error=False)
    def _run(self, store_path: Path, rule: dict[str, Any], context_len: int, names: list[str]) -> None:
        from lvm_core.data.store import ArticleStore
        from lvm_core.data.windows import split_by_fractions, split_by_ranges

        try:
            store = ArticleStore.open(store_path)
            if "ranges" in rule:
                split = split_by_ranges(store, rule["ranges"], rule.get("rest", "train"))
            else:
                split = split_by_fractions(store, rule.get("fractions", {"train": 0.8, "val": 0.2}), seed=int(rule.get("seed", 0)))
        except InputError as exc:
            self.post_message(DiagnosticDone("(setup)", None, 0.0, exc.line()))
            return
        for name in names:
            item = self.host.items["diagnostic"][name]
            t0 = time.perf_counter()
            try:
                values, errors = resolve_params(item.params, {}, where=name, source="diagnostics")
                if errors:
                    raise errors[0]
                result = item.obj(store, split, context_len=context_len, **values)
                self.post_message(DiagnosticDone(name, result, time.perf_counter() - t0))
            except Exception as exc:  # noqa: BLE001 - a plugin may raise anything; show it, go on
                text = exc.line() if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
                self.post_message(DiagnosticDone(name, None, time.perf_counter() - t0, text))
        self.post_message(DiagnosticDone("", None, 0.0))

    @on(DiagnosticDone)
    def _done(self, message: DiagnosticDone) -> None:
        from rich.text import Text

        from ..commands.diagnose import render_text

        log = self.query_one("#diag-log", RichLog)
        if not message.name:
            self.running = False
            bad = f", {len(self.errors)} failed" if self.errors else ""
            self.query_one("#data-status", Static).update(
                f"{self.store_path.name}: {len(self.results)} diagnostics done{bad}. {self.probe_line()}".rstrip(". "))
            return
        if message.error is not None:
            self.errors[message.name] = message.error
            log.write(Text(f"== {message.name}: failed: {message.error}", style="bold red"))
            if message.name == "(setup)":
                self.running = False
                self.query_one("#data-status", Static).update(f"cannot run: {message.error}")
            return
        self.results[message.name] = message.result or {}
        item = self.host.items["diagnostic"][message.name]
        log.write(render_text(message.name, item.description, message.result or {}, message.seconds))
        log.write("")
        self._chart()

    def _chart(self) -> None:
        """The offset profile and the context position profile on one offset axis (the last
        context chunk is k=-1 from the target): markers at the measured offsets, y limits that
        hold 0..1 and every value, and the numbers in the table beside the chart."""
        prof = self.results.get("direction_profile", {})
        off = prof.get("offset_profile") or {}
        self.offset_values = {int(k): float(c) for k, c in zip(off.get("offsets") or [], off.get("cos") or [])
                              if isinstance(c, (int, float))}
        pos = (prof.get("position_to_target") or {}).get("cos") or []
        self.position_values = {i - len(pos): float(c) for i, c in enumerate(pos) if isinstance(c, (int, float))}
        # where both are measured at one k their values are close: draw them a fifth of a unit
        # apart (left: context position, right: offset profile) so neither marker hides the other
        both = set(self.offset_values) & set(self.position_values)
        series = []
        if self.position_values:
            series.append(("context pos -> target", [k - 0.2 * (k in both) for k in self.position_values],
                           list(self.position_values.values()), POSITION_STYLE, POSITION_MARKER))
        if self.offset_values:
            series.append(("offset profile", [k + 0.2 * (k in both) for k in self.offset_values],
                           list(self.offset_values.values()), OFFSET_STYLE, OFFSET_MARKER))
        ks = sorted(set(self.offset_values) | set(self.position_values))
        values = [*self.offset_values.values(), *self.position_values.values()]
        if not ks:
            return
        step = 1 if ks[-1] - ks[0] <= 12 else 2
        draw_points(self.query_one("#data-plot", PlotWidget), series, xlim=(ks[0] - 0.5, ks[-1] + 0.5),
                    ylim=padded_limits(values, low=0.0, high=1.0), xticks=list(range(ks[0], ks[-1] + 1, step)),
                    yticks=[0.0, 0.5, 1.0])  # 0.25 would be labelled 0.2 by the axis formatter
        table = value_table(["x_t+k", "context"], [(f"k={k:+d}" if k else "k=0", "", "",
                                                 [self.offset_values.get(k), self.position_values.get(k)])
                                                for k in ks], corner="cos")
        self.query_one("#data-values", Static).update(table)

    def probe_line(self) -> str:
        """The order probe against chance, the number that says whether direction is learnable."""
        probe = self.results.get("pair_order_probe", {})
        if not isinstance(probe.get("accuracy"), (int, float)):
            return ""
        return f"order probe accuracy {probe['accuracy']:.3f} vs chance {probe.get('chance', 0.5):.2f}: {probe.get('verdict', '')}"
