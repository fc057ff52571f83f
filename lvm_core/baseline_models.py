"""The baselines of lvm_core/baselines.py as torch modules with the models' interface.

Contexts (B, L, D) -> unit rows (B, D), registered as model architectures, so the trainer,
the evaluation and the gates compare a model with copy-last or ridge through one code path.
The math is the numpy definitions' (tests check them against each other); ridge is fitted by
`lvm_core.baselines.RidgeBaseline` and its closed-form weights live in an nn.Linear, so they
are saved and reloaded with the checkpoint like any model's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .baselines import RidgeBaseline
from .errors import InputError
from .models import LatentVectorModel


class CopyLast(LatentVectorModel):
    """c_last: the persistence forecast (what a backward-biased model converges to)."""

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1, :]


class ContextMean(LatentVectorModel):
    """Mean of the unit-normalised context chunks."""

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1).mean(dim=1)


class LinearExtrapolation(LatentVectorModel):
    """c_last + (c_last - c_prev) on unit vectors: one more step along the last move."""

    def __init__(self, dim: int, context_len: int) -> None:
        if context_len < 2:
            raise InputError("[model] linear_extrapolation", f"expected >= 2, got {context_len}", "context_len")
        super().__init__(dim, context_len)

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        unit = F.normalize(x[:, -2:, :], dim=-1)
        return 2.0 * unit[:, 1, :] - unit[:, 0, :]


class Ridge(LatentVectorModel):
    """Closed-form ridge regression from the flattened context to the target.

    Untrained it predicts zeros (normalised: zeros); the trainer calls `fit_on(contexts,
    targets)` with the train split before anything else. It has no gradient-trained parameters.
    """

    def __init__(self, dim: int, context_len: int, *, alpha: float = 1.0) -> None:
        if not alpha > 0:
            raise InputError("[model] ridge", f"expected alpha > 0, got {alpha!r}", "alpha")
        super().__init__(dim, context_len)
        self.alpha = float(alpha)
        self.linear = torch.nn.Linear(dim * context_len, dim)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)
        self.linear.requires_grad_(False)
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def fit_on(self, contexts: Any, targets: Any, articles: Any = None, seed: int = 0) -> dict[str, Any]:
        """Fit on train windows (numpy or tensors, (N, L, D) and (N, D)); returns a fit record.
        (`articles` and `seed` are the trainer's for models that choose a penalty; alpha is fixed here.)"""
        ctx = contexts.detach().cpu().float().numpy() if torch.is_tensor(contexts) else np.asarray(contexts)
        tgt = targets.detach().cpu().float().numpy() if torch.is_tensor(targets) else np.asarray(targets)
        if ctx.ndim != 3 or ctx.shape[1:] != (self.context_len, self.dim):
            raise InputError("contexts", f"expected (N, {self.context_len}, {self.dim}), got {ctx.shape}")
        fit = RidgeBaseline().fit(ctx, tgt, alpha=self.alpha)
        state = fit.linear_state()
        with torch.no_grad():
            self.linear.weight.copy_(torch.from_numpy(state["weight"]))
            self.linear.bias.copy_(torch.from_numpy(state["bias"]))
            self.fitted.fill_(True)
        return {"alpha": self.alpha, "form": fit.form, "n": int(ctx.shape[0])}

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


#: baseline name -> builder ``cls(dim, context_len, **params)``
BASELINE_MODELS = {
    "copy_last": CopyLast,
    "context_mean": ContextMean,
    "linear_extrapolation": LinearExtrapolation,
    "ridge": Ridge,
}
