"""Ridge and frame weights fitted on the train part (lvm_core/models/fitted.py), and the
trainer's paired gains over every baseline (lvm_core/evaluation/paired_eval.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lvm_core.data.store import l2_normalize
from lvm_core.data.windows import make_windows
from lvm_core.evaluation.bootstrap import paired_intervals
from lvm_core.evaluation.paired_eval import PairedEval, gain_metrics, load_samples
from lvm_core.models.fitted import FrameWeights, fit_baselines, frame_weights_fit
from lvm_core.training.loop import EvalSet
from lvm_core.training.validation import baseline_predictions


def _frames(n=200, length=5, dim=12, seed=0):
    rng = np.random.default_rng(seed)
    return l2_normalize(rng.normal(size=(n, length, dim))).astype(np.float32)


def test_frame_weights_recover_a_target_that_is_a_fixed_mix():
    """target = 0.7 c_4 + 0.3 c_2 exactly: least squares gives those weights (frames independent)."""
    rng = np.random.default_rng(0)
    ctx = np.linalg.qr(rng.normal(size=(200, 12, 5)))[0].transpose(0, 2, 1).astype(np.float32)  # orthonormal frames
    tgt = 0.7 * ctx[:, 4] + 0.3 * ctx[:, 2]
    w = frame_weights_fit(ctx, tgt)
    # the target is normalised first: |0.7 c_4 + 0.3 c_2| = sqrt(0.58) for orthonormal frames
    assert w == pytest.approx(np.array([0, 0, 0.3, 0, 0.7]) / np.sqrt(0.58), abs=1e-5)
    pred = FrameWeights(w)(ctx)
    assert np.allclose(np.sum(pred * l2_normalize(tgt), axis=1), 1.0, atol=1e-4)


def test_frame_weights_of_copy_last_target_are_the_last_frame():
    ctx = _frames()
    w = frame_weights_fit(ctx, ctx[:, -1])
    assert w == pytest.approx([0, 0, 0, 0, 1], abs=1e-5)


def test_fit_baselines_on_a_store_records_what_was_fitted(tiny_store):
    w = make_windows(tiny_store, None, 3)
    ctx, tgt = w.batch()
    fitted = fit_baselines(ctx, tgt, w.article_pos)
    assert set(fitted.predictors) == {"ridge", "frame_weights"}
    assert fitted.record["ridge"]["alpha"] > 0 and len(fitted.record["frame_weights"]["weights"]) == 3
    for fn in fitted.predictors.values():
        p = fn(ctx)
        assert p.shape == tgt.shape and np.allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-5)


def test_fit_baselines_caps_the_windows_it_fits_on(tiny_store):
    w = make_windows(tiny_store, None, 3)
    ctx, tgt = w.batch()
    fitted = fit_baselines(ctx, tgt, w.article_pos, max_windows=6)
    assert fitted.record["windows"] == 6 and fitted.record["of_windows"] == len(w)


def _paired(store):
    w = make_windows(store, None, 3)
    sets = [EvalSet("val", w)]
    preds = baseline_predictions(sets)
    return w, PairedEval(sets, preds), preds


def test_gains_are_paired_bootstrap_intervals_of_the_cos_differences(tiny_store):
    w, pe, preds = _paired(tiny_store)
    ctx, tgt = w.batch()
    model = 0.5 * ctx[:, -1] + 0.5 * ctx[:, -2]
    m = pe.metrics({"val": model})
    t = l2_normalize(tgt)
    cos = lambda p: np.sum(l2_normalize(p) * t, axis=1).astype(np.float64)  # noqa: E731
    ids = np.asarray(tiny_store.article_ids)[tiny_store.row_article[w.target_rows]]
    iv = paired_intervals(cos(model) - cos(ctx[:, -1]), ids)[0]
    assert m["val/gain/copy_last"] == pytest.approx(iv.mean, abs=1e-6)
    assert m["val/gain/copy_last/lo"] == pytest.approx(iv.lo, abs=1e-6)
    assert m["val/beats_baselines"] == float(m["val/gain/copy_last/lo"] > 0 and m["val/gain/context_mean/lo"] > 0)


@pytest.mark.parametrize("name", ["zeros", "nan", "constant", "copy_last"])
def test_degenerate_models_never_beat_the_baselines(tiny_store, name):
    w, pe, preds = _paired(tiny_store)
    ctx, _ = w.batch()
    model = {"zeros": np.zeros_like(ctx[:, 0]), "nan": np.full_like(ctx[:, 0], np.nan),
             "constant": np.ones_like(ctx[:, 0]), "copy_last": ctx[:, -1]}[name]
    m = pe.metrics({"val": model})
    assert m["val/beats_baselines"] == 0.0
    if name == "copy_last":
        assert (m["val/gain/copy_last"], m["val/gain/copy_last/lo"]) == (0.0, 0.0)
    if name == "nan":
        assert math.isnan(m["val/gain/context_mean/lo"])


def test_eval_samples_round_trip_without_pickle(tiny_store, tmp_path):
    w, pe, _ = _paired(tiny_store)
    ctx, _ = w.batch()
    pe.metrics({"val": ctx[:, -1]})
    pe.save(tmp_path / "eval_samples.npz", epoch=3)
    got = load_samples(tmp_path / "eval_samples.npz")["val"]
    assert set(got) == {"article_id", "row", "model", "copy_last", "context_mean"}
    assert np.array_equal(got["row"], w.target_rows)
    assert np.array_equal(got["article_id"], np.asarray(tiny_store.article_ids)[tiny_store.row_article[w.target_rows]])
    assert np.allclose(got["model"], got["copy_last"])
    with np.load(tmp_path / "eval_samples.npz", allow_pickle=False) as z:
        assert int(z["epoch"]) == 3


def test_gain_metrics_without_baselines_is_empty():
    assert gain_metrics("val", np.zeros(3), {}, np.zeros(3)) == {}
