"""The strategy library (plugins/strategies.py) and the share controller (lvm_core/training/weight_control.py).

Hand-computed cases use 2-D unit vectors at known angles, so every cosine is cos(angle difference).
Store layout of the main case: article 0 = rows 0..5, article 1 = rows 6..8 (the end of the store).
"""

from __future__ import annotations

import math

import pytest
import torch

from lvm_core.errors import InputError, InputErrors
from lvm_core.models.networks import SimpleMLP
from lvm_core.params import resolve_params
from lvm_core.training.weight_control import ShareController, controller_from_spec
from lvm_plugins.strategies import (AdaptiveDirectional, AntiCopy, EnergyScore, FutureRanking, NoisyHead, Rollout,
                                    VarianceGuard, future_chunks)
from tests._strategies_helpers import Fixed, FixedSamples, Rotate, make_batch, unit

torch.set_num_threads(1)

ANGLES = [-0.4, 0.0, 0.3, 0.6, 1.0, 1.3, 2.0, 2.2, 2.4]
LENGTHS = (6, 3)


def angle_batch(target_rows, context_len=2, **kw):
    return make_batch([unit(a) for a in ANGLES], LENGTHS, target_rows, context_len, **kw)


def approx(x, **kw):
    return pytest.approx(x, rel=1e-9, abs=1e-12, **kw)


# ---- future chunks: the indexing everything multi-step relies on ----------------------------------------

def test_future_chunks_rows_and_mask():
    # targets: row 2 (all of +1..+3 inside), row 5 (last of article 0), row 8 (last row of the store)
    b = angle_batch([2, 5, 8])
    truth, inside = future_chunks(b, 3, "test")
    assert inside.tolist() == [[True, True, True], [True, False, False], [True, False, False]]
    for h, row in enumerate([2, 3, 4]):
        assert truth[0, h].tolist() == approx(unit(ANGLES[row]))
    assert truth[1, 0].tolist() == approx(unit(ANGLES[5]))  # the target itself at +1


def test_multi_step_strategies_need_a_store():
    b = angle_batch([2, 5], with_store=False)
    with pytest.raises(InputError, match="loss 'rollout'.*article store"):
        Rollout(horizon=3)(b, Rotate(0.25))
    assert "rollout" in Rollout(horizon=1)(b, Rotate(0.25))  # one step needs nothing beyond the batch


# ---- rollout ----------------------------------------------------------------------------------------------

def test_rollout_hand_computed_with_mask_and_flatness():
    # Rotate(0.25) rolled out from c_last predicts angle(c_last) + 0.25 h.
    # row 2: c_last 0.0 -> 0.25, 0.5, 0.75 vs truth 0.3, 0.6, 1.0
    # row 5: c_last 1.0 -> 1.25 vs truth 1.3; steps 2, 3 leave article 0 (rows 6, 7 are article 1)
    b = angle_batch([2, 5])
    terms = Rollout(horizon=3, flat_weight=10.0)(b, Rotate(0.25))
    step1 = 1 - math.cos(0.05)  # both samples
    step2 = 1 - math.cos(0.1)   # row 2 only
    step3 = 1 - math.cos(0.25)  # row 2 only
    assert terms["rollout"].item() == approx((step1 + step2 + step3) / 3)
    # consecutive predictions are 0.25 rad apart: cos 0.25 = 0.9689 > 0.95
    assert terms["flat"].item() == approx(10.0 * (math.cos(0.25) - 0.95))
    assert terms["stat/cos_h3"].item() == approx(math.cos(0.25))
    assert terms["stat/cos_h1"].item() == approx(math.cos(0.05))


def test_rollout_step_weights_and_mse():
    b = angle_batch([2])
    t = Rollout(horizon=3, step_weights=[1.0, 0.0, 3.0], distance="mse")(b, Rotate(0.25))
    # mse of unit vectors = (2 - 2 cos) / D with D = 2
    want = (1 * (1 - math.cos(0.05)) + 3 * (1 - math.cos(0.25))) / 4
    assert t["rollout"].item() == approx(want)
    assert "flat" not in t


