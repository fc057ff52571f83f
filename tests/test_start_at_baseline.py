"""Models that start where the baselines end: at initialisation each equals its baseline to 1e-6
on real windows of the bundled store (lvm_core/models/start_at_baseline.py, AMN zero_residual)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lvm_core.data.store import ArticleStore
from lvm_core.data.windows import make_windows
from lvm_core.errors import InputError
from lvm_core.models.baselines import context_mean
from lvm_core.models.fitted import fit_baselines
from lvm_core.models.networks import AttentionMixtureNetwork
from lvm_core.models.start_at_baseline import FrameWeightsModel, ResidualRidge
from tests.conftest import DEMO_STORE

pytestmark = pytest.mark.skipif(not DEMO_STORE.exists(), reason="bundled data missing")


@pytest.fixture(scope="module")
def data():
    store = ArticleStore.open(DEMO_STORE)
    w = make_windows(store, None, 5)
    train = w.subset(np.arange(0, 3000))
    held = w.subset(np.arange(3000, 3600))
    ctx, tgt = train.batch()
    return ctx, tgt, train.article_pos, held.batch()[0]


def _out(model, ctx):
    with torch.no_grad():
        return model.eval()(torch.from_numpy(ctx)).numpy()


def test_frame_weights_start_at_the_frame_weights_baseline(data):
    ctx, tgt, arts, held = data
    base = fit_baselines(ctx, tgt, arts, seed=3).predictors["frame_weights"](held)
    for per_dim in (False, True):
        model = FrameWeightsModel(384, 5, per_dim=per_dim)
        model.fit_on(ctx, tgt, articles=arts, seed=3)
        assert np.abs(_out(model, held) - base).max() < 1e-6


def test_softmax_and_mean_frame_weights_start_at_the_context_mean(data):
    ctx, tgt, arts, held = data
    for mode in ("softmax", "free"):
        model = FrameWeightsModel(384, 5, mode=mode, init="mean")
        model.fit_on(ctx, tgt, articles=arts)
        assert np.abs(_out(model, held) - context_mean(held)).max() < 1e-6


def test_amn_with_a_zero_residual_starts_at_the_context_mean(data):
    _, _, _, held = data
    torch.manual_seed(0)
    model = AttentionMixtureNetwork(384, 5, d_model=16, hidden_dim=8, zero_residual=True)
    assert np.abs(_out(model, held) - context_mean(held)).max() < 1e-6
    plain = AttentionMixtureNetwork(384, 5, d_model=16, hidden_dim=8)
    assert np.abs(_out(plain, held) - context_mean(held)).max() > 0.1  # the default start is far from it
    # the zero layer still learns: its gradient is not zero
    out = model(torch.from_numpy(held[:32]))
    out.sum().backward()
    assert model.residual_net[-1].weight.grad.abs().sum() > 0


def test_residual_ridge_starts_at_the_ridge_baseline(data):
    ctx, tgt, arts, held = data
    base = fit_baselines(ctx, tgt, arts, seed=1).predictors["ridge"](held)
    model = ResidualRidge(384, 5, hidden_dim=16)
    record = model.fit_on(ctx, tgt, articles=arts, seed=1)
    assert record["alpha"] > 0
    assert np.abs(_out(model, held) - base).max() < 1e-6
    assert not any(p.requires_grad for p in model.ridge.parameters())
    assert all(p.requires_grad for p in model.residual.parameters())


def test_a_resumed_model_is_not_fitted_again(data):
    """The fitted buffer travels with the state dict: fit_on after loading does nothing."""
    ctx, tgt, arts, held = data
    model = FrameWeightsModel(384, 5)
    model.fit_on(ctx, tgt, articles=arts)
    with torch.no_grad():
        model.weights.add_(0.5)  # "training"
    again = FrameWeightsModel(384, 5)
    again.load_state_dict(model.state_dict())
    assert again.fit_on(ctx, tgt, articles=arts) == {"skipped": "already fitted (resumed)"}
    assert torch.equal(again.weights, model.weights)


def test_bad_combinations_are_one_clear_error():
    with pytest.raises(InputError, match="init"):
        FrameWeightsModel(8, 5, mode="softmax", init="fitted")
    with pytest.raises(InputError, match="mode"):
        FrameWeightsModel(8, 5, mode="sigmoid")
    with pytest.raises(InputError, match="hidden_dim"):
        ResidualRidge(8, 5, hidden_dim=0)
