"""Tripwires: guardrails declared in the plan, checked after every evaluation.

The original toolchain wrote its guardrails in prose ("epoch drop > 0.05 -> roll back and lower
lambda", "abort if margin < 0 at epoch >= 2") and nobody enforced them. Here a guardrail is data:

    [[tripwire]]
    when = "val/cos drop > 0.05"          # the condition (grammar below)
    from_epoch = 2                        # first epoch it is checked at (default 1)
    until_epoch = 0                       # last epoch it is checked at (0 = to the end)
    action = "rollback"                   # alert | stop | rollback
    lower = { loss = "directional_margin", factor = 0.5 }   # rollback only (optional)
    once = false                          # true: fire at most once

The condition grammar is deliberately small (one comparison, nothing to evaluate):

    METRIC OP NUMBER              val/margin_vs_last < 0        ood/cos <= 0.4     loss/mse > 2
    METRIC drop OP NUMBER         val/cos drop > 0.05   (previous evaluation minus this one)
    METRIC rise OP NUMBER         loss rise >= 0.1      (this evaluation minus the previous one)

with OP one of < <= > >=, METRIC any name the run logs in an evaluation (val/..., ood/...,
train averages as loss... or train/loss..., gates/...). drop/rise compare two consecutive
evaluations, so they never fire at the first one. A metric the run does not log is an Alert
("tripwire_metric") at the first evaluation, and that tripwire is switched off.

This module only parses and decides; the trainer performs the actions (lvm_core/training/loop.py).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from ..params import TableCheck

ACTIONS = ("alert", "stop", "rollback")
TRIPWIRE_KEYS = ("name", "when", "from_epoch", "until_epoch", "action", "lower", "once")
LOWER_KEYS = ("loss", "factor")
_OPS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
_CONDITION_RE = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_@./+-]*)\s*(?:(?P<change>drop|rise)\s+)?"
    r"(?P<op><=|>=|<|>)\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Condition:
    """`metric [drop|rise] op threshold`, parsed from the plan's `when` string."""

    metric: str
    op: str
    threshold: float
    change: str | None = None  # None: the value itself; "drop": previous - now; "rise": now - previous

    @classmethod
    def parse(cls, text: str) -> "Condition":
        """Raises ValueError with what was expected."""
        m = _CONDITION_RE.match(text) if isinstance(text, str) else None
        if m is None:
            raise ValueError(f"expected 'METRIC OP NUMBER' or 'METRIC drop|rise OP NUMBER' with OP one of "
                             f"< <= > >= (e.g. \"val/margin_vs_last < 0\", \"val/cos drop > 0.05\"), got {text!r}")
        threshold = float(m["value"])
        if not math.isfinite(threshold):
            raise ValueError(f"expected a finite threshold, got {m['value']} in {text!r}")
        return cls(m["metric"], m["op"], threshold, m["change"])

    def quantity(self, now: float, previous: float | None) -> float | None:
        """The number compared with the threshold; None when it cannot be known yet."""
        if self.change is None:
            return now
        if previous is None:
            return None
        return previous - now if self.change == "drop" else now - previous

    def holds(self, now: float, previous: float | None) -> bool:
        q = self.quantity(now, previous)
        return q is not None and math.isfinite(q) and _OPS[self.op](q, self.threshold)

    def __str__(self) -> str:
        change = f" {self.change}" if self.change else ""
        return f"{self.metric}{change} {self.op} {self.threshold!r}"


@dataclass(frozen=True)
class Lower:
    """Rollback's second half: multiply the weight of loss term `loss` by `factor`."""

    loss: str
    factor: float


@dataclass(frozen=True)
class Tripwire:
    """One [[tripwire]] table, validated."""

    when: Condition
    action: str = "alert"
    from_epoch: int = 1
    until_epoch: int = 0  # 0 = no end
    lower: Lower | None = None
    once: bool = False
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or str(self.when)

    def armed_at(self, epoch: int) -> bool:
        return epoch >= self.from_epoch and (self.until_epoch == 0 or epoch <= self.until_epoch)

    def to_dict(self) -> dict[str, Any]:
        """The plan table (what plan_to_toml writes back)."""
        out: dict[str, Any] = {"when": str(self.when), "action": self.action, "from_epoch": self.from_epoch,
                               "until_epoch": self.until_epoch, "once": self.once}
        if self.name:
            out["name"] = self.name
        if self.lower is not None:
            out["lower"] = {"loss": self.lower.loss, "factor": self.lower.factor}
        return out