def test_rollout_gradient_goes_through_the_fed_back_predictions():
    # Only step 3 scored: L = 1 - cos(3 theta - 1.0) from c_last at 0, so dL/dtheta = 3 sin(3 theta - 1.0).
    # A rollout that detached its fed-back predictions (or ran them under no_grad) gives 1x or 0x.
    model = Rotate(0.25)
    Rollout(horizon=3, step_weights=[0.0, 0.0, 1.0])(angle_batch([2]), model)["rollout"].backward()
    assert model.theta.grad.item() == approx(3 * math.sin(3 * 0.25 - 1.0))


def _mlp_grads(vectors, target_row, horizon):
    torch.manual_seed(0)
    model = SimpleMLP(4, 2, hidden_dim=8, dropout=0.0).double()
    b = make_batch(vectors, (10,), [target_row], 2)
    Rollout(horizon=horizon)(b, model)["rollout"].backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def test_rollout_gradient_reaches_step_three():
    g = torch.Generator().manual_seed(1)
    vectors = torch.nn.functional.normalize(torch.randn(10, 4, generator=g, dtype=torch.float64), dim=1)
    moved = vectors.clone()
    moved[5 + 2] = torch.nn.functional.normalize(torch.randn(4, generator=g, dtype=torch.float64), dim=0)
    # target row 5: step 3 is scored against row 7; changing only row 7 must change the gradient ...
    assert not torch.allclose(_mlp_grads(vectors.tolist(), 5, 3), _mlp_grads(moved.tolist(), 5, 3))
    # ... and must not when the rollout stops at step 2 (so the check above can fail)
    assert torch.equal(_mlp_grads(vectors.tolist(), 5, 2), _mlp_grads(moved.tolist(), 5, 2))


# ---- directional terms -----------------------------------------------------------------------------------

def test_adaptive_directional_hand_computed_uses_c_last():
    # sample 0: c_last (1,0), y (0.6,0.8): cos(c_last, y) = 0.6 = threshold -> weight 1 + 0.5
    #           pred (0.8,0.6): cos(pred, y) = 0.96, cos(pred, c_last) = 0.8, gap 0.16
    # sample 1: c_last (0,1), y (1,0): cos 0 -> weight 1 + sigmoid(-12); pred (0.6,0.8): gap 0.6 - 0.8 = -0.2
    # ctx[-2] is set to the target itself: the original's wrong "previous" frame would give other values
    b = make_batch([[0.6, 0.8], [1.0, 0.0], [0.6, 0.8], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], (3, 3), [2, 5], 2)
    terms = AdaptiveDirectional(margin=0.2)(b, Fixed([[0.8, 0.6], [0.6, 0.8]]))
    w1 = 1 + 1 / (1 + math.exp(12))
    assert terms["adaptive_directional"].item() == approx((1.5 * (0.2 - 0.16) + w1 * (0.2 + 0.2)) / 2)
    assert terms["stat/margin"].item() == approx((0.16 - 0.2) / 2)
    assert terms["stat/weight"].item() == approx((1.5 + w1) / 2)


def test_adaptive_directional_gradient_is_weighted_per_sample():
    # d/dpred of w * ReLU(m - cos(pred, y) + cos(pred, c_last)) for unit pred: w * (c_last - y)
    # projected off pred, divided by B. Sample 0 (weight 1.5) of the case above:
    b = make_batch([[0.6, 0.8], [1.0, 0.0], [0.6, 0.8], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], (3, 3), [2, 5], 2)
    model = Fixed([[0.8, 0.6], [0.6, 0.8]])
    AdaptiveDirectional(margin=0.2)(b, model)["adaptive_directional"].backward()
    p, y, c = (torch.tensor(v, dtype=torch.float64) for v in ([0.8, 0.6], [0.6, 0.8], [1.0, 0.0]))
    d = c - y
    want = 1.5 * (d - (d @ p) * p) / 2
    assert model.preds.grad[0].tolist() == approx(want.tolist())


