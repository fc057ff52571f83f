"""Runs: every run in the runs folder with status, best metric, gate score and time; mark two to
overlay their curves and list the differences between their plans; resume or attach."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Label, Static
from textual_plot import PlotWidget

from .charts import draw_points, key_title, padded_limits
from .rundirs import RunInfo, curves, plan_diff, read_jsonl, read_plan, scan_runs
from .train_pane import format_eta

COMPARE_METRICS = ("val/margin_vs_last", "val/cos", "loss")
STYLES = ("bright_cyan", "bright_magenta")
MARKERS = ("●", "■")


class RunsPane(Vertical):
    """The Runs tab."""

    KEYS = [
        Binding("space", "mark", "Mark", tooltip="mark or unmark the run under the cursor (two are compared)"),
        Binding("c", "compare", "Compare", tooltip="compare the two marked runs (the `runs compare` table)"),
        Binding("r", "resume", "Resume", tooltip="resume the stopped run under the cursor"),
        Binding("a", "attach", "Attach", tooltip="follow the run under the cursor on Train"),
        Binding("f5", "refresh", "Refresh", tooltip="re-read the runs folder"),
        Binding("m", "next_metric", "Metric", tooltip="compare another metric"),
    ]

    DEFAULT_CSS = """
    #compare-plot { height: 1fr; }  /* under the title: the x tick labels stay in view */
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
        self.runs: list[RunInfo] = []
        self.marked: list[Path] = []
        self.metric = COMPARE_METRICS[0]
        self.diff: list[tuple[str, Any, Any]] = []
        self.compared: dict[str, tuple[list[float], list[float]]] = {}  # run name -> (x, metric) as drawn

    def compose(self) -> ComposeResult:
        yield Static("", id="runs-message")
        with Horizontal(classes="buttons"):
            yield Button("Refresh", compact=True, id="runs-refresh")
            yield Button("Compare marked", compact=True, id="runs-compare")
            yield Button("Resume", compact=True, id="runs-resume")
            yield Button("Attach", compact=True, id="runs-attach")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="runs-compare-area"):
            with Vertical(classes="chart"):
                yield Label("", id="compare-title", classes="chart-title")
                yield PlotWidget(id="compare-plot", allow_pan_and_zoom=False)
            yield Static("mark two runs with space, then press c", id="plan-diff")

    def on_mount(self) -> None:
        plot = self.query_one("#compare-plot", PlotWidget)
        plot.margin_top, plot.margin_bottom = 0, 1
        self.query_one("#runs-table", DataTable).add_columns("", "run", "status", "model", "val cos", "copy-last", "ctx-mean", "5CAT", "time", "started")
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
            table.add_row("*" if r.path in self.marked else "", r.path.name, status, r.arch or "-",
                          Text(r.val_text("val/cos"), style="green" if ahead else ""),
                          r.val_text("val/copy_last/cos"), r.val_text("val/context_mean/cos"), gate,
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

    def current(self) -> RunInfo | None:
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
            self.marked = (self.marked + [run.path])[-2:]
        self.refresh_runs()

    def action_next_metric(self) -> None:
        self.metric = COMPARE_METRICS[(COMPARE_METRICS.index(self.metric) + 1) % len(COMPARE_METRICS)]
        if len(self.marked) == 2:
            self.action_compare()

    def action_compare(self) -> None:
        if len(self.marked) != 2:
            self.say("mark two runs with space first", error=True)
            return
        a, b = self.marked
        self.compare(a, b)

    def compare(self, a: Path, b: Path) -> None:
        """Overlay the chosen metric of runs a and b, and list their plan differences."""
        kind, x_key = ("StepLogged", "step") if self.metric == "loss" else ("EvalDone", "epoch")
        self.compared = {}
        drawn = []
        for path, style, marker in zip((a, b), STYLES, MARKERS):
            recs = [r for r in read_jsonl(path / "metrics.jsonl") if r.get("kind") == kind]
            series = curves(recs, x_key=x_key).get(self.metric)
            if series:
                self.compared[path.name] = (list(series[0]), list(series[1]))
                drawn.append((path.name[:30], list(series[0]), list(series[1]), style, marker))
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
                                                    for path, style, marker in zip((a, b), STYLES, MARKERS)]))
        self.diff = plan_diff(read_plan(a), read_plan(b))
        text = Text()
        for (path, style, marker) in zip((a, b), STYLES, MARKERS):
            xs, ys = self.compared.get(path.name, ([], []))
            text.append(f"{marker} {path.name}", style=style)
            if ys:
                best = max(ys) if self.metric != "loss" else min(ys)
                text.append(f": {self.metric} last {ys[-1]:+.3f} ({x_key} {xs[-1]:g}), best {best:+.3f}\n")
            else:
                text.append(f": no {self.metric} recorded\n")
        text.append("plan differences\n", style="bold")
        if not self.diff:
            text.append("none: the plans are the same\n")
        for key, va, vb in self.diff:
            text.append(f"{key}: ")
            text.append(f"{va!r}", style="cyan")
            text.append(" -> ")
            text.append(f"{vb!r}\n", style="magenta")
        self.query_one("#plan-diff", Static).update(text)

    def action_resume(self) -> None:
        run = self.current()
        if run is None:
            return
        if run.status not in ("stopped", "failed", "diverged"):
            self.say(f"{run.path.name} is {run.status}; only a stopped run can be resumed", error=True)
            return
        if not (run.path / "checkpoints" / "last.safetensors").is_file():
            self.say(f"{run.path.name} has no checkpoints/last.safetensors to resume from", error=True)
            return
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
