"""The strategy library: the loss ideas of the original toolchain, done right, plus a sampling head.

Each loss is ``factory(**params) -> strategy`` with ``strategy(batch, model) -> dict[str, Tensor]``
(workbench/hookspecs.py). The terms a strategy returns are meant to be *added*: the trainer
multiplies their sum by the plan's weight for this loss. Terms whose names start with ``stat/``
are detached numbers for the logs only (a ratio, a mean margin) and are never added to the loss
(lvm_core/training/loop.py, STAT_PREFIX). The trainer logs a term as loss/<entry> when its key is the
entry's name and loss/<entry>/<key> otherwise, so keys here are short: "flat", "stat/cos_h2".

What each strategy fixes against the original (reference/lnsp-reference.md section 5):
- rollout: every step carries gradient, and step h is scored against the true chunk h - 1 rows
  after the target (the original ran steps >= 1 under no_grad and mixed up its "previous" frame);
- adaptive_directional / anti_copy: the "previous" frame is the last context chunk c_last
  (the original used ctx[-2]);
- future_ranking: the ranking of +1 above +2, +3 is actually wired in (the original's was a `pass`).

docs/strategies.md has the formulas, parameters and plan snippets.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from workbench.api import ARCHITECTURES, Batch, InputError, LatentVectorModel, Param, hookimpl

Terms = dict[str, torch.Tensor]


# ---- shared helpers ------------------------------------------------------------------------------

def cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine along the last axis (broadcasting), safe for zero vectors."""
    return F.cosine_similarity(a, b, dim=-1, eps=1e-8)


def future_chunks(batch: Batch, count: int, loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The true chunks at +1..+count, (B, count, D), and a mask (B, count) of those in the article.

    Horizon h (1-based) is store row target_row + h - 1. Rows past the article's end (or past the
    store) are masked out; their vectors are replaced by the target so nothing reads out of range.
    """
    if count == 1:
        return batch.targets[:, None, :], torch.ones(batch.targets.shape[0], 1, dtype=torch.bool,
                                                     device=batch.targets.device)
    if batch.gather is None or batch.row_article is None:
        raise InputError("plan", f"needs the chunks after each target ({count} steps), so the data must be an "
                         "article store, not a bare sequences file", f"loss {loss!r}")
    rows = batch.target_rows[:, None] + torch.arange(count, device=batch.target_rows.device)[None, :]
    art = batch.row_article(rows).to(batch.article.device)
    inside = art == batch.article[:, None]
    inside[:, 0] = True  # the target itself is part of the window by construction
    safe = torch.where(inside.to(rows.device), rows, batch.target_rows[:, None].expand_as(rows))
    later = batch.gather(safe[:, 1:]).to(batch.targets.dtype).to(batch.targets.device)
    return torch.cat([batch.targets[:, None, :], later], dim=1), inside.to(batch.targets.device)


def rollout_predictions(batch: Batch, model: nn.Module, steps: int) -> torch.Tensor:
    """Predictions for +1..+steps, (B, steps, D), each fed back with gradient.

    Step 1 is the shared batch prediction; each later step drops the oldest frame and appends
    the previous prediction, so the gradient of step h reaches the model through every step.
    """
    pred = batch.prediction(model)
    preds = [pred]
    ctx = batch.contexts
    for _ in range(steps - 1):
        ctx = torch.cat([ctx[:, 1:, :], pred[:, None, :].to(ctx.dtype)], dim=1)
        pred = model(ctx)
        preds.append(pred)
    return torch.stack(preds, dim=1)


def distance(pred: torch.Tensor, truth: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-row distance along the last axis: "cosine" is 1 - cos, "mse" the mean squared error."""
    if kind == "cosine":
        return 1.0 - cos(pred, truth)
    return ((pred - truth) ** 2).mean(dim=-1)