def test_anti_copy_hand_computed_over_every_frame():
    # pred (1,0), y (0.6,0.8): cos 0.6; frames (1,0) -> cos 1, gap -0.4; (0,1) -> cos 0, gap 0.6
    b = make_batch([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], (3,), [2], 2)
    model = Fixed([[1.0, 0.0]])
    terms = AntiCopy(margin=0.02)(b, model)
    assert terms["anti_copy"].item() == approx((0.42 + 0.0) / 2)
    assert terms["stat/active"].item() == approx(0.5)
    terms["anti_copy"].backward()
    # only the frame (1,0) is active: d/dpred = (c - y) / 2 projected off pred = (0.4, -0.8)/2 -> (0, -0.4)
    assert model.preds.grad[0].tolist() == approx([0.0, -0.4])


# ---- future ranking -----------------------------------------------------------------------------------------

def test_future_ranking_hand_computed():
    # as in the rollout case: row 2 predicts 0.25, 0.5, 0.75 against 0.3, 0.6, 1.0; row 5 has only +1
    b = angle_batch([2, 5])
    t = FutureRanking(horizons=3, margin=0.2)(b, Rotate(0.25))
    fit = ((1 - math.cos(0.05)) + (1 - math.cos(0.1)) + (1 - math.cos(0.25))) / 3
    assert t["fit"].item() == approx(fit)
    gap12 = math.cos(0.05) - math.cos(0.25 - 0.6)
    gap13 = math.cos(0.05) - math.cos(0.25 - 1.0)
    gap23 = math.cos(0.1) - math.cos(0.5 - 1.0)
    want = sum(max(0.0, 0.2 - g) for g in (gap12, gap13, gap23)) / 3  # row 5 has no pair inside its article
    assert want > 0
    assert t["rank"].item() == approx(want)
    assert t["stat/rank_gap"].item() == approx(gap12)


def test_future_ranking_gradient_reaches_later_horizons():
    g = torch.Generator().manual_seed(2)
    vectors = torch.nn.functional.normalize(torch.randn(10, 4, generator=g, dtype=torch.float64), dim=1)
    moved = vectors.clone()
    moved[7] = -vectors[6]  # +3 of target row 5: now far from +2, so the (2, 3) and (1, 3) pairs change

    def grads(vs):
        torch.manual_seed(0)
        model = SimpleMLP(4, 2, hidden_dim=8, dropout=0.0).double()
        t = FutureRanking(horizons=3, margin=2.0, fit_weight=0.0)(make_batch(vs.tolist(), (10,), [5], 2), model)
        assert "fit" not in t
        t["rank"].backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    first = grads(vectors)
    assert first.abs().sum() > 0
    assert not torch.allclose(first, grads(moved))


# ---- variance guard ---------------------------------------------------------------------------------------------

def test_variance_guard_hand_computed():
    b = make_batch([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], (1, 2), [0, 2], 0)
    # targets (1,0), (0,1): per-dim std 0.5. Spread predictions (0.8,0.6), (0.6,0.8): per-dim std 0.1
    model = Fixed([[0.8, 0.6], [0.6, 0.8]])
    t = VarianceGuard(floor=0.5)(b, model)
    assert t["variance_guard"].item() == pytest.approx((0.25 - 0.1) / 0.5, rel=1e-9)
    assert t["stat/var_ratio"].item() == pytest.approx(0.02 / 0.5, rel=1e-9)
    assert not t["stat/var_ratio"].requires_grad
    t["variance_guard"].backward()
    # dL/dstd_d = -1/(D * 0.5) = -1; dstd_0/dp_00 = (0.8 - 0.7) / (B * 0.1) = 0.5  ->  -0.5: spread wins
    assert model.preds.grad[0, 0].item() == pytest.approx(-0.5, rel=1e-6)
    b = make_batch([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], (1, 2), [0, 2], 0)  # a batch caches its prediction
    collapsed = VarianceGuard(floor=0.5)(b, Fixed([[0.6, 0.8], [0.6, 0.8]]))
    assert collapsed["variance_guard"].item() == pytest.approx(0.5, rel=1e-4)
    assert collapsed["stat/var_ratio"].item() == 0.0
    b = make_batch([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], (1, 2), [0, 2], 0)
    same = VarianceGuard(floor=0.5)(b, Fixed([[1.0, 0.0], [0.0, 1.0]]))
    assert same["variance_guard"].item() == 0.0 and same["stat/var_ratio"].item() == pytest.approx(1.0)


