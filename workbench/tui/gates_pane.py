"""Gates: the 5CAT battery on any checkpoint (a run's, an imported original one, or a baseline),
shown as the gate table for VAL and OOD with thresholds and pass/fail, the offset profile
k = -3..+3 beside the baselines and the oracle, ablation deltas, rollout per step and the score.

The battery runs as a child process (`lvm-workbench 5cat ... --json`): one code path with the
command line, and a crash or a bad checkpoint there is a message here, never a dead screen.
A checkpoint that knows its split (lvm_core.data.split_guard) is scored on its own val part, as
`5cat` does; the screen names the samples it scored (split, count, articles, seed), shows the
verdict against every baseline with its interval (the run's fitted ridge and frame weights
too, in a run's own gates.json), and the gates to run are chosen from a checklist of every
registered gate, built-in or third-party, like `5cat --gate`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Input, Label, Select, SelectionList, Static
from textual_plot import PlotWidget

from lvm_core.data.split_guard import CheckpointSplit, resolve_checkpoint_split
from lvm_core.errors import InputError
from lvm_core.evaluation.battery import DEFAULT_GATES

from .charts import draw_points, key_title, padded_limits, value_table

BASELINE_MODELS = ("copy_last", "context_mean", "oracle")
PROFILE_STYLES = {"model": "bright_cyan", "copy_last": "bright_red", "context_mean": "bright_yellow", "oracle": "bright_green"}
PROFILE_MARKERS = {"model": "●", "copy_last": "■", "context_mean": "▲", "oracle": "◆"}
# drawn in this order: the model last, on top where it shares a cell with a baseline
PROFILE_ORDER = ("context_mean", "copy_last", "oracle", "model")
OFFSET_KEYS = ("k=-3", "k=-2", "k=-1", "k=0", "k=+1", "k=+2", "k=+3")
OFFSETS = tuple(range(-3, 4))
SHORT = {"context_mean": "ctx_mean"}


def find_checkpoints(runs_dir: Path) -> list[Path]:
    """Every checkpoint under the runs folder, newest run first."""
    if not runs_dir.is_dir():
        return []
    found = sorted(runs_dir.glob("*/checkpoints/*.safetensors"), key=lambda p: p.stat().st_mtime, reverse=True)
    return found


def check_line(c: dict[str, Any]) -> str:
    """One check as `split.metric value op threshold ok|x`."""
    value = c.get("value")
    shown = "-" if value is None else f"{value:.3f}"
    mark = "ok" if c.get("passed") else "x"
    return f"{c['split']}.{c['metric']} {shown} {c['op']} {c['threshold']:g} {mark}"


def gate_rows(doc: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(gate, title, verdict, checks) rows of a gates.json document; `checks` is every check."""
    rows = []
    for key, g in doc.get("gates", {}).items():
        verdict = "n/a" if g.get("passed") is None else ("PASS" if g["passed"] else "FAIL")
        checks = [check_line(c) for c in g.get("checks", [])]
        rows.append((key, g.get("title", ""), verdict, "; ".join(checks) or g.get("note", "")))
    return rows


def check_summary(gate: dict[str, Any], width: int = 60) -> str:
    """A short line for the gate table: `k/n ok`, then the failing checks' names (the values
    and thresholds are in the details panel), cut with `...` to `width`."""
    checks = gate.get("checks", [])
    if not checks:
        return (gate.get("note") or "")[:width]
    ok = sum(1 for c in checks if c.get("passed"))
    failing = [f"{c['split']}.{c['metric']}" for c in checks if not c.get("passed")]
    text = f"{ok}/{len(checks)} ok" + (f"; x {', '.join(failing)}" if failing else "")
    return text if len(text) <= width else text[: width - 3] + "..."


def offset_profile(doc: dict[str, Any], split: str = "val") -> dict[str, list[float]]:
    """predictor -> mean cos at k = -3..+3 (gate A), for the model, the baselines and the oracle."""
    by_pred = doc.get("gates", {}).get("A", {}).get("metrics", {}).get(split, {})
    out = {}
    for pred, values in by_pred.items():
        ys = [values.get(k) for k in OFFSET_KEYS]
        if all(isinstance(y, (int, float)) for y in ys):
            out[pred] = [float(y) for y in ys]
    return out


