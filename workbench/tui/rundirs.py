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
from typing import Any, Iterator

import tomli

from lvm_core.metric_names import current_name, upgrade_record

SELECT_DEFAULT = "val/cos"  # lvm_core.train.TrainConfig.select_metric


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

    def val_text(self, key: str) -> str:
        """One number of the last evaluation (`val/cos`, `val/copy_last/cos`, ...) or '-'."""
        value = self.val.get(key)
        return f"{value:.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"

    @property
    def best_text(self) -> str:
        metric = current_name(str(self.best.get("metric", SELECT_DEFAULT)))  # a run from before the rename too
        value = self.best.get("value")
        if not isinstance(value, (int, float)):
            return "-"
        return f"{metric.split('/')[-1]} {value:+.3f}"


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
    """Every run directory (a folder with run.json) under `runs_dir`, newest first."""
    if not runs_dir.is_dir():
        return []
    dirs = [p for p in runs_dir.iterdir() if p.is_dir() and (p / "run.json").exists()]
    dirs.sort(key=lambda p: (p / "run.json").stat().st_mtime, reverse=True)
    return [read_run(p) for p in dirs]


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


def _flatten(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for k in obj:
            yield from _flatten(obj[k], f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
        for i, x in enumerate(obj):
            key = f"{prefix}[{x['name']}]" if "name" in x else f"{prefix}[{i}]"
            yield from _flatten({k: v for k, v in x.items() if k != "name"}, key)
    else:
        yield prefix, obj


def read_plan(run_dir: Path) -> dict[str, Any]:
    """The plan of a run as a dict (plan.toml, as given)."""
    path = run_dir / "plan.toml"
    try:
        return tomli.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomli.TOMLDecodeError):
        return {}


def plan_diff(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key path, value in a, value in b) for every key whose value differs; `None` = absent.

    Losses are keyed by name (loss[mse].weight), so reordering them is not a difference.
    """
    fa, fb = dict(_flatten(a)), dict(_flatten(b))
    keys = list(fa) + [k for k in fb if k not in fa]
    return [(k, fa.get(k), fb.get(k)) for k in keys if fa.get(k) != fb.get(k)]
