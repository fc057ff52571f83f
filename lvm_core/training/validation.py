"""The trainer's validation: the model and the baselines on the fixed sample of each eval split.

Not the 5CAT gate battery (lvm_core/evaluation/battery.py) and not the data checks (lvm_core/data/checks.py):
this is what the trainer measures at the end of an epoch, cos, margin_vs_last and the
within-article ranks of the model beside copy-last, the context mean and the fitted baselines on
the very same samples (lvm_core/training/loop.py calls it; run_recipes and the leaderboard reuse it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
from torch import nn

from . import distributed
from ..data.windows import Windows
from .distributed import SINGLE, Dist
from ..evaluation.metrics import prediction_metrics
from ..models import baselines
from ..models.fitted import fit_baselines_streamed
from ..models.input import forward, model_contexts

if TYPE_CHECKING:  # the trainer imports this module
    import torch

    from .loop import EvalSet


def predict(model: nn.Module, windows: Windows, device: torch.device, batch_size: int = 1024,
            dist: Dist = SINGLE) -> np.ndarray:
    """Model predictions (N, D) for every window, in eval mode, `batch_size` windows at a time,
    fed and run as the 5CAT battery does (lvm_core/models/input.py). In a torchrun job each rank predicts its share and every rank gets all N, in order."""
    mine = distributed.share(dist, len(windows))
    out = np.empty((mine.stop - mine.start, windows.store.dim), dtype=np.float32)
    for start in range(mine.start, mine.stop, batch_size):  # gathered one batch at a time
        rows = windows.target_rows[start:min(start + batch_size, mine.stop)]
        out[start - mine.start:start - mine.start + len(rows)] = forward(
            model, model_contexts(windows.store, rows, windows.context_len), device, batch_size)
    return distributed.gather_rows(dist, out, len(windows))


def split_metrics(name: str, windows: Windows, pred: np.ndarray, *, chance: bool = True) -> dict[str, float]:
    """prediction_metrics of one predictor on one split, as flat '<name>/<metric>' keys."""
    m = prediction_metrics(windows.store, pred, windows.target_rows, context_len=windows.context_len)
    return {f"{name}/{k}": float(v) for k, v in m.items() if chance or not k.startswith(("chance_", "candidates"))}


def baseline_predictions(eval_sets: Sequence[EvalSet], fitted: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None
                         ) -> dict[str, dict[str, np.ndarray]]:
    """{baseline: {split: predictions}}: copy-last, the context mean and the `fitted` ones
    (ridge, frame weights: lvm_core/models/fitted.py) on each split's samples, once per run."""
    predictors = {b: baselines.BASELINES[b] for b in ("copy_last", "context_mean")} | dict(fitted or {})
    out: dict[str, dict[str, np.ndarray]] = {b: {} for b in predictors}
    for es in eval_sets:
        ctx, _ = es.windows.batch()
        for b, fn in predictors.items():
            out[b][es.name] = fn(ctx)
    return out


def baseline_metrics(eval_sets: Sequence[EvalSet], preds: dict[str, dict[str, np.ndarray]] | None = None) -> dict[str, float]:
    """The baselines' validation numbers on each split's samples (`preds` from baseline_predictions)."""
    preds = baseline_predictions(eval_sets) if preds is None else preds
    out: dict[str, float] = {}
    for es in eval_sets:
        for b, by_split in preds.items():
            out.update(split_metrics(f"{es.name}/{b}", es.windows, by_split[es.name], chance=False))
    return out


def fit_eval_baselines(train_windows: Windows, seed: int = 0) -> Any:
    """Ridge and frame weights fitted on the train windows (lvm_core/models/fitted.py),
    streamed from the store a chunk of windows at a time: no train window is gathered whole."""
    return fit_baselines_streamed(train_windows.batch, train_windows.article_pos, seed=seed)


def evaluate(model: nn.Module, eval_sets: Sequence[EvalSet], device: torch.device, batch_size: int = 1024,
             dist: Dist = SINGLE, preds_out: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """The model's validation numbers on every eval split (without the baselines); the
    predictions per split go into `preds_out` when given."""
    out: dict[str, float] = {}
    for es in eval_sets:
        pred = predict(model, es.windows, device, batch_size, dist)
        if preds_out is not None:
            preds_out[es.name] = pred
        out.update(split_metrics(es.name, es.windows, pred))
    return out


def has_nonfinite(metrics: dict[str, float]) -> bool:
    """Whether the model made any prediction without a direction on an eval split
    ("<split>/nonfinite" > 0): such an evaluation is never selected as best, whatever the metric."""
    return any(v > 0 for k, v in metrics.items() if k.count("/") == 1 and k.endswith("/nonfinite"))