# ---- energy score and the sampling head ----------------------------------------------------------------------------

def test_energy_score_hand_computed_value_and_repulsive_gradient():
    b = make_batch([[1.0, 0.0], [0.6, 0.8]], (2,), [1], 1)
    model = FixedSamples([[[1.0, 0.0], [0.0, 1.0]]])
    t = EnergyScore(samples=2, beta=1.0)(b, model)
    attract = (math.sqrt(0.8) + math.sqrt(0.4)) / 2
    assert t["stat/attract"].item() == approx(attract)
    assert t["stat/repel"].item() == approx(math.sqrt(2))
    assert t["energy_score"].item() == approx(2 * attract - math.sqrt(2))
    t["energy_score"].backward()
    # d/dx1 = (x1 - y)/|x1 - y| - (x1 - x2)/|x1 - x2|: the second part is the repulsion
    want = [0.4 / math.sqrt(0.8) - 1 / math.sqrt(2), -0.8 / math.sqrt(0.8) + 1 / math.sqrt(2)]
    assert model.samples.grad[0, 0].tolist() == pytest.approx(want, rel=1e-6)


def test_energy_score_needs_a_sampling_model_and_a_proper_beta():
    b = make_batch([[1.0, 0.0], [0.6, 0.8]], (2,), [1], 1)
    with pytest.raises(InputError, match="noisy_head"):
        EnergyScore()(b, Rotate(0.1))
    with pytest.raises(InputError, match="beta"):
        EnergyScore(beta=2.0)


def test_noisy_head_samples_and_trains_base_and_noise_net():
    torch.manual_seed(0)
    model = NoisyHead(4, 3, base="mlp", base_width=8, noise_dim=3, hidden_dim=6)
    ctx = torch.nn.functional.normalize(torch.randn(5, 3, 4), dim=-1)
    model.eval()  # the base's dropout is the only other randomness
    out = model(ctx)
    assert out.shape == (5, 4) and torch.allclose(out.norm(dim=-1), torch.ones(5))
    assert torch.equal(model(ctx), out)  # the point prediction is deterministic
    s = model.sample(ctx, 6)
    assert s.shape == (5, 6, 4) and torch.allclose(s.norm(dim=-1), torch.ones(5, 6))
    assert (s[:, 0] - s[:, 1]).abs().max() > 1e-4
    model.noise_scale = 0.0
    assert torch.allclose(model.sample(ctx, 2)[:, 1], out, atol=1e-6)
    model.noise_scale = 1.0
    model.train()
    vectors = torch.nn.functional.normalize(torch.randn(6, 4), dim=1).tolist()
    b = make_batch(vectors, (6,), [3, 4], 3)
    b.contexts, b.targets = b.contexts.float(), b.targets.float()
    EnergyScore(samples=4)(b, model)["energy_score"].backward()
    assert model.base.net[0].weight.grad.abs().sum() > 0
    assert model.noise_net[0].weight.grad.abs().sum() > 0
    with pytest.raises(InputError, match="base_layers"):
        NoisyHead(4, 3, base="mlp", base_layers=2)


# ---- registration and term conventions ------------------------------------------------------------------------------

LOSSES = ("rollout", "adaptive_directional", "anti_copy", "future_ranking", "variance_guard", "energy_score")


@pytest.fixture(scope="module")
def host():
    from workbench.plugin_host import load_plugins
    return load_plugins(entry_points=False)


