"""Models that start where the baselines end: at initialisation each one *is* a baseline (to
float rounding), so training can only move away from it if that lowers the loss.

Why: docs/results.md found that five frame weights beat every trained network and that AMN's
residual head starts far from the context mean (norm ~11 against ~0.5), so training first has
to undo its own initialisation; on unseen packages ridge beat the recommended recipe. A model
that starts at the strongest simple predictor can be judged by one question: did training add
anything to it?

- FrameWeightsModel: normalize(sum_i w_i unit(c_i)), free weights (optionally one per frame and
  dimension) starting at the least-squares frame weights of the train part (the frame_weights
  baseline), or softmax weights starting uniform (the context mean).
- ResidualRidge: the ridge baseline (fitted, frozen) plus a small network whose last layer
  starts at zero: a learned correction to ridge.
- AMN with `zero_residual = true` (lvm_core/models/networks.py) starts exactly at the context mean.

Closed-form starts are fitted by the trainer's `fit_on(contexts, targets, articles=, seed=)`
on the train windows, once: a `fitted` buffer saved with the checkpoint stops a resumed run
from fitting again over its trained weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .fitted import capped, fit_ridge, frame_weights_fit
from .networks import LatentVectorModel


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().float().numpy() if torch.is_tensor(x) else np.asarray(x, dtype=np.float32)


class _FitOnce(LatentVectorModel):
    """A model with a closed-form start fitted on the train windows once (see the module doc)."""

    def __init__(self, dim: int, context_len: int) -> None:
        super().__init__(dim, context_len)
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def fit_on(self, contexts: Any, targets: Any, articles: Any = None, seed: int = 0) -> dict[str, Any]:
        if bool(self.fitted):
            return {"skipped": "already fitted (resumed)"}
        ctx, tgt = _numpy(contexts), _numpy(targets)
        if ctx.ndim != 3 or ctx.shape[1:] != (self.context_len, self.dim):
            raise InputError("contexts", f"expected (N, {self.context_len}, {self.dim}), got {ctx.shape}")
        arts = np.zeros(len(ctx), np.int64) if articles is None else _numpy(articles).astype(np.int64)
        record = self._fit(ctx, tgt, arts, seed)
        self.fitted.fill_(True)
        return record

    def _fit(self, ctx: np.ndarray, tgt: np.ndarray, articles: np.ndarray, seed: int) -> dict[str, Any]:
        raise NotImplementedError


class FrameWeightsModel(_FitOnce):
    """normalize(sum_i w_i unit(c_i)): a learned re-weighting of the context frames."""

    def __init__(self, dim: int, context_len: int, *, mode: str = "free", per_dim: bool = False,
                 init: str = "fitted") -> None:
        if mode not in ("free", "softmax"):
            raise InputError("[model] frame_weights", f"expected 'free' or 'softmax', got {mode!r}", "mode")
        if init not in ("fitted", "mean"):
            raise InputError("[model] frame_weights", f"expected 'fitted' or 'mean', got {init!r}", "init")
        if mode == "softmax" and init == "fitted":
            raise InputError("[model] frame_weights", "softmax weights cannot start at the least-squares weights "
                             "(they may be negative); use init = \"mean\" or mode = \"free\"", "init")
        super().__init__(dim, context_len)
        self.mode, self.init = mode, init
        shape = (context_len, dim) if per_dim else (context_len, 1)
        start = torch.zeros(shape) if mode == "softmax" else torch.full(shape, 1.0 / context_len)
        self.weights = nn.Parameter(start)  # softmax: logits (zeros = uniform = the context mean)

    def frame_weights(self) -> torch.Tensor:
        """(L, D or 1) weights over the frames."""
        return torch.softmax(self.weights, dim=0) if self.mode == "softmax" else self.weights

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        return (self.frame_weights().unsqueeze(0) * F.normalize(x, dim=-1)).sum(dim=1)

    def _fit(self, ctx: np.ndarray, tgt: np.ndarray, articles: np.ndarray, seed: int) -> dict[str, Any]:
        if self.init != "fitted":
            return {"init": "mean"}
        ctx, tgt, _ = capped(ctx, tgt, articles, seed=seed)
        w = frame_weights_fit(ctx, tgt)
        with torch.no_grad():
            self.weights.copy_(torch.from_numpy(w.astype(np.float32))[:, None].expand_as(self.weights))
        return {"init": "fitted", "weights": [float(x) for x in w]}


class ResidualRidge(_FitOnce):
    """Ridge (fitted in closed form, frozen) plus a small MLP correction that starts at zero."""

    def __init__(self, dim: int, context_len: int, *, hidden_dim: int = 64) -> None:
        if hidden_dim < 1:
            raise InputError("[model] residual_ridge", f"expected >= 1, got {hidden_dim}", "hidden_dim")
        super().__init__(dim, context_len)
        self.ridge = nn.Linear(dim * context_len, dim)
        nn.init.zeros_(self.ridge.weight)
        nn.init.zeros_(self.ridge.bias)
        self.ridge.requires_grad_(False)
        self.residual = nn.Sequential(nn.Linear(dim * context_len, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, dim))
        nn.init.zeros_(self.residual[-1].weight)
        nn.init.zeros_(self.residual[-1].bias)

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        return self.ridge(flat) + self.residual(flat)

    def _fit(self, ctx: np.ndarray, tgt: np.ndarray, articles: np.ndarray, seed: int) -> dict[str, Any]:
        fit, _ = fit_ridge(ctx, tgt, articles, seed=seed)
        state = fit.linear_state()
        with torch.no_grad():
            self.ridge.weight.copy_(torch.from_numpy(state["weight"]))
            self.ridge.bias.copy_(torch.from_numpy(state["bias"]))
        return {"alpha": fit.alpha, "form": fit.form}
