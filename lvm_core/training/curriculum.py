"""Sample filters: curricula as data ("train first on windows with a high forward advantage").

The original P5 curriculum was a chain of scripts (compute_forward_distinctness ->
build_curriculum_splits -> train Stage A) that wrote new NPZ files. Here it is a plan table:

    [[data.filter]]
    metric = "forward_advantage"   # a per-window score (WINDOW_METRICS)
    top = 0.3                      # keep the highest 30% ... (or bottom = f, or min = x / max = x)
    from_epoch = 1                 # ... for these epochs (1-based, inclusive; until_epoch 0 = to the end)
    until_epoch = 3

The score of every train window is computed once, vectorised, in chunks of windows; the trainer
then draws that epoch's windows from the intersection of the filters active in it (all train
windows when none is). Cosines are taken on normalised vectors.

Window metrics (c_1..c_L the context, c_L the last chunk, t the target):
  forward_advantage     cos(c_L, t) - max_{i<L} cos(c_i, t): how much more the last chunk
                        resembles the target than any earlier chunk does (needs L >= 2)
  forward_distinctness  1 - cos(t, c_L): the original P5's score (how far the target moved)
  last_similarity       cos(c_L, t): P5.1's "sim_prev"
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..data.windows import Windows
from ..params import TableCheck

FILTER_KEYS = ("metric", "top", "bottom", "min", "max", "from_epoch", "until_epoch")
CHUNK_WINDOWS = 16384  # windows gathered at a time (bounds memory for large stores)


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def _forward_advantage(ctx: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    sims = np.einsum("bld,bd->bl", _unit(ctx), _unit(tgt))  # cos(c_i, t) for every context slot
    return sims[:, -1] - sims[:, :-1].max(axis=1)


def _forward_distinctness(ctx: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    return 1.0 - np.einsum("bd,bd->b", _unit(ctx[:, -1]), _unit(tgt))


def _last_similarity(ctx: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    return np.einsum("bd,bd->b", _unit(ctx[:, -1]), _unit(tgt))


#: name -> (score of a batch (contexts (B, L, D), targets (B, D)) -> (B,), least context_len)
WINDOW_METRICS: dict[str, tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], int]] = {
    "forward_advantage": (_forward_advantage, 2),
    "forward_distinctness": (_forward_distinctness, 1),
    "last_similarity": (_last_similarity, 1),
}


def window_scores(windows: Windows, metric: str) -> np.ndarray:
    """The metric of every window (float64, in window order), computed chunk by chunk."""
    fn, least = WINDOW_METRICS[metric]
    if windows.context_len < least:
        raise ValueError(f"{metric} needs context_len >= {least}")
    out = np.empty(len(windows), dtype=np.float64)
    for start in range(0, len(windows), CHUNK_WINDOWS):
        ctx, tgt = windows.batch(slice(start, start + CHUNK_WINDOWS))
        out[start:start + len(tgt)] = fn(ctx.astype(np.float64), tgt.astype(np.float64))
    return out


@dataclass(frozen=True)
class SampleFilter:
    """One [[data.filter]] table, validated: a selection rule on one window metric, for some epochs."""

    metric: str
    top: float | None = None  # keep the ceil(top * N) highest scores
    bottom: float | None = None  # keep the ceil(bottom * N) lowest scores
    min: float | None = None  # keep scores >= min
    max: float | None = None  # keep scores <= max
    from_epoch: int = 1
    until_epoch: int = 0  # 0 = to the end

    def active_at(self, epoch: int) -> bool:
        return epoch >= self.from_epoch and (self.until_epoch == 0 or epoch <= self.until_epoch)

    def select(self, scores: np.ndarray) -> np.ndarray:
        """Indices (sorted) of the windows this filter keeps. Ties at a top/bottom cut are
        broken by window order (a stable sort), so the selection is reproducible."""
        n = len(scores)
        keep = np.ones(n, dtype=bool)
        if self.min is not None:
            keep &= scores >= self.min
        if self.max is not None:
            keep &= scores <= self.max
        if self.top is not None or self.bottom is not None:
            frac = self.top if self.top is not None else self.bottom
            k = min(n, math.ceil(frac * n - 1e-9))
            order = np.argsort(-scores if self.top is not None else scores, kind="stable")
            keep = np.zeros(n, dtype=bool)
            keep[order[:k]] = True
        return np.flatnonzero(keep)

    def describe(self) -> str:
        rule = (f"top {self.top:g}" if self.top is not None else f"bottom {self.bottom:g}" if self.bottom is not None
                else " and ".join(s for s in (f">= {self.min:g}" if self.min is not None else "",
                                              f"<= {self.max:g}" if self.max is not None else "") if s))
        until = f"-{self.until_epoch}" if self.until_epoch else " on"
        return f"{self.metric} {rule} (epochs {self.from_epoch}{until})"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metric": self.metric}
        for key in ("top", "bottom", "min", "max"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out.update(from_epoch=self.from_epoch, until_epoch=self.until_epoch)
        return out


def filter_from_dict(obj: Any, *, index: int, source: str = "plan", context_len: int | None = None) -> SampleFilter:
    """Validate one [[data.filter]] table; problems name `data.filter[i].key`."""
    check = TableCheck(obj, path=f"data.filter[{index}]", known_keys=FILTER_KEYS, source=source, table="data.filter")
    bad = check.bad
    metric = obj.get("metric")
    if metric not in WINDOW_METRICS:
        bad("metric", f"expected one of {', '.join(WINDOW_METRICS)}, got {metric!r}")
    elif context_len is not None and context_len < WINDOW_METRICS[metric][1]:
        bad("metric", f"{metric} needs context_len >= {WINDOW_METRICS[metric][1]}, the plan has {context_len}")
    values: dict[str, float | None] = {}
    for key in ("top", "bottom", "min", "max"):
        v = obj.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            bad(key, f"expected a finite number, got {v!r}")
            v = None
        values[key] = None if v is None else float(v)
    for key in ("top", "bottom"):
        v = values[key]
        if v is not None and not 0 < v <= 1:
            bad(key, f"expected a fraction 0 < {key} <= 1, got {v:g}")
    fractions = [k for k in ("top", "bottom") if obj.get(k) is not None]  # given, even if refused above
    bounds = [k for k in ("min", "max") if obj.get(k) is not None]
    if len(fractions) > 1 or (fractions and bounds) or not (fractions or bounds):
        bad("", "expected exactly one rule: top = F, bottom = F, or min = X and/or max = X")
    if values["min"] is not None and values["max"] is not None and values["min"] > values["max"]:
        bad("max", f"expected max >= min ({values['min']:g}), got {values['max']:g}")
    from_epoch, until_epoch = check.epoch_window(obj)
    check.raise_any()
    return SampleFilter(metric, values["top"], values["bottom"], values["min"], values["max"], from_epoch, until_epoch)


@dataclass(frozen=True)
class WindowSubset:
    """What the trainer needs of a filter: the epochs it is active and the windows it keeps."""

    label: str
    from_epoch: int
    until_epoch: int
    index: np.ndarray  # sorted indices into the train windows
    threshold: float | None = None  # the score at the cut (for the message)

    def active_at(self, epoch: int) -> bool:
        return epoch >= self.from_epoch and (self.until_epoch == 0 or epoch <= self.until_epoch)


def build_subsets(windows: Windows, filters: list[SampleFilter]) -> list[WindowSubset]:
    """Score the train windows once per metric and apply each filter."""
    scores: dict[str, np.ndarray] = {}
    out = []
    for f in filters:
        if f.metric not in scores:
            scores[f.metric] = window_scores(windows, f.metric)
        idx = f.select(scores[f.metric])
        cut = float(scores[f.metric][idx].min() if f.top is not None else scores[f.metric][idx].max()) \
            if len(idx) and (f.top is not None or f.bottom is not None) else None
        out.append(WindowSubset(f.describe(), f.from_epoch, f.until_epoch, idx, cut))
    return out


def epoch_index(subsets: list[WindowSubset], epoch: int) -> np.ndarray | None:
    """Indices of the train windows of `epoch`: the intersection of the active subsets, or None
    (every window) when no filter is active."""
    active = [s.index for s in subsets if s.active_at(epoch)]
    if not active:
        return None
    idx = active[0]
    for other in active[1:]:
        idx = np.intersect1d(idx, other, assume_unique=True)
    return idx
