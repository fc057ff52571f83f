"""Baseline predictors: what a model has to beat before its numbers mean anything.

"val cosine 0.55" says nothing on its own; beside copy-last (0.46) and the context mean (0.55) it
says "no better than averaging". Every function maps contexts (N, L, D) to unit-norm predictions
(N, D) in float32, with numpy only, so the trainer, the gates and the diagnostics share one
definition.

- copy_last: the persistence forecast, c_last.
- context_mean: the mean of the L context chunks (a regress-to-the-mean floor).
- linear_extrapolation: one more step along the last move, c_last + (c_last - c_prev).
- RidgeBaseline: closed-form ridge regression from the flattened context to the target, the
  cheapest learned baseline (how much of the task is linear). `weights` (L*D, D) and `bias`
  (D,) load into a torch nn.Linear(L*D, D) as weight = weights.T, bias = bias.

The same baselines as torch modules with the models' interface (CopyLast, ContextMean,
LinearExtrapolation, Ridge, at the end): contexts (B, L, D) -> unit rows (B, D), registered as
model architectures, so the trainer, the evaluation and the gates compare a model with
copy-last or ridge through one code path; ridge's closed-form weights (RidgeBaseline) live in
an nn.Linear, saved and reloaded with the checkpoint like any model's.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..data.store import l2_normalize
from ..errors import InputError
from .networks import LatentVectorModel

Predictor = Callable[[np.ndarray], np.ndarray]
#: the ridge penalties tried on held-out training articles, everywhere ridge chooses its own
RIDGE_ALPHAS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)


def _check_contexts(contexts: np.ndarray, min_len: int = 1) -> np.ndarray:
    contexts = np.asarray(contexts)
    if contexts.ndim != 3:
        raise InputError("contexts", f"expected shape (N, L, D), got {contexts.shape}")
    if contexts.shape[1] < min_len:
        raise InputError("contexts", f"expected a context of at least {min_len} chunks, got L = {contexts.shape[1]}")
    return contexts


def copy_last(contexts: np.ndarray) -> np.ndarray:
    """c_last: the prediction of a model that only copies its input."""
    contexts = _check_contexts(contexts)
    return l2_normalize(contexts[:, -1, :])


def context_mean(contexts: np.ndarray) -> np.ndarray:
    """Mean of the (normalised) context chunks: what an MSE regressor drifts toward."""
    contexts = _check_contexts(contexts)
    return l2_normalize(l2_normalize(contexts).mean(axis=1))


def linear_extrapolation(contexts: np.ndarray) -> np.ndarray:
    """normalize(c_last + (c_last - c_prev)): continue the last step of the trajectory."""
    contexts = _check_contexts(contexts, min_len=2)
    unit = l2_normalize(contexts[:, -2:, :])
    return l2_normalize(2.0 * unit[:, 1, :] - unit[:, 0, :])


#: name -> predictor over contexts (N, L, D) -> (N, D). Ridge needs fitting, so it is not here.
BASELINES: dict[str, Predictor] = {
    "copy_last": copy_last,
    "context_mean": context_mean,
    "linear_extrapolation": linear_extrapolation,
}


class RidgeBaseline:
    """Ridge regression target ~ flatten(context) @ weights + bias, solved in closed form.

    The intercept is not penalised (inputs and targets are centred first). The solve is done in
    float64, in the primal (P x P, P = L*D) or the dual (N x N) form, whichever is smaller.
    """

    def __init__(self) -> None:
        self.weights: np.ndarray | None = None  # (L*D, D) float32
        self.bias: np.ndarray | None = None  # (D,) float32
        self.context_len: int | None = None
        self.dim: int | None = None
        self.alpha: float | None = None
        self.form: str | None = None  # "primal" or "dual", for the record

    def fit(self, contexts: np.ndarray, targets: np.ndarray, alpha: float = 1.0) -> "RidgeBaseline":
        contexts = _check_contexts(contexts)
        n, length, dim = contexts.shape
        targets = np.asarray(targets)
        if targets.shape != (n, dim):
            raise InputError("targets", f"expected shape ({n}, {dim}) to match the contexts, got {targets.shape}")
        if not alpha > 0:
            raise InputError("ridge", f"expected alpha > 0, got {alpha!r}")
        if n < 1:
            raise InputError("contexts", "expected at least one training window")
        system = _RidgeSystem(contexts.reshape(n, length * dim), targets)
        w = system.solve(alpha)
        self.weights = w.astype(np.float32)
        self.bias = (system.y_mean - system.x_mean @ w).astype(np.float32)
        self.context_len, self.dim, self.alpha, self.form = length, dim, float(alpha), system.form
        return self

    @classmethod
    def from_weights(cls, weights: np.ndarray, bias: np.ndarray, *, context_len: int, alpha: float,
                     form: str) -> "RidgeBaseline":
        """A fit solved elsewhere (lvm_core/models/ridge_stream.py): weights (L*D, D), bias (D,)."""
        fit = cls()
        fit.weights, fit.bias = np.asarray(weights, np.float32), np.asarray(bias, np.float32)
        fit.context_len, fit.dim, fit.alpha, fit.form = int(context_len), int(fit.bias.shape[0]), float(alpha), form
        return fit

    def predict_raw(self, contexts: np.ndarray) -> np.ndarray:
        """flatten(contexts) @ weights + bias, not normalised (N, D) float32."""
        if self.weights is None or self.bias is None:
            raise RuntimeError("RidgeBaseline.predict called before fit")
        contexts = _check_contexts(contexts)
        n, length, dim = contexts.shape
        if (length, dim) != (self.context_len, self.dim):
            raise InputError("contexts", f"expected (N, {self.context_len}, {self.dim}) as fitted, got {contexts.shape}")
        x = np.asarray(contexts, dtype=np.float32).reshape(n, length * dim)
        return x @ self.weights + self.bias

    def predict(self, contexts: np.ndarray) -> np.ndarray:
        """Unit-norm predictions (N, D), like every model's output."""
        return l2_normalize(self.predict_raw(contexts))

    def linear_state(self) -> dict[str, np.ndarray]:
        """{"weight": (D, L*D), "bias": (D,)}: the state dict of an equivalent nn.Linear."""
        if self.weights is None or self.bias is None:
            raise RuntimeError("RidgeBaseline.linear_state called before fit")
        return {"weight": np.ascontiguousarray(self.weights.T), "bias": self.bias.copy()}