@pytest.mark.parametrize("name", LOSSES)
def test_registered_with_params_and_terms_follow_the_stat_convention(host, name):
    item = host.get("loss", name)
    assert item.plugin == "builtin.strategies" and item.description and item.obj.__doc__
    values, errors = resolve_params(item.params, {}, where=f"loss.{name}", source="plan")
    assert errors == []
    strategy = item.obj(**values)
    torch.manual_seed(0)
    model = host.get("model", "noisy_head").obj(4, 2, base_width=8, noise_dim=2, hidden_dim=4).double()
    g = torch.Generator().manual_seed(3)
    vectors = torch.nn.functional.normalize(torch.randn(12, 4, generator=g, dtype=torch.float64), dim=1)
    terms = strategy(make_batch(vectors.tolist(), (6, 6), [2, 3, 5, 8, 11], 2), model)
    assert any(not k.startswith("stat/") for k in terms)
    for key, value in terms.items():
        assert value.shape == () and torch.isfinite(value)
        assert value.requires_grad == (not key.startswith("stat/")), key


def test_bad_step_weights_name_the_key():
    with pytest.raises(InputError, match="step_weights.*3 weights"):
        Rollout(horizon=3, step_weights=[1.0, 2.0])


# ---- share controller ----------------------------------------------------------------------------------------------------

def test_controller_hand_computed_weight_and_share():
    c = ShareController(0.2, smoothing=0.0, max_change=100.0)
    # w* = 0.2 * rest / (0.8 * term) = 0.2 * 4 / 0.8 = 1.0, and at w = 1 the share is 1 / (1 + 4) = 0.2
    assert c.update(term=1.0, rest=4.0) == approx(1.0)
    assert ShareController.share(1.0, 1.0, 4.0) == approx(0.2)
    c.update(term=2.0, rest=4.0)  # share measured at w = 1 before moving: 2 / 6
    assert c.last_share == approx(1 / 3)
    assert c.weight == approx(0.5)


def test_controller_caps_rate_limit_and_inactive_terms():
    assert ShareController(0.2, max_weight=0.3, smoothing=0.0).update(1.0, 4.0) == approx(0.3)
    assert ShareController(0.2, min_weight=2.0, smoothing=0.0).update(1.0, 4.0) == approx(2.0)
    slow = ShareController(0.2, weight=0.1, smoothing=0.0, max_change=2.0)
    assert [slow.update(1.0, 4.0) for _ in range(4)] == approx([0.2, 0.4, 0.8, 1.0])
    assert slow.update(0.0, 4.0) == approx(1.0)  # an inactive hinge keeps the weight
    assert slow.update(float("nan"), 4.0) == approx(1.0)


def test_controller_smoothing_and_convergence():
    c = ShareController(0.25, smoothing=0.5, max_change=100.0)
    c.update(1.0, 3.0)
    c.update(3.0, 3.0)  # averages: term 2, rest 3 -> w = 0.25 * 3 / (0.75 * 2) = 0.5
    assert c.term_avg == approx(2.0) and c.weight == approx(0.5)
    # a term that halves as its weight grows (a stand-in for training) still ends at the target share
    c = ShareController(0.25, weight=0.01, smoothing=0.8, max_change=1.2)
    for _ in range(300):
        term = 1.0 / (1.0 + c.weight)
        c.update(term, 2.0)
    assert ShareController.share(c.weight, 1.0 / (1.0 + c.weight), 2.0) == pytest.approx(0.25, abs=1e-3)


def test_controller_state_round_trip():
    a = ShareController(0.2, smoothing=0.5)
    a.update(1.0, 4.0)
    b = ShareController(0.3, smoothing=0.5)  # the configuration comes from the plan, the state from here
    b.load_state_dict(a.state_dict())
    assert b.update(2.0, 4.0) == a.update(2.0, 4.0)


def test_controller_from_plan_spec():
    c = controller_from_spec({"target_share": 0.2, "min": 1e-4, "max": 0.05}, plan_weight=0.01)
    assert (c.target_share, c.min_weight, c.max_weight, c.weight) == (0.2, 1e-4, 0.05, 0.01)
    with pytest.raises(InputError, match=r"loss\[2\]\.control\.target_share: required"):
        controller_from_spec({"max": 0.05}, where="loss[2].control")
    with pytest.raises(InputError, match=r"control\.tagret_share: unknown parameter"):
        controller_from_spec({"target_share": 0.2, "tagret_share": 0.2})
    with pytest.raises(InputError, match="0 < target_share < 1"):
        controller_from_spec({"target_share": 1.0})
    with pytest.raises(InputErrors) as many:
        controller_from_spec({"target_share": "a lot", "min": 1.0, "max": 0.5})
    assert len(many.value.errors) == 2
    with pytest.raises(InputError, match="expected a table"):
        controller_from_spec(0.2)