def masked_step_mean(values: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean over steps of the per-step mean over valid rows; steps with no valid row skipped.

    values, mask: (B, H); weights: (H,).
    """
    m = mask.to(values.dtype)
    counts = m.sum(dim=0)
    per_step = (values * m).sum(dim=0) / counts.clamp_min(1.0)
    w = weights.to(values.dtype) * (counts > 0).to(values.dtype)
    return (per_step * w).sum() / w.sum().clamp_min(1e-12)


def _param_error(loss: str, key: str, message: str) -> InputError:
    return InputError("plan", message, f"loss {loss!r}: {key}")


# ---- rollout -----------------------------------------------------------------------------------------

class Rollout:
    """Multi-step autoregressive loss: feed each prediction back and score every step, with gradient.

    Step h (1..horizon) predicts from the context shifted h - 1 times (oldest frame dropped, the
    previous prediction appended) and is scored against the true chunk h - 1 rows after the
    target; steps that would leave the article are masked out. Term `rollout` is the weighted
    mean over steps of each step's mean distance. Optional `flat` is the original P4
    flatness penalty, flat_weight * mean_h ReLU(cos(pred_{h-1}, pred_h) - flat_threshold),
    which punishes a rollout that stands still (copy loops). Logs stat/cos_h{h}.
    """

    def __init__(self, horizon: int = 3, distance: str = "cosine", step_weights: Sequence[float] = (),
                 flat_weight: float = 0.0, flat_threshold: float = 0.95) -> None:
        if step_weights and len(step_weights) != horizon:
            raise _param_error("rollout", "step_weights", f"expected {horizon} weights (one per step), "
                               f"got {len(step_weights)}")
        if any(not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0 for w in step_weights):
            raise _param_error("rollout", "step_weights", f"expected numbers >= 0, got {list(step_weights)}")
        if step_weights and sum(step_weights) <= 0:
            raise _param_error("rollout", "step_weights", "expected at least one weight > 0")
        self.horizon = horizon
        self.distance = distance
        self.step_weights = torch.tensor([float(w) for w in step_weights] or [1.0] * horizon)
        self.flat_weight = flat_weight
        self.flat_threshold = flat_threshold

    def __call__(self, batch: Batch, model: nn.Module) -> Terms:
        truth, inside = future_chunks(batch, self.horizon, "rollout")
        preds = rollout_predictions(batch, model, self.horizon)
        d = distance(preds, truth, self.distance)  # (B, H)
        terms: Terms = {"rollout": masked_step_mean(d, inside, self.step_weights.to(d.device))}
        if self.flat_weight > 0 and self.horizon > 1:
            same = cos(preds[:, :-1, :], preds[:, 1:, :])  # (B, H - 1)
            terms["flat"] = self.flat_weight * F.relu(same - self.flat_threshold).mean()
        with torch.no_grad():
            c = cos(preds, truth)
            m = inside.to(c.dtype)
            for h in range(self.horizon):
                if m[:, h].sum() > 0:
                    terms[f"stat/cos_h{h + 1}"] = (c[:, h] * m[:, h]).sum() / m[:, h].sum()
        return terms


# ---- directional terms --------------------------------------------------------------------------------

class AdaptiveDirectional:
    """Directional margin against c_last, weighted per sample where copying c_last pays most.

    hinge_b = ReLU(margin - (cos(pred, y) - cos(pred, c_last))); weight_b = 1 + boost *
    sigmoid((cos(c_last, y) - threshold) / temperature), a constant of the data (P4's adaptive
    guard, applied per sample instead of to the batch mean). Term `adaptive_directional` is
    mean_b weight_b * hinge_b. Logs stat/margin (mean gap) and stat/weight (mean weight).
    """

    def __init__(self, margin: float = 0.01, threshold: float = 0.60, temperature: float = 0.05,
                 boost: float = 1.0) -> None:
        self.margin, self.threshold, self.temperature, self.boost = margin, threshold, temperature, boost

    def __call__(self, batch: Batch, model: nn.Module) -> Terms:
        pred = batch.prediction(model)
        gap = cos(pred, batch.targets) - cos(pred, batch.last)
        with torch.no_grad():
            weight = 1.0 + self.boost * torch.sigmoid((cos(batch.last, batch.targets) - self.threshold)
                                                      / self.temperature)
        return {"adaptive_directional": (weight * F.relu(self.margin - gap)).mean(),
                "stat/margin": gap.detach().mean(), "stat/weight": weight.mean()}


class AntiCopy:
    """Hinge against every context frame: the prediction must be nearer the target than any c_i.

    Term `anti_copy` = mean over samples b and frames i of ReLU(margin - (cos(pred, y) - cos(pred, c_i))).
    Logs stat/active, the fraction of (sample, frame) pairs inside the margin.
    """

    def __init__(self, margin: float = 0.02) -> None:
        self.margin = margin

    def __call__(self, batch: Batch, model: nn.Module) -> Terms:
        pred = batch.prediction(model)
        gaps = cos(pred, batch.targets)[:, None] - cos(pred[:, None, :], batch.contexts)  # (B, L)
        hinge = F.relu(self.margin - gaps)
        return {"anti_copy": hinge.mean(), "stat/active": (hinge > 0).to(hinge.dtype).mean().detach()}


# ---- multi-horizon ------------------------------------------------------------------------------------

class FutureRanking:
    """Multi-horizon targets +1..+K through one shared head, with a ranking term.

    The model's own prediction is fed back (as in rollout) to predict +2..+K. Term `fit`
    is fit_weight times the mean over horizons of each horizon's mean distance to its true chunk.
    Term `rank` is rank_weight times the mean, over samples and pairs h < j of horizons
    inside the article, of ReLU(margin - (cos(pred_h, y_h) - cos(pred_h, y_j))): each prediction
    must be nearer its own horizon than any later one, so +1 ranks above +2 and +3.
    Logs stat/rank_gap (the mean gap of pred_1 between y_1 and y_2).
    """

    def __init__(self, horizons: int = 3, margin: float = 0.008, fit_weight: float = 1.0,
                 rank_weight: float = 1.0, distance: str = "cosine") -> None:
        self.horizons, self.margin = horizons, margin
        self.fit_weight, self.rank_weight, self.distance = fit_weight, rank_weight, distance

    def __call__(self, batch: Batch, model: nn.Module) -> Terms:
        K = self.horizons
        truth, inside = future_chunks(batch, K, "future_ranking")
        preds = rollout_predictions(batch, model, K)
        terms: Terms = {}
        if self.fit_weight > 0:
            d = distance(preds, truth, self.distance)
            terms["fit"] = self.fit_weight * masked_step_mean(d, inside, torch.ones(K, device=d.device))
        sims = cos(preds[:, :, None, :], truth[:, None, :, :])  # (B, h, j): cos(pred_h, y_j)
        gaps = torch.diagonal(sims, dim1=1, dim2=2)[:, :, None] - sims  # cos(pred_h, y_h) - cos(pred_h, y_j)
        pairs = torch.triu(torch.ones(K, K, dtype=torch.bool, device=sims.device), diagonal=1)
        valid = pairs[None] & inside[:, None, :]  # y_j inside the article implies y_h is too (h < j)
        hinge = F.relu(self.margin - gaps)
        n = valid.sum()
        terms["rank"] = self.rank_weight * (hinge * valid).sum() / n.clamp_min(1)
        with torch.no_grad():
            ok = inside[:, 1]
            if ok.any():
                terms["stat/rank_gap"] = gaps[:, 0, 1][ok].mean()
        return terms


# ---- variance guard -------------------------------------------------------------------------------------

class VarianceGuard:
    """VICReg-style variance hinge that stops predictions shrinking toward their mean.

    Per dimension d over the batch: ReLU(floor * std(y_d) - std(pred_d)), averaged over d and
    divided by the mean std(y_d) so the term does not depend on D or the embedder's scale.
    Term `variance_guard`; stat/var_ratio = sum_d Var(pred_d) / sum_d Var(y_d) (1 = as spread as the
    targets, near 0 = collapsed to the mean), logged every step so the epoch mean is the report.
    """

    def __init__(self, floor: float = 0.5) -> None:
        self.floor = floor

    def __call__(self, batch: Batch, model: nn.Module) -> Terms:
        pred = batch.prediction(model)
        if pred.shape[0] < 2:
            zero = pred.sum() * 0.0
            return {"variance_guard": zero}
        var_p = pred.var(dim=0, correction=0)
        var_y = batch.targets.var(dim=0, correction=0).detach()
        std_p = torch.sqrt(var_p + 1e-12)
        std_y = torch.sqrt(var_y + 1e-12)
        hinge = F.relu(self.floor * std_y - std_p).mean() / std_y.mean().clamp_min(1e-12)
        ratio = var_p.detach().sum() / var_y.sum().clamp_min(1e-20)
        return {"variance_guard": hinge, "stat/var_ratio": ratio}


# ---- energy score and the sampling head -------------------------------------------------------------------

class EnergyScore:
    """CALM's energy score: a proper scoring rule with a repulsive term, for a model that samples.

    With m samples x_1..x_m of model.sample(contexts, m) and the target y, per sample:
    2 * mean_i ||x_i - y||^beta - mean_{i != j} ||x_i - x_j||^beta (beta in (0, 2)).
    The first part pulls samples to the target; the second pushes them apart, which is what keeps
    the predictive distribution from collapsing to the conditional mean. Term `energy_score`; logs
    stat/attract and stat/repel (the two means). Needs a sampling model such as
    arch "noisy_head".
    """

    uses_prediction = False  # it draws samples instead: the trainer skips the shared forward pass

    def __init__(self, samples: int = 8, beta: float = 1.0) -> None:
        if not 0.0 < beta < 2.0:
            raise _param_error("energy_score", "beta", f"expected 0 < beta < 2 (a proper score), got {beta}")
        self.samples, self.beta = samples, beta

    def __call__(self, batch: Batch, model: nn.Module) -> Terms:
        sample = getattr(model, "sample", None)
        if not callable(sample):
            raise InputError("plan", f"needs a model that draws samples (arch 'noisy_head'); "
                             f"{type(model).__name__} has no sample(contexts, m)", "loss 'energy_score'")
        x = sample(batch.contexts, self.samples)  # (B, m, D)
        m = x.shape[1]
        attract = self._dist(x, batch.targets[:, None, :]).mean(dim=1)  # (B,)
        pair = self._dist(x[:, :, None, :], x[:, None, :, :])  # (B, m, m)
        off = ~torch.eye(m, dtype=torch.bool, device=x.device)
        repel = (pair * off).sum(dim=(1, 2)) / (m * (m - 1))
        return {"energy_score": (2.0 * attract - repel).mean(),
                "stat/attract": attract.detach().mean(), "stat/repel": repel.detach().mean()}

    def _dist(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """||a - b||^beta, with a tiny offset so the gradient at a == b is finite."""
        return (((a - b) ** 2).sum(dim=-1) + 1e-12) ** (self.beta / 2.0)


#: base architecture -> its name for the main width and whether it has num_layers
_BASE_WIDTH = {"transformer": "d_model", "gru": "d_model", "amn": "d_model", "lstm": "hidden_dim", "mlp": "hidden_dim"}
_BASE_LAYERS = {"transformer", "gru", "lstm"}


class NoisyHead(LatentVectorModel):
    """A sampling head around a base architecture (CALM's stochastic MLP head, for energy_score).

    The base maps the context to a unit vector h. A sample is L2(h + g([h, noise_scale * z])) with
    z ~ N(0, I) of size noise_dim and g a two-layer MLP; `sample(contexts, m)` draws m of them,
    (B, m, D). The ordinary forward is the zero-noise output L2(h + g([h, 0])), deterministic, so
    every other loss, metric and gate treats the model as a point predictor.
    """

    def __init__(self, dim: int, context_len: int, *, base: str = "mlp", base_width: int = 0,
                 base_layers: int = 0, noise_dim: int = 32, hidden_dim: int = 256,
                 noise_scale: float = 1.0) -> None:
        super().__init__(dim, context_len)
        if base not in ARCHITECTURES:
            raise InputError("[model] noisy_head", f"unknown base {base!r} (known: {', '.join(sorted(ARCHITECTURES))})",
                             "base")
        kwargs: dict[str, int] = {}
        if base_width > 0:
            kwargs[_BASE_WIDTH[base]] = base_width
        if base_layers > 0:
            if base not in _BASE_LAYERS:
                raise InputError("[model] noisy_head", f"base {base!r} has no layer count; leave base_layers at 0",
                                 "base_layers")
            kwargs["num_layers"] = base_layers
        self.base = ARCHITECTURES[base](dim, context_len, **kwargs)
        self.noise_dim = noise_dim
        self.noise_scale = noise_scale
        self.noise_net = nn.Sequential(nn.Linear(dim + noise_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, dim))

    def _head(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return h + self.noise_net(torch.cat([h, self.noise_scale * z], dim=-1))

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        h = self.base(x)
        return self._head(h, h.new_zeros(*h.shape[:-1], self.noise_dim))

    def sample(self, x: torch.Tensor, m: int) -> torch.Tensor:
        """m samples per context, (B, m, D), unit rows."""
        h = self.base(x)[:, None, :].expand(-1, m, -1)
        z = torch.randn(h.shape[0], m, self.noise_dim, device=h.device, dtype=h.dtype)
        return F.normalize(self._head(h, z), p=2, dim=-1)


# ---- registration ---------------------------------------------------------------------------------------

_DISTANCE = ("cosine", "mse")


@hookimpl
def register_losses(register):
    register("rollout", Rollout, description="multi-step rollout with gradient through every step (+ flatness)",
             params=(
                 Param("horizon", "int", 3, "steps H; step h is scored against the chunk h-1 rows after the target",
                       min=1, max=16),
                 Param("distance", "str", "cosine", "per-step distance: cosine (1 - cos) or mse", choices=_DISTANCE),
                 Param("step_weights", "list", [], "one weight per step (empty: equal weights)"),
                 Param("flat_weight", "float", 0.0, "weight of the flatness penalty (the original P4 used 10; 0 = off)",
                       min=0.0),
                 Param("flat_threshold", "float", 0.95, "cos between consecutive predictions above which it is flat",
                       min=-1.0, max=1.0),
             ))
    register("adaptive_directional", AdaptiveDirectional,
             description="margin over c_last, weighted per sample where c_last is near y (P4)",
             params=(
                 Param("margin", "float", 0.01, "required cos(pred, y) - cos(pred, c_last)"),
                 Param("threshold", "float", 0.60, "cos(c_last, y) where the extra weight is half on"),
                 Param("temperature", "float", 0.05, "width of the sigmoid ramp", min=1e-6),
                 Param("boost", "float", 1.0, "extra weight at full strength (weight = 1 + boost * sigmoid)",
                       min=0.0),
             ))
    register("anti_copy", AntiCopy, description="hinge: nearer the target than every context frame",
             params=(Param("margin", "float", 0.02, "required cos(pred, y) - cos(pred, c_i) for every frame i"),))
    register("future_ranking", FutureRanking,
             description="targets +1..+K through the shared head, ranking +1 above +2, +3",
             params=(
                 Param("horizons", "int", 3, "K, the furthest horizon", min=2, max=16),
                 Param("margin", "float", 0.008, "required cos(pred_h, y_h) - cos(pred_h, y_j) for j > h"),
                 Param("fit_weight", "float", 1.0, "weight of the multi-horizon fit term (logged as fit)", min=0.0),
                 Param("rank_weight", "float", 1.0, "weight of the ranking term (logged as rank)", min=0.0),
                 Param("distance", "str", "cosine", "fit distance: cosine (1 - cos) or mse", choices=_DISTANCE),
             ))
    register("variance_guard", VarianceGuard,
             description="VICReg variance hinge; logs stat/var_ratio = Var(pred)/Var(y)",
             params=(Param("floor", "float", 0.5, "wanted std of each prediction dimension, as a fraction of "
                           "the targets' std", min=0.0),))
    register("energy_score", EnergyScore,
             description="CALM energy score (repulsive term); needs a sampling model",
             params=(
                 Param("samples", "int", 8, "samples m drawn per context", min=2, max=256),
                 Param("beta", "float", 1.0, "distance exponent, 0 < beta < 2", min=1e-6, max=1.999),
             ))


@hookimpl
def register_models(register):
    register("noisy_head", NoisyHead,
             description="sampling head around a built-in arch, for energy_score",
             params=(
                 Param("base", "str", "mlp", "built-in base architecture", choices=tuple(sorted(ARCHITECTURES))),
                 Param("base_width", "int", 0, "the base's main width (d_model or hidden_dim); 0 = its default",
                       min=0),
                 Param("base_layers", "int", 0, "the base's num_layers (transformer, gru, lstm); 0 = its default",
                       min=0),
                 Param("noise_dim", "int", 32, "size of the injected Gaussian noise", min=1),
                 Param("hidden_dim", "int", 256, "width of the noise MLP", min=1),
                 Param("noise_scale", "float", 1.0, "std of the injected noise", min=0.0),
             ))
