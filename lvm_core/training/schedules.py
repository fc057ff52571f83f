"""Schedules as data: loss-term weights per epoch and the learning rate per optimizer step.

Curricula like "MSE for 3 epochs, then add the margin" are a few keys in the plan, not code.
Epochs count from 1, as they are printed (epoch 1 is the first epoch), so a step schedule with
``epoch = 4`` keeps ``before`` for epochs 1-3 and uses ``after`` from epoch 4 on. Steps count
optimizer steps from 0. Both schedules are pure functions of (epoch or step) plus, for the
plateau rule, a small state that checkpoints save, so a resumed run follows the same curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import InputError, raise_all
from ..params import MAX_EPOCHS, Param

# ---- loss-weight schedules -------------------------------------------------------------------

#: kind -> (required keys, optional keys with defaults)
WEIGHT_SCHEDULE_KEYS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "constant": ((), {"value": None}),
    "step": (("epoch", "before", "after"), {}),
    "linear": (("start_epoch", "end_epoch", "start", "end"), {}),
}


#: the largest weight a loss term may get (see the plan schema); MAX_EPOCHS lives in lvm_core/params.py
MAX_WEIGHT = 1e6


def _epoch(name: str, help: str) -> Param:
    return Param(name, "int", 1, help, min=1, max=MAX_EPOCHS, unit="epoch")


def _weight(name: str, help: str) -> Param:
    return Param(name, "float", 0.0, help, min=0.0, max=MAX_WEIGHT)


#: every number a schedule table may hold, checked like any declared key (a weight is >= 0 and finite)
SCHEDULE_PARAMS: dict[str, Param] = {p.name: p for p in (
    _weight("value", "constant: the weight (default: the term's own weight)"),
    _epoch("epoch", "step: the first epoch (1-based) with `after`"),
    _weight("before", "step: the weight before `epoch`"),
    _weight("after", "step: the weight from `epoch` on"),
    _epoch("start_epoch", "linear: the last epoch at `start`"),
    _epoch("end_epoch", "linear: the first epoch at `end`"),
    _weight("start", "linear: the weight up to `start_epoch`"),
    _weight("end", "linear: the weight from `end_epoch` on"),
)}


@dataclass(frozen=True)
class WeightSchedule:
    """The weight of one loss term as a function of the epoch (1-based).

    constant: `value` (or the term's own weight when value is None);
    step:     `before` for epochs < `epoch`, `after` from `epoch` on;
    linear:   `start` up to `start_epoch`, `end` from `end_epoch` on, a straight line between.
    """

    kind: str = "constant"
    value: float | None = None
    epoch: int = 0
    before: float = 0.0
    after: float = 0.0
    start_epoch: int = 0
    end_epoch: int = 0
    start: float = 0.0
    end: float = 0.0

    def weight(self, epoch: int, base: float = 1.0) -> float:
        """Weight at `epoch` (1-based); `base` is the [[loss]] weight a constant schedule keeps."""
        if self.kind == "constant":
            return float(base if self.value is None else self.value)
        if self.kind == "step":
            return float(self.after if epoch >= self.epoch else self.before)
        if self.kind == "linear":
            if epoch <= self.start_epoch:
                return float(self.start)
            if epoch >= self.end_epoch:
                return float(self.end)
            frac = (epoch - self.start_epoch) / (self.end_epoch - self.start_epoch)
            return float(self.start + frac * (self.end - self.start))
        raise ValueError(f"unknown schedule kind {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        """Only the keys of this kind (the form a plan file uses)."""
        required, optional = WEIGHT_SCHEDULE_KEYS[self.kind]
        out: dict[str, Any] = {"kind": self.kind}
        for k in required:
            out[k] = getattr(self, k)
        for k in optional:
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        return out


def weight_schedule_from_dict(obj: Mapping[str, Any], *, source: str = "plan", where: str = "schedule") -> WeightSchedule:
    """Parse and check a schedule table; raises InputErrors listing every problem in it."""
    errors: list[InputError] = []
    if not isinstance(obj, Mapping):
        raise InputError(source, f"expected a table like {{ kind = \"step\", epoch = 3, before = 0.0, after = 0.5 }}, got {obj!r}", where)
    kind = obj.get("kind", "constant")
    if kind not in WEIGHT_SCHEDULE_KEYS:
        raise InputError(source, f"expected one of {list(WEIGHT_SCHEDULE_KEYS)}, got {kind!r}", f"{where}.kind")
    required, optional = WEIGHT_SCHEDULE_KEYS[kind]
    allowed = {"kind", *required, *optional}
    values: dict[str, Any] = {"kind": kind}
    for key in obj:
        if key not in allowed:
            errors.append(InputError(source, f"unknown key for a {kind!r} schedule (expected {sorted(allowed)})", f"{where}.{key}"))
    for key in required:
        if key not in obj:
            errors.append(InputError(source, f"missing (a {kind!r} schedule needs {list(required)})", f"{where}.{key}"))
    for key in (*required, *optional):
        if key not in obj or obj[key] is None:
            continue
        try:
            values[key] = SCHEDULE_PARAMS[key].check(obj[key], f"{where}.{key}", source)
        except InputError as exc:
            errors.append(exc)
    if kind == "linear" and not errors and values["end_epoch"] <= values["start_epoch"]:
        errors.append(InputError(source, f"expected end_epoch > start_epoch, got {values['start_epoch']} and {values['end_epoch']}", f"{where}.end_epoch"))
    raise_all(source, errors)
    return WeightSchedule(**values)


# ---- learning-rate schedule ------------------------------------------------------------------

LR_SCHEDULES = ("cosine", "constant", "plateau")


@dataclass
class LrSchedule:
    """Linear warmup over `warmup_steps`, then cosine decay to `min_lr` at `total_steps`, a constant
    rate, or reduce-on-plateau (multiply by `factor` when more than `patience` evaluations in a row
    bring no improvement of the watched metric, as torch's ReduceLROnPlateau; never below `min_lr`).

    `lr_at(step)` is a pure function of the step and the plateau state (`scale`), so the trainer
    sets the rate itself before each optimizer step (nanoGPT style) and a resumed run matches.
    """

    base_lr: float
    kind: str = "cosine"
    warmup_steps: int = 0
    total_steps: int = 1
    min_lr: float = 0.0
    factor: float = 0.5
    patience: int = 2
    mode: str = "max"
    # plateau state (saved in checkpoints)
    scale: float = 1.0
    best: float | None = None
    bad_evals: int = 0

    def lr_at(self, step: int) -> float:
        if self.warmup_steps > 0 and step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        if self.kind == "constant":
            return self.base_lr
        if self.kind == "plateau":
            return max(self.base_lr * self.scale, self.min_lr)
        if self.kind == "cosine":
            span = max(1, self.total_steps - self.warmup_steps)
            ratio = min(1.0, (step - self.warmup_steps) / span)
            coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))
            return self.min_lr + coeff * (self.base_lr - self.min_lr)
        raise ValueError(f"unknown lr schedule {self.kind!r}")

    def observe(self, value: float) -> bool:
        """Feed one evaluation of the watched metric (plateau only); True when the rate was cut."""
        if self.kind != "plateau" or value != value:  # NaN never counts as an improvement
            return False
        better = self.best is None or (value > self.best if self.mode == "max" else value < self.best)
        if better:
            self.best, self.bad_evals = float(value), 0
            return False
        self.bad_evals += 1
        if self.bad_evals > self.patience:
            self.scale *= self.factor
            self.bad_evals = 0
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "best": self.best, "bad_evals": self.bad_evals}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.scale = float(state["scale"])
        self.best = None if state["best"] is None else float(state["best"])
        self.bad_evals = int(state["bad_evals"])