def test_noisy_head_rebuilds_from_its_checkpoint(host, tmp_path):
    from lvm_core.training.checkpoint import load_model, save_checkpoint
    params = {"base": "gru", "base_width": 8, "base_layers": 1, "noise_dim": 3, "hidden_dim": 5, "noise_scale": 0.5}
    torch.manual_seed(0)
    model = host.get("model", "noisy_head").obj(6, 4, **params).eval()
    path = save_checkpoint(tmp_path / "nh", model, {"arch": "noisy_head", "arch_params": params,
                                                     "input_dim": 6, "context_len": 4})
    again = load_model(path, lambda arch: host.get("model", arch).obj)
    ctx = torch.randn(3, 4, 6)
    assert torch.equal(again(ctx), model(ctx))
    torch.manual_seed(1)
    s1 = model.sample(ctx, 4)
    torch.manual_seed(1)
    assert torch.allclose(again.sample(ctx, 4), s1)


# ---- real data: the next-chunk oracle walks the article ------------------------------------------------------

def _store(which, tmp_path):
    from lvm_core.data.store import ArticleStore
    from tests.conftest import DEMO_STORE, make_tiny_store
    if which == "tiny":
        return make_tiny_store(tmp_path / "tiny.lvmstore", lengths=(9, 6, 12, 7))
    if not DEMO_STORE.exists():
        pytest.skip(f"bundled demo data not built yet ({DEMO_STORE})")
    return ArticleStore.open(DEMO_STORE)


@pytest.mark.parametrize("which", ["tiny", "demo"])
def test_rollout_of_the_next_chunk_oracle_scores_one_inside_the_article(which, tmp_path):
    import numpy as np

    from lvm_core.data.windows import make_windows
    from tests._strategies_helpers import NextChunkOracle, store_batch

    store = _store(which, tmp_path)
    H, L = 3, 5
    windows = make_windows(store, None, L)
    ends = store.offsets[1:] - 1  # last row of each article: windows ending there have no +2, +3
    rng = np.random.default_rng(0)
    picked = np.unique(np.concatenate([ends[:20], ends[:20] - 1, rng.choice(windows.target_rows, 40)]))
    picked = picked[np.isin(picked, windows.target_rows)]
    V = torch.from_numpy(np.asarray(store.vectors, dtype=np.float64))
    Vn = torch.nn.functional.normalize(V, dim=1)
    rows = torch.from_numpy(picked)[:, None] + torch.arange(-1, H)[None, :]  # c_last .. +H
    near = Vn[rows.clamp(max=len(V) - 1)] @ Vn.T  # (W, H + 1, N)
    unique = ((near > 1 - 1e-6).sum(dim=2) == 1).all(dim=1).numpy()  # no duplicate chunk to confuse the oracle
    picked = picked[unique]
    assert len(picked) >= 10

    batch = store_batch(store, picked, L)
    truth, inside = future_chunks(batch, H, "rollout")
    art = store.row_article[picked]
    want = (picked[:, None] + np.arange(H)[None, :]) < store.offsets[art + 1][:, None]
    assert inside.numpy().tolist() == want.tolist()
    assert (~inside).any() and inside[:, 2].any()  # both cases are exercised

    terms = Rollout(horizon=H)(batch, NextChunkOracle(V))
    assert terms["rollout"].item() == pytest.approx(0.0, abs=1e-9)
    for h in range(1, H + 1):
        assert terms[f"stat/cos_h{h}"].item() == pytest.approx(1.0, abs=1e-9)
    copy_last = Rollout(horizon=H)(store_batch(store, picked, L), lambda ctx: ctx[:, -1, :])
    assert copy_last["rollout"].item() > 0.01  # the check can fail: copying is not the oracle