def profile_table(profile: dict[str, list[float]]) -> Text:
    """The offset profile as numbers: rows model/copy_last/context_mean/oracle, columns k=-3..+3."""
    order = [p for p in ("model", "copy_last", "context_mean", "oracle") if p in profile]
    order += [p for p in profile if p not in order]
    return value_table(OFFSET_KEYS,
                       [(SHORT.get(p, p), PROFILE_STYLES.get(p, "white"), PROFILE_MARKERS.get(p, "+"), profile[p])
                        for p in order], corner="mean cos", highlight_max=True)


def own_split(model: str) -> CheckpointSplit | None:
    """What a checkpoint says about its split (None for a baseline, an original .pt or an
    unreadable file: then `5cat` decides and says so)."""
    path = Path(model).expanduser()
    if model in BASELINE_MODELS or path.suffix == ".pt" or not path.is_file():
        return None
    from lvm_core.training.checkpoint import read_checkpoint_meta

    try:
        return resolve_checkpoint_split(path, read_checkpoint_meta(path))
    except (InputError, OSError, ValueError):
        return None


def samples_line(doc: dict[str, Any]) -> str:
    """Which samples were scored: per split its store, the part of which split file, how many
    samples from how many articles, and the seed that drew them."""
    split = doc.get("split") or {}
    status = split.get("status", "unknown")
    if "split" not in doc:  # a run's own gates.json: the in-training battery on the run's split
        which = "the run's own split, in training"
    elif status in ("own", "given"):
        where = f"part {split.get('part', 'val')} of {split.get('file') or 'the recorded split'}"
        which = f"{'its own split' if status == 'own' else 'given split'}, {where}"
    else:
        which = f"split: {status}"
    seed = (doc.get("config") or {}).get("seed")
    parts = []
    for name, info in (doc.get("splits") or {}).items():
        store = Path(str(info.get("store", ""))).name or "?"
        parts.append(f"{name} {store}: {info.get('samples')} samples from {info.get('articles')} articles")
    return f"scored {'; '.join(parts)} ({which}; seed {seed})"


def verdict_text(doc: dict[str, Any]) -> Text:
    """The verdict against the baselines, per split: the gain over each baseline (copy-last,
    context mean, and fitted ridge / frame weights when the battery had them) with its paired
    bootstrap interval over articles, and each baseline's own cos."""
    summary = doc.get("beats_baselines")
    text = Text()
    if not summary:
        return text
    level = summary.get("level")
    text.append(f"beats the baselines ({round(level * 100) if level else 95}% interval over articles): ", style="bold")
    passed = summary.get("passed")
    text.append("yes\n" if passed else "no\n", style="green" if passed else "bold red")
    for split, sp in summary.get("splits", {}).items():
        text.append(f"{split} ", style="bold")
        text.append("yes" if sp.get("passed") else "no", style="green" if sp.get("passed") else "red")
        text.append(f", model cos {_num(sp.get('cos'))}\n")
        for b, g in sp.get("against", {}).items():
            mark = "ok" if isinstance(g.get("lo"), (int, float)) and g["lo"] > 0 else " x"
            text.append(f"  {mark} vs {SHORT.get(b, b):<13} cos {_num(g.get('cos'))}  gain {_num(g.get('mean'), '+.4f')} "
                        f"[{_num(g.get('lo'), '+.4f')}, {_num(g.get('hi'), '+.4f')}]\n")
    return text


def _num(v: Any, spec: str = ".4f") -> str:
    return format(v, spec) if isinstance(v, (int, float)) and not isinstance(v, bool) else "n/a"


def run_gates_json(model: str) -> Path | None:
    """The gates.json of the run a checkpoint belongs to (its in-training battery, with the
    run's fitted baselines), found up to three folders above the file."""
    here = Path(model).expanduser().resolve().parent
    for folder in (here, *list(here.parents)[:3]):
        if (folder / "run.json").is_file():
            return folder / "gates.json" if (folder / "gates.json").is_file() else None
    return None


