"""Checkpoint selection cannot pick a degenerate model: the default metric (val/cos) is one a
far-from-everything prediction cannot win, and an evaluation with any non-finite or zero
prediction is never selected (lvm_core/training/loop.py)."""

from __future__ import annotations

import numpy as np

from lvm_core.data.store import ArticleStore, l2_normalize
from lvm_core.data.windows import make_windows
from lvm_core.evaluation.metrics import prediction_metrics
from lvm_core.models import baselines
from lvm_core.training.loop import TrainConfig
from lvm_core.training.validation import has_nonfinite
from tests.conftest import DEMO_STORE


def _val_metrics():
    store = ArticleStore.open(DEMO_STORE)
    wins = make_windows(store, np.arange(0, store.n_articles, 5))
    ctx, _ = wins.batch()
    far = l2_normalize(np.random.default_rng(0).normal(size=(1, store.dim)))  # a constant, far from every chunk
    preds = {"far": np.repeat(far, len(wins), axis=0), "copy_last": baselines.BASELINES["copy_last"](ctx),
             "context_mean": baselines.BASELINES["context_mean"](ctx), "zeros": np.zeros((len(wins), store.dim)),
             "nan": np.full((len(wins), store.dim), np.nan)}
    return {name: {f"val/{k}": v for k, v in prediction_metrics(store, p, wins.target_rows, context_len=5).items()}
            for name, p in preds.items()}


def _winner(metrics, name):
    fine = {p: m[name] for p, m in metrics.items() if not has_nonfinite(m)}
    return max(fine, key=fine.get)


def test_margin_is_won_by_a_prediction_far_from_everything_and_cos_is_not():
    m = _val_metrics()
    assert _winner(m, "val/margin_vs_last") == "far"  # the finding: margin ~0 beats every honest predictor
    default = TrainConfig.__dataclass_fields__["select_metric"].default
    assert default == "val/cos" and _winner(m, default) == "context_mean"
    assert m["far"]["val/cos"] < m["copy_last"]["val/cos"]


def test_zero_and_nan_evaluations_are_never_selected():
    m = _val_metrics()
    assert has_nonfinite(m["zeros"]) and has_nonfinite(m["nan"])
    assert not has_nonfinite(m["copy_last"]) and not has_nonfinite(m["far"])
    assert m["zeros"]["val/cos"] == 0.0 and m["nan"]["val/R@1_article"] == 0.0
    # a baseline's own count never blocks the model's selection
    assert not has_nonfinite({"val/cos": 0.5, "val/copy_last/nonfinite": 3.0})
