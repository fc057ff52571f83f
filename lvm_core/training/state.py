"""What a resumed run needs, in one object that saves and loads itself.

The trainer keeps every piece of state that changes while it runs in a `TrainState`: the model
and its optimizer, the lr schedule, the loss terms (their weight controllers and the scales a
tripwire rollback lowered), the tripwire board, the counters, the best evaluation, early
stopping, the train averages of the epoch in progress and the last evaluation. `state_dict()`
is the `.state.pt` of a checkpoint (with the RNGs); `load_state_dict()` is its inverse, so a
field added here is saved and restored in one place or not at all. The model's weights are the
one exception: they travel in the checkpoint's safetensors file, beside this state
(lvm_core/training/checkpointer.py), and the run preparation loads them before training starts.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

from ..device import capture_rng_state, restore_rng_state
from ..evaluation.metric_names import current_name, upgrade_metrics
from .schedules import LrSchedule
from .tripwires import TripwireBoard


def improved(value: float, best: float | None, mode: str) -> bool:
    """Whether `value` beats `best` under `mode` ("max" or "min"); NaN never improves."""
    if value != value:
        return False
    return best is None or (value > best if mode == "max" else value < best)


@dataclass
class Best:
    """The evaluation checkpoint selection kept: `metric` watched in `mode`, its best value so
    far and where it was reached (None until an evaluation selected one)."""

    metric: str
    mode: str
    value: float | None = None
    epoch: int | None = None
    step: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EarlyStop:
    """Early stopping's memory: the best value of its metric and evaluations since it improved."""

    best: float | None = None
    bad: int = 0

    def observe(self, value: float, mode: str) -> int:
        """Count one evaluation; returns the evaluations in a row without improvement."""
        if improved(value, self.best, mode):
            self.best, self.bad = value, 0
        else:
            self.bad += 1
        return self.bad


@dataclass
class TrainState:
    """Everything of a run that changes while it trains (see the module doc)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer | None  # None for a model with nothing to train (ridge)
    schedule: LrSchedule
    losses: list[Any]  # the run's LossTerms: their controllers and scales are state
    tripwires: TripwireBoard
    best: Best
    early: EarlyStop = field(default_factory=EarlyStop)
    step: int = 0  # optimizer steps taken
    epoch: int = 1  # the epoch in progress, from 1
    done_in_epoch: int = 0  # its optimizer steps taken
    prev_cos: float | None = None  # val/cos of the previous evaluation (the collapse alert)
    sums: dict[str, float] = field(default_factory=dict)  # logged means x their step counts, this epoch
    n_sum: int = 0
    last_eval: dict[str, float] = field(default_factory=dict)
    elapsed_before: float = 0.0  # seconds trained before this process (resumes add up)
    started_t: float = field(default_factory=time.time)  # when this process started training

    # ---- the epoch's train averages -------------------------------------------------------
    def add_train_means(self, values: Mapping[str, float], n: int) -> None:
        """Fold one log window's means (over `n` micro-batches) into the epoch's averages."""
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v * n
        self.n_sum += n

    def train_means(self) -> dict[str, float]:
        return {k: v / max(self.n_sum, 1) for k, v in self.sums.items()}

    def next_epoch(self) -> None:
        self.epoch, self.done_in_epoch, self.sums, self.n_sum = self.epoch + 1, 0, {}, 0

    # ---- saving and loading ---------------------------------------------------------------
    def state_dict(self, rng: dict[str, Any] | None = None) -> dict[str, Any]:
        """The checkpoint's .state.pt: plain types and tensors (it loads with weights_only=True).
        `rng` replaces the RNG state of this moment (an abort saves the one of its step's start)."""
        return {"optimizer": self.optimizer.state_dict() if self.optimizer is not None else {},
                "lr_schedule": self.schedule.state_dict(), "rng": rng if rng is not None else capture_rng_state(),
                "step": self.step, "epoch": self.epoch, "done_in_epoch": self.done_in_epoch,
                "best": self.best.as_dict(), "early": asdict(self.early), "prev_cos": self.prev_cos,
                "sums": dict(self.sums), "n_sum": self.n_sum, "last_eval": self.last_eval,
                "controls": {t.name: t.control.state_dict() for t in self.losses if t.control},
                "scales": {t.name: t.scale for t in self.losses}, "tripwires": self.tripwires.state_dict(),
                "elapsed_s": self.elapsed_before + time.time() - self.started_t}

    def load_state_dict(self, st: Mapping[str, Any]) -> None:
        """Continue from a `state_dict()` (also of the checkpoints written before TrainState);
        restores the RNGs too, so call it last before training."""
        if self.optimizer is not None:
            self.optimizer.load_state_dict(st["optimizer"])
        self.schedule.load_state_dict(st["lr_schedule"])
        self.step, self.epoch, self.done_in_epoch = int(st["step"]), int(st["epoch"]), int(st["done_in_epoch"])
        self.best, self.early = Best(**st["best"]), EarlyStop(**st["early"])
        self.best.metric = current_name(str(self.best.metric))  # a run saved before the rename
        self.prev_cos = st["prev_cos"]
        self.sums, self.n_sum = {k: float(v) for k, v in st["sums"].items()}, int(st["n_sum"])
        self.elapsed_before = float(st.get("elapsed_s", 0.0))
        self.last_eval = upgrade_metrics({k: float(v) for k, v in st.get("last_eval", {}).items()})
        for t in self.losses:
            if t.control is not None:
                t.control.load_state_dict(st["controls"][t.name])
            t.scale = float(st.get("scales", {}).get(t.name, 1.0))
        tw_state = st.get("tripwires", {})
        self.tripwires.load_state_dict({**tw_state, "previous": upgrade_metrics(tw_state.get("previous", {}))})
        restore_rng_state(st["rng"])