def _metric_line(doc: dict[str, Any], gate: str, split: str = "val") -> str:
    values = doc.get("gates", {}).get(gate, {}).get("metrics", {}).get(split, {}).get("model", {})
    shown = [f"{k} {v:+.3f}" for k, v in values.items() if isinstance(v, (int, float)) and k not in ("samples", "horizon")]
    return ", ".join(shown) or "-"


class GatesPane(Vertical):
    """The Gates tab."""

    KEYS = [Binding("g", "run_gates", "Run 5CAT", tooltip="run the 5CAT battery on the chosen checkpoint or baseline")]

    DEFAULT_CSS = """
    #gates-plot-col { width: 3fr; min-width: 63; }  /* the value table under the chart never wraps */
    #gates-plot { height: 1fr; }
    #gates-profile-table { height: auto; }
    #gates-side { width: 2fr; height: 1fr; }
    #gates-checks { padding: 0 1; }
    #gates-choose { width: 30; height: 7; }
    #gates-run-col { width: 1fr; height: auto; }
    #gates-top { height: auto; }
    #gates-scored, #gates-verdict { padding: 0 1; height: auto; }
    """

    def __init__(self, runs_dir: Path, gate_names: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runs_dir = runs_dir
        #: every registered gate (built-in and third-party), in the checklist
        self.gate_names = list(gate_names or DEFAULT_GATES)
        self.args: list[str] = []  # the last 5cat command line's arguments
        self.val_store: str = ""
        self.ood_store: str = ""
        self.doc: dict[str, Any] | None = None
        self.profile: dict[str, list[float]] = {}  # what the chart and the table under it show
        self.running = False

    def compose(self) -> ComposeResult:
        yield Static("pick a checkpoint (or a baseline) and press g", id="gates-status")
        with Horizontal(id="gates-top"):
            with Vertical(id="gates-run-col"):
                with Horizontal(classes="field"):
                    yield Label("model", classes="field-label")
                    yield Select([], id="gates-model", prompt="a checkpoint or a baseline", compact=True)
                with Horizontal(classes="field"):
                    yield Label("or path", classes="field-label")
                    yield Input(id="gates-path", placeholder="a .safetensors or original .pt checkpoint", compact=True)
                with Horizontal(classes="field"):
                    yield Label("samples/seed", classes="field-label")
                    yield Input("1000", id="gates-n", type="integer", compact=True)
                    yield Input("0", id="gates-seed", type="integer", compact=True)
                    yield Button("Run 5CAT", id="gates-run", compact=True)
                yield Static("", id="gates-scored")
            yield SelectionList[str](*[(name, name, name in DEFAULT_GATES) for name in self.gate_names],
                                     id="gates-choose")
        yield DataTable(id="gates-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="gates-bottom"):
            with Vertical(id="gates-plot-col"):
                yield Label(self._chart_title(), id="gates-plot-title", classes="chart-title")
                yield PlotWidget(id="gates-plot", allow_pan_and_zoom=False)
                yield Static("", id="gates-profile-table")
            with VerticalScroll(id="gates-side"):
                yield Static("", id="gates-verdict")
                yield Static("", id="gates-checks")
                yield Static("", id="gates-detail")

    @staticmethod
    def _chart_title() -> Text:
        return key_title("offset profile (VAL)",
                         [(SHORT.get(p, p), PROFILE_STYLES[p], PROFILE_MARKERS[p])
                          for p in ("model", "copy_last", "context_mean", "oracle")])

    def on_mount(self) -> None:
        self.query_one("#gates-choose", SelectionList).border_title = "gates (5cat --gate)"
        self.query_one("#gates-table", DataTable).add_columns("gate", "title", "verdict", "checks")
        plot = self.query_one("#gates-plot", PlotWidget)
        plot.margin_top, plot.margin_bottom, plot.margin_left = 0, 1, 6
        self.refresh_models()

    def refresh_models(self) -> None:
        """Offer the checkpoints of every run and the baselines."""
        options = [(f"{p.parent.parent.name}/{p.stem}", str(p)) for p in find_checkpoints(self.runs_dir)]
        options += [(f"baseline {b}", b) for b in BASELINE_MODELS]
        select = self.query_one("#gates-model", Select)
        current = select.value
        select.set_options(options)
        if current in {v for _, v in options}:
            select.value = current

    def follow(self, val_store: str, ood_store: str) -> None:
        self.val_store, self.ood_store = val_store, ood_store

    def chosen_model(self) -> str:
        typed = self.query_one("#gates-path", Input).value.strip()
        if typed:
            return typed
        value = self.query_one("#gates-model", Select).value
        return "" if value is Select.NULL else str(value)

    def say(self, text: str, *, error: bool = False) -> None:
        status = self.query_one("#gates-status", Static)
        status.update(text)
        status.set_class(error, "error")

    def action_run_gates(self) -> None:
        if self.running:
            return
        model = self.chosen_model()
        if not model:
            self.say("choose a checkpoint or a baseline first", error=True)
            return
        if not self.val_store:
            self.say("choose a dataset on Setup first (it is the VAL split)", error=True)
            return
        typed = self.query_one("#gates-path", Input).value.strip()
        if typed and model not in BASELINE_MODELS and not Path(typed).expanduser().is_file():
            self.say(f"{typed}: no such checkpoint file", error=True)  # the path as typed
            return
        try:
            samples = int(self.query_one("#gates-n", Input).value)
            seed = int(self.query_one("#gates-seed", Input).value or 0)
        except ValueError:
            self.say("samples and seed: expected integers", error=True)
            return
        gates = list(self.query_one("#gates-choose", SelectionList).selected)
        if not gates:
            self.say("choose at least one gate in the list", error=True)
            return
        args = ["--model", model, "--val", self.val_store, "--samples", str(samples), "--seed", str(seed)]
        for name in gates:
            args += ["--gate", name]
        known = own_split(model)
        scope = "the whole store (split: unknown)" if known is None or not known.known else "its own val part"
        if known is not None and known.split is not None and known.path is not None:
            args += ["--split-file", str(known.path), "--val-part", "val"]
            scope = f"the val part of {known.path}"
        if self.ood_store:
            args += ["--ood", self.ood_store]
        self.running = True
        self.args = args
        self.say(f"running 5CAT on {model}: {scope}, {samples} samples per split, seed {seed} ...")
        self._run(args)

    @on(Select.Changed, "#gates-model")
    def _model_chosen(self, event: Select.Changed) -> None:
        """A run's checkpoint: show that run's own gates.json (its in-training battery, with
        the fitted baselines) until g scores the checkpoint here."""
        if not isinstance(event.value, str) or self.running:
            return
        found = run_gates_json(event.value)
        if found is None:
            return
        try:
            doc = json.loads(found.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self.say(f"{found}: not readable ({exc})", error=True)
            return
        self.show(doc)
        self.say(f"the run's own battery ({found}); g scores {Path(event.value).name} here")

    @work(exclusive=True, group="gates", exit_on_error=False)
    async def _run(self, args: list[str]) -> None:
        with tempfile.TemporaryDirectory(prefix="lvm-tui-5cat-") as tmp:
            out = Path(tmp) / "gates.json"
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "workbench.cli", "5cat", *args, "--json", str(out),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            _stdout, stderr = await proc.communicate()
            self.running = False
            if proc.returncode not in (0, 3) or not out.is_file():
                lines = [ln for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
                # the child's own line names the path as it was typed (it is passed on unchanged)
                self.say(f"5CAT failed (exit {proc.returncode}): {lines[-1] if lines else 'no message'}", error=True)
                return
            self.show(json.loads(out.read_text(encoding="utf-8")))

    def show(self, doc: dict[str, Any]) -> None:
        """Show a gates.json document (from this screen's run or from a run directory)."""
        self.doc = doc
        table = self.query_one("#gates-table", DataTable)
        table.clear()
        # the checks column fits the screen (all of them are in the panel beside the chart)
        summary_width = max(16, (self.size.width or 120) - 48)
        for key, gate in doc.get("gates", {}).items():
            verdict = "n/a" if gate.get("passed") is None else ("PASS" if gate["passed"] else "FAIL")
            style = {"PASS": "green", "FAIL": "bold red"}.get(verdict, "")
            table.add_row(key, gate.get("title", ""), Text(verdict, style=style), check_summary(gate, summary_width), key=key)
        # every row in view, no blank rows under them: the space goes to the chart
        table.styles.height = table.row_count + 1
        self.show_profile(offset_profile(doc))
        self.show_checks(next(iter(doc.get("gates", {})), None))
        self.query_one("#gates-scored", Static).update(samples_line(doc) if doc.get("splits") else "")
        self.query_one("#gates-verdict", Static).update(verdict_text(doc))
        detail = Text()
        detail.append(f"score {doc.get('score')}/{doc.get('max_score')}  ", style="bold")
        detail.append("PASSED\n" if doc.get("passed") else "FAILED\n", style="green" if doc.get("passed") else "bold red")
        baselines = ", ".join(f"{name} {b.get('score')}" for name, b in doc.get("baselines", {}).items())
        if baselines:
            detail.append(f"baseline scores: {baselines}\n")
        detail.append(f"ablation deltas (C): {_metric_line(doc, 'C')}\n")
        detail.append(f"rollout per step (D): {_metric_line(doc, 'D')}")
        self.query_one("#gates-detail", Static).update(detail)
        self.say(f"5CAT score {doc.get('score')}/{doc.get('max_score')}: {'passed' if doc.get('passed') else 'failed'}",
                 error=not doc.get("passed"))

    def show_profile(self, profile: dict[str, list[float]]) -> None:
        """Gate A's offset profile: a marker per predictor at each k (dots between), y limits
        that hold every value and 1.0, and the same numbers in the table under the chart."""
        self.profile = profile
        order = [p for p in PROFILE_ORDER if p in profile] + [p for p in profile if p not in PROFILE_ORDER]
        series = [(p, list(OFFSETS), profile[p], PROFILE_STYLES.get(p, "white"), PROFILE_MARKERS.get(p, "+"))
                  for p in order]
        values = [v for ys in profile.values() for v in ys]
        draw_points(self.query_one("#gates-plot", PlotWidget), series, xlim=(-3.5, 3.5),
                    ylim=padded_limits(values, low=0.0, high=1.0), xticks=OFFSETS,
                    yticks=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
        self.query_one("#gates-profile-table", Static).update(profile_table(profile) if profile else "")
        self.call_after_refresh(self._fit_plot)

    def show_checks(self, key: str | None) -> None:
        """Every check of one gate, a line each, with its value, threshold and verdict."""
        gate = (self.doc or {}).get("gates", {}).get(key or "", {})
        text = Text()
        if gate:
            verdict = "n/a" if gate.get("passed") is None else ("PASS" if gate["passed"] else "FAIL")
            text.append(f"gate {key} {gate.get('title', '')}: ", style="bold")
            text.append(verdict + "\n", style={"PASS": "green", "FAIL": "bold red"}.get(verdict, ""))
            for c in gate.get("checks", []):
                value = c.get("value")
                shown = "-" if value is None else f"{value:+.3f}"
                text.append("ok " if c.get("passed") else " x ", style="green" if c.get("passed") else "bold red")
                text.append(f"{c['split']}.{c['metric']}".ljust(24) + f"{shown:>7} {c['op']} {c['threshold']:g}\n")
            if not gate.get("checks") and gate.get("note"):
                text.append(f"  {gate['note']}\n")
        self.query_one("#gates-checks", Static).update(text)

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_plot)

    def _fit_plot(self) -> None:
        """Hide the chart where it would get fewer rows than it needs to tell values apart
        (at 80x24 it would squash 0.45 and 1.0 into one row); the table under it stays."""
        col = self.query_one("#gates-plot-col")
        room = col.size.height - 1 - self.query_one("#gates-profile-table").size.height
        self.query_one("#gates-plot", PlotWidget).display = room >= 9

    @on(DataTable.RowHighlighted, "#gates-table")
    def _row(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value is not None:
            self.show_checks(str(event.row_key.value))

    @on(Button.Pressed, "#gates-run")
    def _b_run(self) -> None:
        self.action_run_gates()
