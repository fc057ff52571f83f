"""Baselines against hand-computed answers on 1-D, 2-D and 3-D vectors."""

import numpy as np
import pytest
import torch

from lvm_core.errors import InputError
from lvm_core.models.baselines import (BASELINES, RidgeBaseline, context_mean, copy_last, linear_extrapolation,
                                select_ridge_alpha)

S2 = np.sqrt(2.0)
S5 = np.sqrt(5.0)


def _ctx(*chunks):
    """One window (1, L, D) from its chunks c_0..c_last."""
    return np.array([chunks], dtype=np.float32)


def test_copy_last_takes_the_last_chunk_and_normalises():
    ctx = _ctx([1, 0, 0], [0, 0, 2], [0, 3, 0])
    np.testing.assert_allclose(copy_last(ctx), [[0, 1, 0]], atol=1e-7)


def test_context_mean_by_hand():
    # mean of e1, e2 = (1/2, 1/2, 0) -> normalised (1/sqrt2, 1/sqrt2, 0); unnormalised inputs count equally
    ctx = _ctx([5, 0, 0], [0, 1, 0])
    np.testing.assert_allclose(context_mean(ctx), [[1 / S2, 1 / S2, 0]], atol=1e-6)


def test_linear_extrapolation_continues_the_last_step():
    # c_prev = e1, c_last = e2: 2 e2 - e1 = (-1, 2, 0) / sqrt5; the first chunk (e3) is ignored
    ctx = _ctx([0, 0, 1], [1, 0, 0], [0, 1, 0])
    np.testing.assert_allclose(linear_extrapolation(ctx), [[-1 / S5, 2 / S5, 0]], atol=1e-6)


def test_linear_extrapolation_needs_two_chunks():
    with pytest.raises(InputError, match="at least 2"):
        linear_extrapolation(_ctx([1, 0, 0]))


def test_baselines_reject_flat_input():
    with pytest.raises(InputError, match=r"\(N, L, D\)"):
        copy_last(np.zeros((4, 3)))


def test_table_names_the_three_stateless_baselines():
    assert set(BASELINES) == {"copy_last", "context_mean", "linear_extrapolation"}
    ctx = np.random.default_rng(0).normal(size=(6, 5, 4)).astype(np.float32)
    for fn in BASELINES.values():
        out = fn(ctx)
        assert out.shape == (6, 4) and out.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)


def test_ridge_one_dimensional_by_hand():
    # x = 0,1,2 and y = 1,3,5. Centred: x = -1,0,1 (sum x^2 = 2), y = -2,0,2 (sum xy = 4).
    # w = 4 / (2 + alpha) = 1 for alpha = 2; bias = mean y - w mean x = 3 - 1 = 2.
    ctx = np.array([[[0.0]], [[1.0]], [[2.0]]])
    tgt = np.array([[1.0], [3.0], [5.0]])
    r = RidgeBaseline().fit(ctx, tgt, alpha=2.0)
    assert r.form == "primal"
    np.testing.assert_allclose(r.weights, [[1.0]], atol=1e-6)
    np.testing.assert_allclose(r.bias, [2.0], atol=1e-6)
    np.testing.assert_allclose(r.predict_raw(np.array([[[4.0]]])), [[6.0]], atol=1e-5)


def test_ridge_recovers_a_planted_linear_map():
    rng = np.random.default_rng(1)
    ctx = rng.normal(size=(200, 2, 3))
    w_true = rng.normal(size=(6, 3))
    b_true = np.array([0.5, -1.0, 2.0])
    tgt = ctx.reshape(200, 6) @ w_true + b_true
    r = RidgeBaseline().fit(ctx, tgt, alpha=1e-8)
    np.testing.assert_allclose(r.weights, w_true, atol=1e-4)
    np.testing.assert_allclose(r.bias, b_true, atol=1e-4)


def test_ridge_dual_equals_primal():
    # N = 3 < P = L*D = 4, so the dual form is used; compare with the primal formula by hand.
    rng = np.random.default_rng(2)
    ctx = rng.normal(size=(3, 2, 2))
    tgt = rng.normal(size=(3, 2))
    r = RidgeBaseline().fit(ctx, tgt, alpha=0.7)
    assert r.form == "dual"
    x = ctx.reshape(3, 4)
    xc, yc = x - x.mean(0), tgt - tgt.mean(0)
    w = np.linalg.solve(xc.T @ xc + 0.7 * np.eye(4), xc.T @ yc)
    np.testing.assert_allclose(r.weights, w, atol=1e-5)
    np.testing.assert_allclose(r.bias, tgt.mean(0) - x.mean(0) @ w, atol=1e-5)


