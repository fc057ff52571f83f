"""Ridge and frame weights from normal equations streamed over chunks of windows
(lvm_core/models/ridge_stream.py): the same numbers as the dense reference, without the design matrix."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from lvm_core.data.store import ArticleStore, l2_normalize, write_store
from lvm_core.data.windows import Windows, make_windows, split_by_fractions
from lvm_core.errors import InputError
from lvm_core.models import ridge_stream
from lvm_core.models.baselines import RidgeBaseline, select_ridge_alpha
from lvm_core.models.fitted import MAX_FIT_WINDOWS, fit_baselines_streamed, frame_weights_streamed
from lvm_core.models.ridge_stream import NormalEquations, array_reader, fit_ridge_streamed
from lvm_core.training import validation as train_validation

from .conftest import OOD_STORE


def _dense_frame_weights(ctx, tgt):
    c = l2_normalize(ctx.astype(np.float32)).astype(np.float64)
    t = l2_normalize(tgt.astype(np.float32)).astype(np.float64)
    gram = np.einsum("nid,njd->ij", c, c) / len(c)
    gram[np.diag_indices_from(gram)] += 1e-6 * np.trace(gram) / len(gram)
    return np.linalg.solve(gram, np.einsum("nid,nd->i", c, t) / len(c))


@pytest.mark.parametrize("chunk", [7, 4096])  # many chunks, and one
def test_streamed_ridge_equals_the_dense_fit_on_a_real_store(monkeypatch, chunk):
    """On the bundled KJV store's train part: same held-out scores, same alpha, same weights and
    predictions as select_ridge_alpha + RidgeBaseline.fit (the dense primal or dual solve)."""
    monkeypatch.setattr(ridge_stream, "CHUNK_WINDOWS", chunk)
    store = ArticleStore.open(OOD_STORE)
    split = split_by_fractions(store, {"train": 0.8, "val": 0.2}, seed=1)
    train = make_windows(store, split.positions(store, "train"), 3)
    ctx, tgt = train.batch()
    alpha, scores = select_ridge_alpha(ctx, tgt, train.article_pos, seed=1)
    dense = RidgeBaseline().fit(ctx, tgt, alpha=alpha)
    streamed, s_scores = fit_ridge_streamed(train.batch, np.arange(len(train)), train.article_pos, seed=1)
    assert streamed.alpha == alpha and set(s_scores) == set(scores)
    for a in scores:
        assert s_scores[a] == pytest.approx(scores[a], abs=1e-6)
    np.testing.assert_allclose(streamed.weights, dense.weights, atol=1e-5)
    np.testing.assert_allclose(streamed.bias, dense.bias, atol=1e-5)
    val_ctx, _ = make_windows(store, split.positions(store, "val"), 3).batch()
    np.testing.assert_allclose(streamed.predict(val_ctx), dense.predict(val_ctx), atol=1e-5)
    np.testing.assert_allclose(frame_weights_streamed(train.batch, np.arange(len(train))),
                               _dense_frame_weights(ctx, tgt), atol=1e-9)


def test_streamed_ridge_indexes_the_windows_it_is_given():
    """Only the windows of `index` count, in any order, each with its own article."""
    rng = np.random.default_rng(3)
    ctx = rng.normal(size=(300, 2, 4)).astype(np.float32)
    tgt = rng.normal(size=(300, 4)).astype(np.float32)
    arts = np.repeat(np.arange(30), 10)
    index = rng.permutation(300)[:150]
    sub, _ = fit_ridge_streamed(array_reader(ctx, tgt), index, arts[index], alpha=2.0)
    dense = RidgeBaseline().fit(ctx[index], tgt[index], alpha=2.0)
    np.testing.assert_allclose(sub.weights, dense.weights, atol=1e-6)
    chosen, _ = fit_ridge_streamed(array_reader(ctx, tgt), index, arts[index], seed=4)
    assert chosen.alpha == select_ridge_alpha(ctx[index], tgt[index], arts[index], seed=4)[0]


def test_streamed_ridge_on_degenerate_targets():
    """Copy-last target: ridge copies the last frame; a constant target: ridge predicts it;
    all-zero contexts: the bias alone (the target mean); NaN data: NaN out, never a crash."""
    rng = np.random.default_rng(0)
    ctx = l2_normalize(rng.normal(size=(400, 3, 6))).astype(np.float32)
    arts = np.repeat(np.arange(40), 10)
    fit, _ = fit_ridge_streamed(array_reader(ctx, ctx[:, -1]), np.arange(400), arts, alpha=1e-6)
    assert np.min(np.sum(fit.predict(ctx) * ctx[:, -1], axis=1)) > 0.999
    const = np.tile(l2_normalize(np.ones((1, 6))), (400, 1)).astype(np.float32)
    fit, scores = fit_ridge_streamed(array_reader(ctx, const), np.arange(400), arts)
    assert np.allclose(fit.predict(ctx), const, atol=1e-5) and all(v == pytest.approx(1.0) for v in scores.values())
    zeros = np.zeros_like(ctx)
    fit, _ = fit_ridge_streamed(array_reader(zeros, ctx[:, 0]), np.arange(400), arts, alpha=1.0)
    np.testing.assert_allclose(fit.predict_raw(zeros[:1])[0], ctx[:, 0].mean(axis=0), atol=1e-6)
    nan = ctx.copy()
    nan[5, 1, 2] = np.nan
    fit, _ = fit_ridge_streamed(array_reader(nan, ctx[:, 0]), np.arange(400), arts, alpha=1.0)
    assert not np.isfinite(fit.weights).all()


def test_streamed_ridge_refuses_bad_input():
    ctx = np.zeros((4, 2, 3), np.float32)
    read = array_reader(ctx, ctx[:, 0])
    with pytest.raises(InputError, match="article"):
        fit_ridge_streamed(read, np.arange(4), np.zeros(3))
    with pytest.raises(InputError, match="alpha"):
        fit_ridge_streamed(read, np.arange(4), np.zeros(4), alpha=0.0)
    with pytest.raises(InputError, match="alphas"):
        fit_ridge_streamed(read, np.arange(4), np.array([0, 0, 1, 1]), alphas=(1.0, "x"))
    with pytest.raises(InputError, match="at least one"):
        NormalEquations.accumulate(read, np.arange(0))


def _big_windows(tmp_path, rows=24000, dim=64) -> Windows:
    rng = np.random.default_rng(0)
    lengths = [40] * (rows // 40)
    store = write_store(tmp_path / "s", rng.normal(size=(rows, dim)), lengths, list(range(len(lengths))),
                        dtype="float32")
    return make_windows(store, None, 5)


def test_the_run_fit_reads_chunks_and_never_holds_the_design_matrix(tmp_path, monkeypatch):
    """The per-run fit (train.fit_eval_baselines) reads at most CHUNK_WINDOWS windows at a time,
    and its numpy allocations peak far below one copy of the capped design matrix (the dense fit
    held it gathered, as float64 and centred: about 3x)."""
    w = _big_windows(tmp_path)
    assert len(w) > MAX_FIT_WINDOWS
    design = MAX_FIT_WINDOWS * 5 * 64 * 8  # float64 design matrix of the capped windows: 51 MB
    gathered: list[int] = []
    real_batch = Windows.batch

    def counting_batch(self, idx=None):
        out = real_batch(self, idx)
        gathered.append(len(out[0]))
        return out

    monkeypatch.setattr(Windows, "batch", counting_batch)
    tracemalloc.start()
    try:
        fitted = train_validation.fit_eval_baselines(w, seed=3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert max(gathered) <= ridge_stream.CHUNK_WINDOWS
    assert peak < design / 2, f"peak {peak / 2**20:.0f} MiB against a design matrix of {design / 2**20:.0f} MiB"
    assert fitted.record["windows"] == MAX_FIT_WINDOWS and fitted.record["of_windows"] == len(w)
    assert fitted.record["ridge"]["form"] == "streamed"
    monkeypatch.setattr(Windows, "batch", real_batch)
    again = fit_baselines_streamed(w.batch, w.article_pos, seed=3)
    assert again.record == fitted.record


def test_the_streamed_fit_holds_at_most_three_gram_sized_matrices(monkeypatch):
    """Sums (P x P), one product or LAPACK's copy, small chunks: below 3 P x P of numpy memory
    (centring the sums into a new matrix for every penalty took 4.2)."""
    monkeypatch.setattr(ridge_stream, "CHUNK_WINDOWS", 64)
    rng = np.random.default_rng(0)
    ctx = rng.normal(size=(600, 5, 128)).astype(np.float32)
    tgt = rng.normal(size=(600, 128)).astype(np.float32)
    gram = (5 * 128) ** 2 * 8
    tracemalloc.start()
    try:
        fit, _ = fit_ridge_streamed(array_reader(ctx, tgt), np.arange(600), np.repeat(np.arange(60), 10))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * gram, f"peak {peak / gram:.2f} P x P"
    dense = RidgeBaseline().fit(ctx, tgt, alpha=fit.alpha)
    np.testing.assert_allclose(fit.weights, dense.weights, atol=1e-6)
