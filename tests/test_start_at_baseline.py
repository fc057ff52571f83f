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


class _CountingWindows:
    """Windows that remember how many rows each gather read from the store."""

    def __init__(self, windows):
        self.windows, self.gathered = windows, []

    def __len__(self):
        return len(self.windows)

    @property
    def article_pos(self):
        return self.windows.article_pos

    def batch(self, idx=None):
        ctx, tgt = self.windows.batch(idx)
        self.gathered.append(len(ctx))
        return ctx, tgt


@pytest.mark.parametrize("model_cls", [FrameWeightsModel, ResidualRidge])
def test_a_closed_form_start_reads_only_the_windows_its_fit_uses(tmp_path, model_cls):
    """A train part past the fit's cap (MAX_FIT_WINDOWS) is not read whole before the first step
    (a seed-scale part was 7.6 GB), and the start is the same as from every window in memory.
    Synthetic vectors: the case is about sizes."""
    from lvm_core.data.store import write_store
    from lvm_core.models.fitted import MAX_FIT_WINDOWS
    from lvm_core.training.loop import fit_closed_form_start

    rng = np.random.default_rng(3)
    articles, length, dim = 190, 112, 6  # 190 * 107 = 20330 windows, past the cap
    x = rng.normal(size=(articles, 1, dim)) + np.cumsum(0.3 * rng.normal(size=(articles, length, dim)), axis=1)
    store = write_store(tmp_path / "s.lvmstore", x.reshape(-1, dim), [length] * articles, list(range(articles)),
                        embedder={"name": "synthetic", "dim": dim}, corpus={"source": "synthetic"}, dtype="float32")
    windows = make_windows(store, None, 5)
    assert len(windows) > MAX_FIT_WINDOWS
    counting = _CountingWindows(windows)
    torch.manual_seed(0)
    streamed = model_cls(dim, 5)
    fit_closed_form_start(streamed, counting, seed=11)
    assert max(counting.gathered) <= MAX_FIT_WINDOWS
    torch.manual_seed(0)
    whole = model_cls(dim, 5)
    ctx, tgt = windows.batch()
    whole.fit_on(ctx, tgt, articles=windows.article_pos, seed=11)
    for (name, a), (_, b) in zip(streamed.state_dict().items(), whole.state_dict().items()):
        assert torch.equal(a, b), name
