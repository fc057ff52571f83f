"""Reading run directories for the Runs screen: no Textual here, so it is tested on its own.

A run directory (design.md) holds run.json, metrics.jsonl, events.jsonl, plan.toml,
plan.resolved.json and gates.json. Everything here tolerates a run that is still being written
(a half-written last line is left for the next read) and reports a broken file as a problem
string instead of raising, so one bad run never hides the others.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli

from lvm_core.evaluation.metric_names import current_name, upgrade_record
from lvm_core.evaluation.seed_stats import GROUP_JSON

SELECT_DEFAULT = "val/cos"  # lvm_core.training.loop.TrainConfig.select_metric


@dataclass
class RunInfo:
    """What the runs table shows for one run directory."""

    path: Path
    name: str
    status: str
    started: str = ""
    duration_s: float | None = None
    best: dict[str, Any] = field(default_factory=dict)
    gate_score: int | None = None
    gate_passed: bool | None = None
    problem: str | None = None
    arch: str = ""  # the model, from plan.toml
    val: dict[str, Any] = field(default_factory=dict)  # the last evaluation's metrics
    label: str = ""  # how the table names it: the folder, or group/member for a seed group's run

    def __post_init__(self) -> None:
        self.label = self.label or self.path.name

    def val_text(self, key: str) -> str:
        """One number of the last evaluation (`val/cos`, `val/copy_last/cos`, ...) or '-'."""
        value = self.val.get(key)
        return f"{value:.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"

    @property
    def best_text(self) -> str:
        """The best checkpoint as the run selected it: metric (full name), value, epoch."""
        metric = current_name(str(self.best.get("metric", SELECT_DEFAULT)))  # a run from before the rename too
        value = self.best.get("value")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return "-"
        epoch = self.best.get("epoch")
        where = f" @{epoch}" if isinstance(epoch, int) else ""
        return f"{metric} {value:+.3f}{where}"


def _read_json(path: Path) -> dict[str, Any]:
    obj = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    return obj


def read_run(path: Path) -> RunInfo:
    """One run's summary from run.json (and gates.json); a broken file becomes `problem`."""
    info = RunInfo(path=path, name=path.name, status="unknown")
    try:
        run = _read_json(path / "run.json")
    except FileNotFoundError:
        info.problem = "run.json missing"
        return info
    except (ValueError, UnicodeDecodeError) as exc:
        info.problem = f"run.json: not valid JSON ({exc})"
        return info
    info.status = str(run.get("status", "unknown"))
    info.name = str(run.get("name", path.name))
    info.started = str(run.get("started", "") or "")
    dur = run.get("elapsed_s", run.get("duration_s"))
    info.duration_s = float(dur) if isinstance(dur, (int, float)) else None
    best = run.get("best")
    info.best = best if isinstance(best, dict) else {}
    info.arch = str((read_plan(path).get("model") or {}).get("arch", ""))
    evals = [r for r in read_jsonl(path / "metrics.jsonl") if r.get("kind") == "EvalDone"]
    metrics = evals[-1].get("metrics") if evals else None
    info.val = metrics if isinstance(metrics, dict) else {}
    gates = path / "gates.json"
    if gates.is_file():
        try:
            g = _read_json(gates)
            score = g.get("score")
            info.gate_score = int(score) if isinstance(score, (int, float)) else None
            passed = g.get("passed")
            info.gate_passed = bool(passed) if isinstance(passed, bool) else None
        except (ValueError, UnicodeDecodeError) as exc:
            info.problem = f"gates.json: not valid JSON ({exc})"
    return info


def scan_runs(runs_dir: Path) -> list[RunInfo]:
    """Every run directory (a folder with run.json) under `runs_dir`, newest first; the member
    runs of a seed group (`--seeds`: group.json and one run folder per seed) are listed as
    `group/member`, so they can be marked and compared like any run."""
    if not runs_dir.is_dir():
        return []
    dirs = []
    for p in runs_dir.iterdir():
        if p.is_dir() and (p / "run.json").exists():
            dirs.append(p)
        elif p.is_dir() and (p / GROUP_JSON).is_file():
            dirs += [m for m in sorted(p.iterdir()) if m.is_dir() and (m / "run.json").exists()]
    dirs.sort(key=lambda p: (p / "run.json").stat().st_mtime, reverse=True)
    infos = [read_run(p) for p in dirs]
    for info in infos:
        if info.path.parent != runs_dir:
            info.label = f"{info.path.parent.name}/{info.path.name}"
    return infos


class JsonlTail:
    """Follow an append-only JSONL file: each `read_new()` returns the complete lines added since.

    A line without its newline yet (the writer is mid-line) waits for the next call, which is
    what lets the TUI attach to a run a headless process is writing.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.bad_lines = 0

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        out = []
        for raw in chunk[: end + 1].splitlines():
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError:
                self.bad_lines += 1
                continue
            if isinstance(obj, dict):
                out.append(upgrade_record(obj))  # metric names from before the rename, too
        return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return JsonlTail(path).read_new()


def curves(records: list[dict[str, Any]], *, x_key: str = "step") -> dict[str, tuple[list[float], list[float]]]:
    """metric name -> (x, y) over the records that carry a `metrics` dict (StepLogged, EvalDone...)."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for rec in records:
        metrics = rec.get("metrics")
        x = rec.get(x_key)
        if not isinstance(metrics, dict) or not isinstance(x, (int, float)):
            continue
        for name, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                xs, ys = out.setdefault(name, ([], []))
                xs.append(float(x))
                ys.append(float(value))
    return out


def read_plan(run_dir: Path) -> dict[str, Any]:
    """The plan of a run as a dict (plan.toml, as given)."""
    path = run_dir / "plan.toml"
    try:
        return tomli.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomli.TOMLDecodeError):
        return {}


#: record kinds that carry metrics, and the x each is drawn against
METRIC_KINDS = {"EvalDone": "epoch", "StepLogged": "step", "PluginMetrics": "epoch"}


def metric_names(records: list[dict[str, Any]]) -> list[str]:
    """Every numeric metric the records carry (val/..., loss/..., plugin/<plugin>/<name>), sorted
    with the evaluation metrics first, then losses, then plugins' own."""
    names = {k for r in records if r.get("kind") in METRIC_KINDS for k, v in (r.get("metrics") or {}).items()
             if isinstance(v, (int, float)) and not isinstance(v, bool)}
    order = {"val": 0, "ood": 1, "loss": 2, "plugin": 4}
    return sorted(names, key=lambda k: (order.get(k.split("/")[0], 3), k))


def metric_series(records: list[dict[str, Any]], metric: str) -> tuple[str, list[float], list[float]]:
    """(x name, xs, ys) of one metric: by epoch from evaluations and plugin lines (by step when
    a plugin line has no epoch), by step from step lines. Non-finite values are left out."""
    for kind, x_key in METRIC_KINDS.items():
        recs = [r for r in records if r.get("kind") == kind and metric in (r.get("metrics") or {})]
        if not recs:
            continue
        if kind == "PluginMetrics" and any(r.get("epoch") is None for r in recs):
            x_key = "step"
        xs, ys = curves(recs, x_key=x_key).get(metric, ([], []))
        return x_key, xs, ys
    return "epoch", [], []
