"""Which runs are on disk and what each one says: the one reader behind `runs ls` and the TUI's
Runs screen (and the JSONL tail the TUI follows a live run with).

A run directory (design.md) holds run.json, metrics.jsonl, events.jsonl, plan.toml,
plan.resolved.json and gates.json. Everything here tolerates a run that is still being written
(a half-written last line is left for the next read) and reports a broken file as a problem
string instead of raising, so one bad run never hides the others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli

from .evaluation.metric_names import current_name, upgrade_record
from .evaluation.seed_stats import GROUP_JSON

SELECT_DEFAULT = "val/cos"  # lvm_core.training.loop.TrainConfig.select_metric


@dataclass
class RunSummary:
    """One run folder as `runs ls` and the Runs screen list it (a broken file becomes `problem`)."""

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
    created: str = ""
    epoch: int | None = None  # the last epoch reached
    epochs: int | None = None  # the plan's epochs

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


def read_run(path: Path) -> RunSummary:
    """One run's summary from run.json (and gates.json); a broken file becomes `problem`."""
    info = RunSummary(path=path, name=path.name, status="unknown")
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
    info.created = str(run.get("created", "") or "")
    info.epoch = run.get("epoch") if isinstance(run.get("epoch"), int) else None
    info.epochs = run.get("epochs") if isinstance(run.get("epochs"), int) else None
    info.arch = str(run.get("model") or (read_plan(path).get("model") or {}).get("arch", ""))
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


def scan_runs(runs_dir: Path) -> list[RunSummary]:
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


def read_plan(run_dir: Path) -> dict[str, Any]:
    """The plan of a run as a dict (plan.toml, as given)."""
    path = run_dir / "plan.toml"
    try:
        return tomli.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomli.TOMLDecodeError):
        return {}
