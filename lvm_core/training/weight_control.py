"""Automatic loss weights: keep one term's share of the total loss near a target.

The original toolchain's rho-controller (P6b v2.2/v2.3) set the directional weight from
rho = lambda * L_dir / MSE each step, then boosted or cut it by hand-written rules, and the
runs that used it oscillated and collapsed. This is the same idea as a small, testable class:

    share = w * term / (w * term + rest)

where `term` is the unweighted value of the controlled term and `rest` the weighted sum of every
other loss term of the step. Solving share = target for w gives

    w* = target * rest / ((1 - target) * term)

The controller smooths `term` and `rest` with an exponential moving average (one noisy batch
must not move the weight), limits how fast the weight may change per step, and clamps it to
[min, max] (the caps). A term that is zero (an inactive hinge) carries no information about
the right weight, so the weight is kept as it is.

The trainer calls `update(term, rest)` once per optimizer step with detached floats and uses
the returned weight for that step; `state_dict()` goes into the resume state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import InputError, raise_all
from ..params import Param, resolve_params

#: What a plan's `control = { ... }` table may hold (checked like any plugin's parameters).
CONTROL_PARAMS: tuple[Param, ...] = (
    Param("target_share", "float", None, "wanted share of the total loss, 0 < s < 1", min=0.0, max=1.0),
    Param("min", "float", 0.0, "lowest weight the controller may set", min=0.0),
    Param("max", "float", math.inf, "highest weight the controller may set (the cap; inf = none)", min=0.0,
          finite=False),
    Param("initial", "float", None, "weight before the first update (default: the term's plan weight)", min=0.0),
    Param("smoothing", "float", 0.9, "EMA factor for term and rest (0 = use each step's values)", min=0.0, max=0.999),
    Param("max_change", "float", 1.5, "largest factor the weight may grow or shrink by in one step", min=1.0),
)


@dataclass
class ShareController:
    """Keeps `weight * term` near `target_share` of the total loss, within [min_weight, max_weight]."""

    target_share: float
    min_weight: float = 0.0
    max_weight: float = math.inf
    weight: float | None = None
    smoothing: float = 0.9
    max_change: float = 1.5
    term_avg: float | None = None
    rest_avg: float | None = None
    last_share: float | None = None  # the share measured at the last update, before the weight moved

    def __post_init__(self) -> None:
        if not 0.0 < self.target_share < 1.0:
            raise ValueError(f"target_share must be in (0, 1), got {self.target_share}")
        if self.min_weight > self.max_weight:
            raise ValueError(f"min weight {self.min_weight} is above max weight {self.max_weight}")
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {self.smoothing}")
        if self.max_change < 1.0:
            raise ValueError(f"max_change must be >= 1, got {self.max_change}")
        if self.weight is not None:
            self.weight = self._clamp(self.weight)

    @staticmethod
    def share(weight: float, term: float, rest: float) -> float:
        """The term's share of the total loss at this weight."""
        total = weight * term + rest
        return weight * term / total if total > 0 else 0.0

    def _clamp(self, w: float) -> float:
        return min(max(w, self.min_weight), self.max_weight)

    def update(self, term: float, rest: float) -> float:
        """Feed one step's unweighted term and weighted rest; returns the weight to use now."""
        term, rest = float(term), float(rest)
        if not (math.isfinite(term) and math.isfinite(rest)) or term < 0 or rest < 0:
            return self._current()
        if self.weight is not None:
            self.last_share = self.share(self.weight, term, rest)
        a = self.smoothing
        self.term_avg = term if self.term_avg is None else a * self.term_avg + (1 - a) * term
        self.rest_avg = rest if self.rest_avg is None else a * self.rest_avg + (1 - a) * rest
        if self.term_avg <= 0.0:
            return self._current()  # an inactive term says nothing about its right weight
        s = self.target_share
        wanted = s * self.rest_avg / ((1.0 - s) * self.term_avg)
        if self.weight is not None and self.weight > 0:
            wanted = min(max(wanted, self.weight / self.max_change), self.weight * self.max_change)
        self.weight = self._clamp(wanted)
        return self.weight

    def _current(self) -> float:
        if self.weight is None:
            self.weight = self._clamp(self.min_weight)
        return self.weight

    def set_target(self, target_share: float) -> None:
        """Move the target (the original ramped rho_target by epoch; a schedule can do the same)."""
        if not 0.0 < target_share < 1.0:
            raise ValueError(f"target_share must be in (0, 1), got {target_share}")
        self.target_share = float(target_share)

    def state_dict(self) -> dict[str, Any]:
        return {"target_share": self.target_share, "weight": self.weight, "term_avg": self.term_avg,
                "rest_avg": self.rest_avg, "last_share": self.last_share}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for key in ("target_share", "weight", "term_avg", "rest_avg", "last_share"):
            setattr(self, key, state[key])


def controller_from_spec(
    spec: Mapping[str, Any], *, plan_weight: float | None = None, where: str = "control", source: str = "plan"
) -> ShareController:
    """Build a controller from a plan's `control = { target_share = 0.2, min = 1e-4, max = 0.05 }`.

    Every problem is reported as an InputError naming the key; `initial` defaults to the plan weight.
    """
    if not isinstance(spec, Mapping):
        raise InputError(source, f"expected a table like {{ target_share = 0.2, max = 0.05 }}, got {spec!r}", where)
    values, errors = resolve_params(CONTROL_PARAMS, spec, where=where, source=source)
    if "target_share" not in spec:
        errors.append(InputError(source, "required (the wanted share of the total loss, e.g. 0.2)", f"{where}.target_share"))
    elif values["target_share"] is not None and not 0.0 < values["target_share"] < 1.0:
        errors.append(InputError(source, f"expected 0 < target_share < 1, got {values['target_share']}", f"{where}.target_share"))
    if values["min"] > values["max"]:
        errors.append(InputError(source, f"min {values['min']} is above max {values['max']}", f"{where}.min"))
    if values["smoothing"] >= 1.0:
        errors.append(InputError(source, f"expected smoothing < 1, got {values['smoothing']}", f"{where}.smoothing"))
    raise_all(source, errors)
    initial = values["initial"] if values["initial"] is not None else plan_weight
    return ShareController(values["target_share"], values["min"], values["max"], initial,
                           values["smoothing"], values["max_change"])
