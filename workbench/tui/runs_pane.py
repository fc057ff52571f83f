"""Runs: every run in the runs folder with status, model, val cos beside its baselines, best
checkpoint, gate score and time; mark runs to overlay a metric's curves and to see the very
comparison `lvm-workbench runs compare` prints (lvm_core/evaluation/compare.py: the table with every
baseline and the verdict against them, seed-group intervals, plan differences); resume or attach."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.containers import VerticalScroll
from textual.widgets import Button, DataTable, Label, Select, Static
from textual_plot import PlotWidget

from lvm_core.errors import InputError
from lvm_core.evaluation import compare as run_compare
from lvm_core.rundir import format_table
from lvm_core.run_index import RunSummary, read_jsonl, scan_runs
from lvm_core.training.checkpointer import Checkpointer

from .charts import draw_points, key_title, padded_limits
from .rundirs import metric_names, metric_series
from .train_pane import format_eta

#: the metrics offered first (then every other one the marked runs logged, plugins' included)
COMPARE_METRICS = ("val/cos", "val/margin_vs_last", "loss")
STYLES = ("bright_cyan", "bright_magenta", "bright_yellow", "bright_green")
MARKERS = ("●", "■", "▲", "◆")
#: most runs marked at once (one colour and marker each in the overlay)
MOST_MARKED = len(STYLES)


def comparison_text(rows: list[dict[str, Any]]) -> Text:
    """`runs compare`'s sections from lvm_core.evaluation.compare, laid out for a side panel: the comparison
    table turned (one line per column of the CLI's table, one column per run), then the seed
    groups' intervals and the plan differences as the CLI prints them."""
    table = run_compare.comparison_rows(rows)
    turned = [list(col) for col in zip(*table)]
    out = Text()
    out.append("runs compare\n", style="bold")
    out.append(format_table(turned) + "\n")
    groups = run_compare.render_group_text(rows)
    if groups:
        out.append("\n" + groups)
    diff = run_compare.diff_rows(rows)
    out.append("\nplan differences\n", style="bold")
    out.append(format_table(diff) if len(diff) > 1 else "(the resolved plans are identical)")
    return out


class RunsPane(Vertical):
    """The Runs tab."""

    KEYS = [
        Binding("space", "mark", "Mark", tooltip="mark or unmark the run under the cursor (2 to 4 are compared)"),
        Binding("c", "compare", "Compare", tooltip="compare the marked runs (the `runs compare` table)"),
        Binding("r", "resume", "Resume", tooltip="resume the run under the cursor from its newest checkpoint"),
        Binding("a", "attach", "Attach", tooltip="follow the run under the cursor on Train"),
        Binding("f5", "refresh", "Refresh", tooltip="re-read the runs folder"),
        Binding("m", "next_metric", "Metric", tooltip="overlay the next metric (plugins' own included)"),
    ]

    DEFAULT_CSS = """
    #compare-plot { height: 1fr; }  /* under the title: the x tick labels stay in view */
    #compare-metric { width: 36; }
    #compare-scroll { width: 1fr; height: 1fr; overflow-x: auto; }
    #plan-diff { width: auto; height: auto; }
    """

    class ResumeRequested(Message):
        def __init__(self, run_dir: Path) -> None:
            super().__init__()
            self.run_dir = run_dir

    class AttachRequested(Message):
        def __init__(self, run_dir: Path) -> None:
            super().__init__()
            self.run_dir = run_dir

    def __init__(self, runs_dir: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runs_dir = runs_dir
        self.runs: list[RunSummary] = []
        self.marked: list[Path] = []
        self.metric = COMPARE_METRICS[0]
        self.metrics: list[str] = list(COMPARE_METRICS)  # what the picker offers for the marked runs
        self.diff: list[tuple[str, list[Any]]] = []  # lvm_core.evaluation.compare.plan_diff of the compared runs
        self.rows: list[dict[str, Any]] = []  # lvm_core.evaluation.compare.run_rows of the compared runs
        self.compared: dict[str, tuple[list[float], list[float]]] = {}  # run name -> (x, metric) as drawn

    def compose(self) -> ComposeResult:
        yield Static("", id="runs-message")
        with Horizontal(classes="buttons"):
            yield Button("Refresh", compact=True, id="runs-refresh")
            yield Button("Compare marked", compact=True, id="runs-compare")
            yield Button("Resume", compact=True, id="runs-resume")
            yield Button("Attach", compact=True, id="runs-attach")
            yield Select([(m, m) for m in COMPARE_METRICS], value=COMPARE_METRICS[0], allow_blank=False,
                         id="compare-metric", compact=True)
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="runs-compare-area"):
            with Vertical(classes="chart"):
                yield Label("", id="compare-title", classes="chart-title")
                yield PlotWidget(id="compare-plot", allow_pan_and_zoom=False)
            with VerticalScroll(id="compare-scroll"):
                yield Static("mark two runs with space, then press c", id="plan-diff")

    def on_mount(self) -> None:
        plot = self.query_one("#compare-plot", PlotWidget)
        plot.margin_top, plot.margin_bottom = 0, 1
        self.query_one("#runs-table", DataTable).add_columns("", "run", "status", "model", "val cos", "copy-last", "ctx-mean", "best",
                                                                 "5CAT", "time", "started")
        self.refresh_runs()

    def refresh_runs(self) -> None:
        """Re-read the runs folder (keeps the marks of runs that are still there)."""
        self.runs = scan_runs(self.runs_dir)
        paths = {r.path for r in self.runs}
        self.marked = [p for p in self.marked if p in paths]
        table = self.query_one("#runs-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        for r in self.runs:
            gate = "-" if r.gate_score is None else f"{r.gate_score} {'pass' if r.gate_passed else 'fail'}"
            status = Text(r.status, style={"completed": "green", "failed": "red", "diverged": "red",
                                           "stopped": "yellow", "running": "cyan"}.get(r.status, ""))
            cos = r.val.get("val/cos")
            beats = [r.val.get(f"val/{b}/cos") for b in ("copy_last", "context_mean")]
            ahead = isinstance(cos, (int, float)) and all(isinstance(b, (int, float)) and cos > b for b in beats)
            table.add_row("*" if r.path in self.marked else "", r.label, status, r.arch or "-",
                          Text(r.val_text("val/cos"), style="green" if ahead else ""),
                          r.val_text("val/copy_last/cos"), r.val_text("val/context_mean/cos"), r.best_text, gate,
                          format_eta(r.duration_s) if r.duration_s is not None else "-", r.started[:19],
                          key=str(r.path))
        if self.runs:
            table.move_cursor(row=min(max(cursor, 0), len(self.runs) - 1))
        problems = [f"{r.path.name}: {r.problem}" for r in self.runs if r.problem]
        where = f"{len(self.runs)} runs in {self.runs_dir}" if self.runs else f"no runs in {self.runs_dir} yet"
        self.say("\n".join([where, *problems]), error=bool(problems))

    def say(self, text: str, *, error: bool = False) -> None:
        msg = self.query_one("#runs-message", Static)
        msg.update(text)
        msg.set_class(error, "error")

    def current(self) -> RunSummary | None:
        table = self.query_one("#runs-table", DataTable)
        if not self.runs or table.cursor_row < 0:
            return None
        return self.runs[min(table.cursor_row, len(self.runs) - 1)]

    # ---- actions -------------------------------------------------------------------------
    def action_refresh(self) -> None:
        self.refresh_runs()

    def action_mark(self) -> None:
        run = self.current()
        if run is None:
            return
        if run.path in self.marked:
            self.marked.remove(run.path)
        else:
            self.marked = (self.marked + [run.path])[-MOST_MARKED:]
        self.refresh_runs()

    def action_next_metric(self) -> None:
        i = self.metrics.index(self.metric) if self.metric in self.metrics else -1
        self.choose_metric(self.metrics[(i + 1) % len(self.metrics)])

    def choose_metric(self, metric: str) -> None:
        self.metric = metric
        select = self.query_one("#compare-metric", Select)
        if select.value != metric and metric in self.metrics:
            select.value = metric
        if len(self.marked) >= 2:
            self.compare(self.marked)

    @on(Select.Changed, "#compare-metric")
    def _metric_chosen(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != self.metric:
            self.choose_metric(event.value)

    def action_compare(self) -> None:
        if len(self.marked) < 2:
            self.say("mark two runs (up to four) with space first", error=True)
            return
        self.compare(self.marked)

    def _offer_metrics(self, records: list[list[dict[str, Any]]]) -> None:
        """The picker offers the usual three, then every metric some marked run logged."""
        found = {m for recs in records for m in metric_names(recs)}
        self.metrics = [m for m in COMPARE_METRICS] + [m for m in sorted(found, key=lambda k: (k.startswith("plugin/"), k))
                                                        if m not in COMPARE_METRICS]
        select = self.query_one("#compare-metric", Select)
        with select.prevent(Select.Changed):
            select.set_options([(m, m) for m in self.metrics])
            select.value = self.metric if self.metric in self.metrics else self.metrics[0]

    def compare(self, paths: list[Path]) -> None:
        """Overlay the chosen metric of the runs and show `runs compare`'s table for them."""
        records = [read_jsonl(path / "metrics.jsonl") for path in paths]
        self._offer_metrics(records)
        self.compared = {}
        drawn = []
        x_key = "epoch"
        for path, recs, style, marker in zip(paths, records, STYLES, MARKERS):
            x_key, xs, ys = metric_series(recs, self.metric)
            if ys:
                self.compared[path.name] = (xs, ys)
                drawn.append((path.name[:30], xs, ys, style, marker))
        # a marker per point where a point is an epoch; a step curve is dense: small dots, no joins
        many = any(len(xs) > 60 for _n, xs, _y, _s, _m in drawn)
        xs_all = [x for _n, xs, _y, _s, _m in drawn for x in xs]
        ys_all = [y for _n, _x, ys, _s, _m in drawn for y in ys]
        epochs = x_key == "epoch" and xs_all and max(xs_all) - min(xs_all) <= 12
        draw_points(self.query_one("#compare-plot", PlotWidget),
                    [(n, xs, ys, s, "•" if many else m) for n, xs, ys, s, m in drawn], lines=not many,
                    xlim=(min(xs_all) - 0.3, max(xs_all) + 0.3) if epochs else None,
                    xticks=list(range(int(min(xs_all)), int(max(xs_all)) + 1)) if epochs else None,
                    ylim=padded_limits(ys_all) if ys_all else None)
        self.query_one("#compare-title", Label).update(key_title(
            f"{self.metric} by {x_key}", [(path.name[-15:], style, marker)
                                         for path, style, marker in zip(paths, STYLES, MARKERS)]))
        text = Text()
        for path, style, marker in zip(paths, STYLES, MARKERS):
            xs, ys = self.compared.get(path.name, ([], []))
            text.append(f"{marker} {path.name}", style=style)
            text.append(f": {self.metric} last {ys[-1]:+.4f} ({x_key} {xs[-1]:g})\n" if ys
                        else f": no {self.metric} recorded\n")
        try:
            self.rows = run_compare.run_rows(paths)
        except (InputError, OSError, ValueError) as exc:
            self.rows, self.diff = [], []
            text.append(f"\ncannot compare: {exc}", style="red")
        else:
            self.diff = run_compare.plan_diff([r.get("resolved", {}) for r in self.rows])
            text.append("\n")
            text.append_text(comparison_text(self.rows))
        self.query_one("#plan-diff", Static).update(text)

    def action_resume(self) -> None:
        """Resume from the newest complete checkpoint generation (what `--resume D` takes);
        refuse in one line when the run has none."""
        run = self.current()
        if run is None:
            return
        if run.status not in ("stopped", "failed", "diverged"):
            self.say(f"{run.label} is {run.status}; only a stopped, failed or diverged run can be resumed", error=True)
            return
        try:
            gen = Checkpointer(run.path / "checkpoints").pick("last")
        except InputError as exc:
            self.say(f"{run.label}: cannot resume: {exc.line()}", error=True)
            return
        if gen is None:
            self.say(f"{run.label}: no complete checkpoint in {run.path / 'checkpoints'} to resume from", error=True)
            return
        self.say(f"resuming {run.label} from {gen.name} (step {gen.step})")
        self.post_message(self.ResumeRequested(run.path))

    def action_attach(self) -> None:
        run = self.current()
        if run is not None:
            self.post_message(self.AttachRequested(run.path))

    @on(Button.Pressed, "#runs-refresh")
    def _b_refresh(self) -> None:
        self.action_refresh()

    @on(Button.Pressed, "#runs-compare")
    def _b_compare(self) -> None:
        self.action_compare()

    @on(Button.Pressed, "#runs-resume")
    def _b_resume(self) -> None:
        self.action_resume()

    @on(Button.Pressed, "#runs-attach")
    def _b_attach(self) -> None:
        self.action_attach()