class _RidgeSystem:
    """Centred data and its Gram matrix (primal, P x P) or kernel (dual, N x N), whichever is
    smaller, built once so several penalties cost one solve each."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self.x_mean, self.y_mean = x.mean(axis=0), y.mean(axis=0)
        self.x, self.y = x - self.x_mean, y - self.y_mean
        n, p = x.shape
        self.form = "primal" if n >= p else "dual"
        # primal: (X^T X + a I) W = X^T Y;  dual: W = X^T (X X^T + a I)^-1 Y (the same solution)
        self.matrix = self.x.T @ self.x if self.form == "primal" else self.x @ self.x.T
        self.rhs = self.x.T @ self.y if self.form == "primal" else self.y

    def solve(self, alpha: float) -> np.ndarray:
        """Weights (P, D) in float64 for penalty `alpha`."""
        a = self.matrix.copy()
        a[np.diag_indices(a.shape[0])] += alpha
        sol = np.linalg.solve(a, self.rhs)
        return sol if self.form == "primal" else self.x.T @ sol


def check_alphas(alphas: Sequence[float]) -> None:
    """One clear error unless `alphas` is a non-empty list of penalties > 0."""
    if not alphas or any(isinstance(a, bool) or not isinstance(a, (int, float)) or not a > 0 for a in alphas):
        raise InputError("ridge", f"expected a list of alphas > 0, got {list(alphas)!r}")


def heldout_articles(groups: np.ndarray, holdout_fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """Mask of the windows whose article is in the seeded `holdout_fraction` of the articles
    (at least one held out, at least one kept): where ridge's penalty is chosen."""
    groups = np.asarray(groups)
    unique = np.unique(groups)
    if len(unique) < 2:
        raise InputError("ridge", "choosing alpha needs windows from at least 2 articles")
    rng = np.random.default_rng(seed)
    n_hold = min(len(unique) - 1, max(1, int(round(holdout_fraction * len(unique)))))
    return np.isin(groups, rng.permutation(unique)[:n_hold])


def select_ridge_alpha(
    contexts: np.ndarray, targets: np.ndarray, groups: np.ndarray,
    alphas: Sequence[float] = RIDGE_ALPHAS, *,
    holdout_fraction: float = 0.2, seed: int = 0,
) -> tuple[float, dict[float, float]]:
    """The penalty with the best mean cosine on held-out groups (articles) of the training data.

    A fixed alpha can under-sell ridge badly (on the demo store alpha 1 over-fits: 0.52 against
    0.59 at alpha 30), and choosing it on the evaluation part would flatter it; so a seeded
    `holdout_fraction` of the training articles is held out, one system is built on the rest,
    and each alpha costs one solve. Returns (best alpha, {alpha: held-out mean cosine}).
    """
    contexts = _check_contexts(contexts)
    groups = np.asarray(groups)
    if len(groups) != len(contexts):
        raise InputError("groups", f"expected one group per window ({len(contexts)}), got {len(groups)}")
    check_alphas(alphas)
    held = heldout_articles(groups, holdout_fraction, seed)
    n, length, dim = contexts.shape
    flat = contexts.reshape(n, length * dim)
    system = _RidgeSystem(flat[~held], targets[~held])
    x_hold = flat[held].astype(np.float64) - system.x_mean
    t_hold = l2_normalize(targets[held])
    scores: dict[float, float] = {}
    for alpha in alphas:
        pred = l2_normalize(x_hold @ system.solve(alpha) + system.y_mean)
        scores[float(alpha)] = float(np.mean(np.sum(pred * t_hold, axis=1)))
    best = max(scores, key=lambda a: scores[a])
    return best, scores


# ---- the same baselines as torch modules --------------------------------------------------------

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