def tripwire_from_dict(obj: Any, *, index: int, source: str = "plan", loss_names: list[str] | None = None) -> Tripwire:
    """Validate one [[tripwire]] table (every problem at once, as InputErrors with key paths
    `tripwire[i].key`). `loss_names`, when given, are the plan's [[loss]] names for `lower.loss`."""
    check = TableCheck(obj, path=f"tripwire[{index}]", known_keys=TRIPWIRE_KEYS, source=source, table="tripwire")
    bad = check.bad
    when: Condition | None = None
    if "when" not in obj:
        bad("when", "missing: a condition such as \"val/margin_vs_last < 0\" or \"val/cos drop > 0.05\"")
    else:
        try:
            when = Condition.parse(obj["when"])
        except ValueError as exc:
            bad("when", str(exc))
    action = obj.get("action", "alert")
    if action not in ACTIONS:
        bad("action", f"expected one of {', '.join(ACTIONS)}, got {action!r}")
    from_epoch, until_epoch = check.epoch_window(obj)
    once = obj.get("once", False)
    if not isinstance(once, bool):
        bad("once", f"expected true or false, got {once!r}")
        once = False
    name = obj.get("name", "")
    if not isinstance(name, str):
        bad("name", f"expected a string, got {name!r}")
        name = ""
    lower = None
    if "lower" in obj:
        raw = obj["lower"]
        if action != "rollback":
            bad("lower", "only a rollback lowers a weight (set action = \"rollback\")")
        if not isinstance(raw, Mapping):
            bad("lower", "expected a table { loss = \"NAME\", factor = 0.5 }")
        else:
            for key in raw:
                if key not in LOWER_KEYS:
                    bad(f"lower.{key}", f"unknown key (known: {', '.join(LOWER_KEYS)})")
            loss, factor = raw.get("loss"), raw.get("factor", 0.5)
            if not isinstance(loss, str):
                bad("lower.loss", f"expected the name of a [[loss]] of this plan, got {loss!r}")
            elif loss_names is not None and loss not in loss_names:
                bad("lower.loss", f"{loss!r} is not a [[loss]] of this plan (losses: {', '.join(loss_names)})")
            if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 <= factor <= 1:
                bad("lower.factor", f"expected a number from 0 to 1 (the weight is multiplied by it), got {factor!r}")
            elif isinstance(loss, str):
                lower = Lower(loss, float(factor))
    check.raise_any()
    assert when is not None
    return Tripwire(when, action, from_epoch, until_epoch, lower, once, name)


@dataclass
class Firing:
    """A tripwire that fired at one evaluation: what to tell the researcher and what to do."""

    tripwire: Tripwire
    index: int
    value: float  # the quantity compared (the metric, or its drop/rise)
    message: str


class TripwireBoard:
    """Decides, evaluation by evaluation, which tripwires fire. Holds the previous evaluation
    (for drop/rise), how often each fired, and which were switched off for an unknown metric;
    `state_dict()` goes into the resume state."""

    def __init__(self, tripwires: list[Tripwire]) -> None:
        self.tripwires = list(tripwires)
        self.fired = [0] * len(self.tripwires)
        self.off = [False] * len(self.tripwires)
        self.previous: dict[str, float] = {}

    def check(self, epoch: int, metrics: Mapping[str, float]) -> tuple[list[Firing], list[str]]:
        """(firings, problems) for one evaluation; `problems` name metrics the run does not log."""
        firings, problems = [], []
        for i, tw in enumerate(self.tripwires):
            if self.off[i] or not tw.armed_at(epoch) or (tw.once and self.fired[i]):
                continue
            now = lookup(metrics, tw.when.metric)
            if now is None:
                self.off[i] = True
                problems.append(f"tripwire {tw.label!r}: {tw.when.metric!r} is not a metric this run logs "
                                f"(e.g. val/cos, val/margin_vs_last, val/R@5_no_context, loss); it is switched off")
                continue
            prev = lookup(self.previous, tw.when.metric) if self.previous else None
            if tw.when.holds(now, prev):
                self.fired[i] += 1
                q = tw.when.quantity(now, prev)
                assert q is not None
                detail = (f"{tw.when.metric} = {now:.4f}" if tw.when.change is None else
                          f"{tw.when.metric} went from {prev:.4f} to {now:.4f} ({tw.when.change} {q:.4f})")
                firings.append(Firing(tw, i, q, f"tripwire {tw.label!r} at epoch {epoch}: {detail}; action {tw.action}"))
        return firings, problems

    def remember(self, metrics: Mapping[str, float]) -> None:
        """The evaluation that drop/rise compare the next one with (after a rollback: the
        metrics of the restored checkpoint)."""
        self.previous = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}

    def state_dict(self) -> dict[str, Any]:
        return {"fired": list(self.fired), "off": list(self.off), "previous": dict(self.previous)}

    def load_state_dict(self, st: Mapping[str, Any]) -> None:
        if len(st.get("fired", [])) == len(self.tripwires):
            self.fired, self.off = [int(x) for x in st["fired"]], [bool(x) for x in st["off"]]
        self.previous = {k: float(v) for k, v in st.get("previous", {}).items() if v is not None}


def lookup(metrics: Mapping[str, Any], name: str) -> float | None:
    """A metric's value; train averages answer to "loss..." as well as "train/loss..."."""
    v = metrics.get(name, metrics.get(f"train/{name}"))
    if v is None and name.startswith("train/"):
        v = metrics.get(name[len("train/"):])
    return None if v is None else float(v)
