"""What an abort (a second Ctrl-C) may save: only a step boundary, with the RNG of that moment.

The trainer takes a StepMark at the start of every optimizer step, after the learning rate and
loss weights are set and before any random number is drawn. An abort that lands while the step
is still computing (forward, backward: the weights are untouched) restores the mark and saves
exactly that boundary, so a resumed run repeats the step with the same dropout draws. An abort
inside the update, the logging or the epoch-end evaluation saves nothing: the previous complete
checkpoint generation stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..device import capture_rng_state


@dataclass
class StepMark:
    rng: dict[str, Any]
    log_sums: dict[str, torch.Tensor]  # the running log sums (tensors are never updated in place)
    log_n: int
    samples_since: int
    computing: bool = True  # False from the optimizer's update on: the weights may be half-written

    @classmethod
    def take(cls, log_sums: dict[str, torch.Tensor], log_n: int, samples_since: int) -> "StepMark":
        return cls(capture_rng_state(), dict(log_sums), log_n, samples_since)


def abortable(mark: StepMark | None) -> bool:
    """True when an abort now can be saved exactly (see the module doc)."""
    return mark is not None and mark.computing
