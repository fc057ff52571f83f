"""Gates: the 5CAT battery on any checkpoint (a run's, an imported original one, or a baseline),
shown as the gate table for VAL and OOD with thresholds and pass/fail, the offset profile
k = -3..+3 beside the baselines and the oracle, ablation deltas, rollout per step and the score.

The battery runs as a child process (`lvm-workbench 5cat ... --json`): one code path with the
command line, and a crash or a bad checkpoint there is a message here, never a dead screen.
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
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, Label, Select, Static
from textual_plot import PlotWidget

BASELINE_MODELS = ("copy_last", "context_mean", "oracle")
PROFILE_STYLES = {"model": "bright_cyan", "copy_last": "red", "context_mean": "yellow", "oracle": "green"}
OFFSET_KEYS = ("k=-3", "k=-2", "k=-1", "k=0", "k=+1", "k=+2", "k=+3")


def find_checkpoints(runs_dir: Path) -> list[Path]:
    """Every checkpoint under the runs folder, newest run first."""
    if not runs_dir.is_dir():
        return []
    found = sorted(runs_dir.glob("*/checkpoints/*.safetensors"), key=lambda p: p.stat().st_mtime, reverse=True)
    return found


def gate_rows(doc: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(gate, title, verdict, checks) rows of a gates.json document."""
    rows = []
    for key, g in doc.get("gates", {}).items():
        verdict = "n/a" if g.get("passed") is None else ("PASS" if g["passed"] else "FAIL")
        checks = []
        for c in g.get("checks", []):
            value = c.get("value")
            shown = "-" if value is None else f"{value:.3f}"
            mark = "ok" if c.get("passed") else "x"
            checks.append(f"{c['split']}.{c['metric']} {shown} {c['op']} {c['threshold']:g} {mark}")
        rows.append((key, g.get("title", ""), verdict, "; ".join(checks) or g.get("note", "")))
    return rows


def offset_profile(doc: dict[str, Any], split: str = "val") -> dict[str, list[float]]:
    """predictor -> mean cos at k = -3..+3 (gate A), for the model, the baselines and the oracle."""
    by_pred = doc.get("gates", {}).get("A", {}).get("metrics", {}).get(split, {})
    out = {}
    for pred, values in by_pred.items():
        ys = [values.get(k) for k in OFFSET_KEYS]
        if all(isinstance(y, (int, float)) for y in ys):
            out[pred] = [float(y) for y in ys]
    return out


def _metric_line(doc: dict[str, Any], gate: str, split: str = "val") -> str:
    values = doc.get("gates", {}).get(gate, {}).get("metrics", {}).get(split, {}).get("model", {})
    shown = [f"{k} {v:+.3f}" for k, v in values.items() if isinstance(v, (int, float)) and k not in ("samples", "horizon")]
    return ", ".join(shown) or "-"


class GatesPane(Vertical):
    """The Gates tab."""

    BINDINGS = [Binding("g", "run_gates", "Run 5CAT")]

    def __init__(self, runs_dir: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runs_dir = runs_dir
        self.val_store: str = ""
        self.ood_store: str = ""
        self.doc: dict[str, Any] | None = None
        self.running = False

    def compose(self) -> ComposeResult:
        yield Static("pick a checkpoint (or a baseline) and press g", id="gates-status")
        with Horizontal(classes="field"):
            yield Label("model", classes="field-label")
            yield Select([], id="gates-model", prompt="a checkpoint or a baseline", compact=True)
        with Horizontal(classes="field"):
            yield Label("or path", classes="field-label")
            yield Input(id="gates-path", placeholder="a .safetensors or original .pt checkpoint", compact=True)
        with Horizontal(classes="field"):
            yield Label("samples", classes="field-label")
            yield Input("1000", id="gates-n", type="integer", compact=True)
            yield Button("Run 5CAT", id="gates-run", compact=True)
        yield DataTable(id="gates-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="gates-bottom"):
            with Vertical(classes="chart"):
                yield Label("offset profile (VAL): model cyan, copy-last red, ctx-mean yellow, oracle green", classes="chart-title")
                yield PlotWidget(id="gates-plot", allow_pan_and_zoom=False)
            yield Static("", id="gates-detail")

    def on_mount(self) -> None:
        self.query_one("#gates-table", DataTable).add_columns("gate", "title", "verdict", "checks")
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
        try:
            samples = int(self.query_one("#gates-n", Input).value)
        except ValueError:
            self.say("samples: expected an integer", error=True)
            return
        args = ["--model", model, "--val", self.val_store, "--samples", str(samples)]
        split = Path(model).parent.parent / "split.json"
        if split.is_file():
            args += ["--split-file", str(split), "--val-part", "val"]
        if self.ood_store:
            args += ["--ood", self.ood_store]
        self.running = True
        self.say(f"running 5CAT on {model} ({samples} samples per split) ...")
        self._run(args)

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
                self.say(f"5CAT failed (exit {proc.returncode}): {lines[-1] if lines else 'no message'}", error=True)
                return
            self.show(json.loads(out.read_text(encoding="utf-8")))

    def show(self, doc: dict[str, Any]) -> None:
        """Show a gates.json document (from this screen's run or from a run directory)."""
        self.doc = doc
        table = self.query_one("#gates-table", DataTable)
        table.clear()
        for key, title, verdict, checks in gate_rows(doc):
            style = {"PASS": "green", "FAIL": "bold red"}.get(verdict, "")
            table.add_row(key, title, Text(verdict, style=style), checks)
        plot = self.query_one("#gates-plot", PlotWidget)
        plot.clear()
        for pred, ys in offset_profile(doc).items():
            plot.plot(list(range(-3, 4)), ys, line_style=PROFILE_STYLES.get(pred, "white"), label=pred)
        plot.show_legend()
        detail = Text()
        detail.append(f"score {doc.get('score')}/{doc.get('max_score')}  ", style="bold")
        detail.append("PASSED\n" if doc.get("passed") else "FAILED\n", style="green" if doc.get("passed") else "bold red")
        detail.append(f"ablation deltas (C): {_metric_line(doc, 'C')}\n")
        detail.append(f"rollout per step (D): {_metric_line(doc, 'D')}\n")
        for name, b in doc.get("baselines", {}).items():
            detail.append(f"{name}: score {b.get('score')}\n")
        self.query_one("#gates-detail", Static).update(detail)
        self.say(f"5CAT score {doc.get('score')}/{doc.get('max_score')}: {'passed' if doc.get('passed') else 'failed'}",
                 error=not doc.get("passed"))

    @on(Button.Pressed, "#gates-run")
    def _b_run(self) -> None:
        self.action_run_gates()
