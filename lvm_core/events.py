"""Events the trainer emits. Sinks consume them: metrics.jsonl and events.jsonl (always), the
console (headless), the TUI (as Textual messages) and the plugin event hooks.

Each event is a small dataclass with `to_json()`; metric dicts use flat names with "/"
separators, e.g. "loss", "loss/mse", "val/cos", "val/margin_vs_last", "val/R@1_no_context",
"val/copy_last/cos", "ood/context_mean/margin_vs_last", "gates/score" (names: lvm_core/evaluation/metric_names.py).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable


@dataclass
class Event:
    t: float = field(default_factory=time.time, kw_only=True)

    @property
    def kind(self) -> str:
        return type(self).__name__

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass
class RunStarted(Event):
    run_dir: str
    name: str
    device: str
    device_reason: str
    total_steps: int
    epochs: int
    resumed_from_step: int | None = None


@dataclass
class StepLogged(Event):
    """Every `log_every` optimizer steps: loss terms, lr, throughput."""

    step: int
    epoch: int
    total_steps: int
    metrics: dict[str, float]
    samples_per_s: float


@dataclass
class EpochEnded(Event):
    epoch: int
    step: int
    metrics: dict[str, float]  # train averages of every loss term


@dataclass
class EvalDone(Event):
    """Validation after an epoch: model metrics beside the baselines, per split."""

    epoch: int
    step: int
    metrics: dict[str, float]


@dataclass
class GatesDone(Event):
    epoch: int
    step: int
    score: int
    passed: bool
    results: dict[str, Any]


@dataclass
class CheckpointSaved(Event):
    epoch: int
    step: int
    path: str
    tag: str  # "last" or "best"
    metric: str | None = None
    value: float | None = None


@dataclass
class Alert(Event):
    """Something a researcher must see now: collapse, divergence, early stop, a failing plugin."""

    epoch: int
    step: int
    level: str  # "info", "warning", "error"
    code: str  # "collapse", "diverged", "early_stop", "plugin_error", "tripwire", ...
    message: str


@dataclass
class RunEnded(Event):
    status: str  # completed, stopped, failed, diverged
    step: int
    epoch: int
    best: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


Sink = Callable[[Event], None]
