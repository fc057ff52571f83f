"""The batch a loss strategy sees."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch


@dataclass
class Batch:
    """One training batch.

    contexts (B, L, D) and targets (B, D) are float tensors on the training device; `article`
    (B,) holds article positions and `target_rows` (B,) the store rows of the targets, so a loss
    can ask for more rows of the same article through `gather` (e.g. hard negatives, or the
    chunks at +2 and +3 for multi-horizon terms). `epoch` and `step` let strategies follow
    schedules. The model's prediction is computed once per batch and shared by all terms.
    """

    contexts: torch.Tensor
    targets: torch.Tensor
    article: torch.Tensor
    target_rows: torch.Tensor
    epoch: int = 0
    step: int = 0
    gather: Callable[[torch.Tensor], torch.Tensor] | None = None  # rows (any shape) -> vectors on device
    row_article: Callable[[torch.Tensor], torch.Tensor] | None = None  # rows -> article positions (-1 outside)
    extra: dict[str, Any] = field(default_factory=dict)
    _pred: torch.Tensor | None = None

    @property
    def last(self) -> torch.Tensor:
        """The last context chunk c_last, (B, D)."""
        return self.contexts[:, -1, :]

    def share_prediction(self, pred: torch.Tensor) -> None:
        """The trainer's forward pass of this batch: what `prediction` returns to every term."""
        self._pred = pred

    def prediction(self, model: torch.nn.Module) -> torch.Tensor:
        """model(contexts): the trainer's forward pass, shared by all terms (computed here on
        first use when a strategy is called outside the trainer)."""
        if self._pred is None:
            self._pred = model(self.contexts)
        return self._pred
