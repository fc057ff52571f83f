"""Built-in loss strategies, registered through `register_losses`.

A strategy is ``factory(**params)`` -> ``strategy(batch, model) -> {term name: scalar tensor}``.
The prediction comes from ``batch.prediction(model)``, so every term of a plan shares one
forward pass. The plan weights each term (and may schedule the weight). Terms named ``stat/...``
are detached numbers the trainer logs but never adds to the loss.

The directional margin compares with the LAST context frame, c_last = contexts[:, -1]. The
original guarded against contexts[:, -2] by mistake (lnsp-reference.md section 5.3), which
left the copy-last failure it was meant to punish untouched.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from workbench.api import Batch, InputError, Param, hookimpl

Strategy = Callable[[Batch, torch.nn.Module], dict[str, torch.Tensor]]


def _unit(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x.float(), p=2, dim=-1)


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine along the last axis, broadcasting (e.g. (B, 1, D) with (B, L, D) -> (B, L))."""
    return (_unit(a) * _unit(b)).sum(dim=-1)


# ---- mse / cosine --------------------------------------------------------------------------

def mse() -> Strategy:
    """Mean squared error between the (unit) prediction and the target, over all elements."""

    def strategy(batch: Batch, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {"mse": F.mse_loss(batch.prediction(model).float(), batch.targets.float())}

    return strategy


def cosine() -> Strategy:
    """1 - cos(prediction, target), averaged over the batch."""

    def strategy(batch: Batch, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {"cosine": (1.0 - _cos(batch.prediction(model), batch.targets)).mean()}

    return strategy


# ---- InfoNCE -------------------------------------------------------------------------------

def hard_negative_offsets(k: int, context_len: int) -> list[int]:
    """Row offsets (from the target) of the k same-article chunks nearest the window but outside
    it: +1, -(L+1), +2, -(L+2), ... (the chunk after the target first, then the one before the
    context). The context frames themselves are a separate option."""
    out: list[int] = []
    step = 1
    while len(out) < k:
        out.append(step)
        if len(out) < k:
            out.append(-(context_len + step))
        step += 1
    return out


def _hard_negative_scores(batch: Batch, query: torch.Tensor, k: int) -> torch.Tensor:
    """cos(query, hard negative) (B, k); -inf where the chunk lies outside the target's article."""
    if batch.gather is None or batch.row_article is None:
        raise RuntimeError("infonce hard_negatives needs a batch with gather and row_article (the trainer sets them)")
    offsets = torch.tensor(hard_negative_offsets(k, batch.contexts.shape[1]), device=batch.target_rows.device)
    rows = batch.target_rows[:, None].long() + offsets[None, :]
    valid = batch.row_article(rows) == batch.article[:, None]
    safe = torch.where(valid, rows, batch.target_rows[:, None].long())  # never gather outside the store
    scores = _cos(query[:, None, :], batch.gather(safe).to(query.device))
    return scores.masked_fill(~valid, float("-inf"))


def infonce(temperature: float = 0.07, hard_negatives: int = 0, context_negatives: bool = False,
            symmetric: bool = False) -> Strategy:
    """Cross-entropy of the true target against in-batch negatives (other samples' targets),
    optionally plus same-article hard negatives and the sample's own context frames.

    Logs stat/top1: the fraction of samples whose target outscores every negative."""
    if not temperature > 0:
        raise InputError("[[loss]] infonce", f"expected > 0, got {temperature!r}", "temperature")
    if hard_negatives < 0:
        raise InputError("[[loss]] infonce", f"expected >= 0, got {hard_negatives!r}", "hard_negatives")

    def strategy(batch: Batch, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        query = _unit(batch.prediction(model))
        keys = _unit(batch.targets)
        columns = [query @ keys.T]  # (B, B), the diagonal holds the positives
        if hard_negatives > 0:
            columns.append(_hard_negative_scores(batch, query, hard_negatives))
        if context_negatives:
            columns.append(_cos(query[:, None, :], batch.contexts))
        logits = torch.cat(columns, dim=1) / temperature
        labels = torch.arange(query.shape[0], device=query.device)
        loss = F.cross_entropy(logits, labels)
        if symmetric:  # target -> prediction direction, over the in-batch predictions
            loss = 0.5 * (loss + F.cross_entropy(keys @ query.T / temperature, labels))
        with torch.no_grad():
            top1 = (logits.argmax(dim=1) == labels).float().mean()
        return {"infonce": loss, "stat/top1": top1}

    return strategy


# ---- directional margin --------------------------------------------------------------------

def directional_margin(margin: float = 0.05, form: str = "hinge", gamma: float = 4.0,
                       frames: str = "last") -> Strategy:
    """Penalise a prediction nearer the context than the target.

    gap = cos(pred, target) - cos(pred, c); the term is hinge: relu(margin - gap), or softplus:
    softplus(gamma * (margin - gap)) / gamma. `frames`: "last" uses c = c_last; "all" averages
    the term over every context frame; "nearest" uses the frame most similar to the prediction.
    Logs stat/margin, the mean gap on the batch (with frames = "last", the training-batch
    counterpart of the validation number margin_vs_last; docs/metrics.md).
    """
    if form not in ("hinge", "softplus"):
        raise InputError("[[loss]] directional_margin", f"expected 'hinge' or 'softplus', got {form!r}", "form")
    if frames not in ("last", "all", "nearest"):
        raise InputError("[[loss]] directional_margin", f"expected 'last', 'all' or 'nearest', got {frames!r}", "frames")

    def penalty(x: torch.Tensor) -> torch.Tensor:
        return F.relu(x) if form == "hinge" else F.softplus(gamma * x) / gamma

    def strategy(batch: Batch, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        pred = batch.prediction(model)
        to_target = _cos(pred, batch.targets)  # (B,)
        if frames == "last":
            gap = to_target - _cos(pred, batch.last)
        else:
            to_frames = _cos(pred[:, None, :], batch.contexts)  # (B, L)
            if frames == "all":
                gap = to_target[:, None] - to_frames
            else:
                gap = to_target - to_frames.max(dim=1).values
        return {"directional_margin": penalty(margin - gap).mean(), "stat/margin": gap.detach().mean()}

    return strategy


@hookimpl
def register_losses(register):
    register("mse", mse, description="mean squared error to the target (the original's default)")
    register("cosine", cosine, description="1 - cos(prediction, target)")
    register("infonce", infonce, description="InfoNCE with in-batch negatives (+ same-article, + context frames)",
             params=(
                 Param("temperature", "float", 0.07, "softmax temperature", min=1e-4),
                 Param("hard_negatives", "int", 0,
                       "same-article chunks outside the window used as extra negatives (+1, -(L+1), +2, ...)",
                       min=0, max=64),
                 Param("context_negatives", "bool", False, "use the sample's own context frames as negatives"),
                 Param("symmetric", "bool", False, "also the target -> prediction direction (as the original)"),
             ))
    register("directional_margin", directional_margin,
             description="hinge/softplus on cos(pred, target) - cos(pred, c_last): punishes backward bias",
             params=(
                 Param("margin", "float", 0.05, "required lead of the target over the context frame"),
                 Param("form", "str", "hinge", "penalty shape", choices=("hinge", "softplus")),
                 Param("gamma", "float", 4.0, "sharpness of the softplus form", min=1e-3),
                 Param("frames", "str", "last", "compare with the last frame, all frames (mean) or the nearest",
                       choices=("last", "all", "nearest")),
             ))