def test_ridge_flattening_keeps_chunk_order():
    # The target is exactly the last chunk: the weight block of the last position must be I.
    rng = np.random.default_rng(3)
    ctx = rng.normal(size=(500, 3, 2))
    r = RidgeBaseline().fit(ctx, ctx[:, -1, :], alpha=1e-6)
    np.testing.assert_allclose(r.weights[4:6], np.eye(2), atol=1e-4)
    np.testing.assert_allclose(r.weights[0:4], 0.0, atol=1e-4)


def test_ridge_loads_into_torch_linear():
    rng = np.random.default_rng(4)
    ctx = rng.normal(size=(40, 5, 3)).astype(np.float32)
    r = RidgeBaseline().fit(ctx, rng.normal(size=(40, 3)), alpha=1.0)
    lin = torch.nn.Linear(15, 3)
    lin.load_state_dict({k: torch.from_numpy(v) for k, v in r.linear_state().items()})
    out = lin(torch.from_numpy(ctx).flatten(1)).detach().numpy()
    np.testing.assert_allclose(out, r.predict_raw(ctx), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(r.predict(ctx), axis=1), 1.0, atol=1e-6)


def test_ridge_rejects_bad_input():
    ctx = np.zeros((4, 2, 3))
    with pytest.raises(InputError, match="targets"):
        RidgeBaseline().fit(ctx, np.zeros((4, 2)))
    with pytest.raises(InputError, match="alpha"):
        RidgeBaseline().fit(ctx, np.zeros((4, 3)), alpha=0.0)
    r = RidgeBaseline().fit(ctx, np.zeros((4, 3)))
    with pytest.raises(InputError, match="as fitted"):
        r.predict(np.zeros((1, 5, 3)))


def test_select_ridge_alpha_scores_are_held_out_fits():
    # two articles: one is held out; each score is the mean cosine of a fit on the other one
    rng = np.random.default_rng(5)
    ctx, tgt = rng.normal(size=(40, 2, 3)), rng.normal(size=(40, 3))
    groups = np.repeat([0, 1], 20)
    best, scores = select_ridge_alpha(ctx, tgt, groups, alphas=(0.5, 5.0), seed=0)
    options = []
    for held in (0, 1):
        fit_on, test_on = groups != held, groups == held
        options.append({a: float(np.mean(np.sum(RidgeBaseline().fit(ctx[fit_on], tgt[fit_on], a).predict(ctx[test_on])
                                                 * tgt[test_on] / np.linalg.norm(tgt[test_on], axis=1, keepdims=True), axis=1)))
                        for a in (0.5, 5.0)})
    assert any(all(scores[a] == pytest.approx(o[a], abs=1e-5) for a in o) for o in options)
    assert scores[best] == max(scores.values())


def test_select_ridge_alpha_prefers_little_penalty_for_a_linear_target_and_much_for_noise():
    rng = np.random.default_rng(6)
    ctx = rng.normal(size=(300, 2, 4))
    groups = np.arange(300) // 10
    linear = ctx.reshape(300, 8) @ rng.normal(size=(8, 4))
    assert select_ridge_alpha(ctx, linear, groups, alphas=(0.01, 100.0, 10000.0))[0] == 0.01
    # targets unrelated to the context, around one mean direction: shrinking to the mean wins
    noise = np.array([3.0, 0, 0, 0]) + rng.normal(size=(300, 4))
    assert select_ridge_alpha(ctx, noise, groups, alphas=(0.01, 100.0, 10000.0))[0] == 10000.0


def test_select_ridge_alpha_rejects_bad_input():
    ctx, tgt = np.zeros((4, 2, 3)), np.zeros((4, 3))
    with pytest.raises(InputError, match="alphas > 0"):
        select_ridge_alpha(ctx, tgt, np.array([0, 0, 1, 1]), alphas=(1.0, "x"))
    with pytest.raises(InputError, match="at least 2 articles"):
        select_ridge_alpha(ctx, tgt, np.zeros(4))
