"""Loss strategies against hand-computed values on tiny tensors; gradients flow; one forward."""

from __future__ import annotations

import math

import pytest
import torch

from lvm_core.errors import InputError
from lvm_core.models.networks import TransformerVectorPredictor
from lvm_core.training.batch import Batch
from lvm_plugins.losses import hard_negative_offsets
from workbench.plugin_host import load_plugins

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def host():
    return load_plugins(entry_points=False)


def _loss(host, name, **params):
    item = host.get("loss", name)
    return item.obj(**{**item.param_defaults(), **params})


class Fixed(torch.nn.Module):
    """A 'model' whose prediction is a given tensor (a parameter, so gradients can be checked)."""

    def __init__(self, pred):
        super().__init__()
        self.pred = torch.nn.Parameter(torch.tensor(pred, dtype=torch.float32))
        self.calls = 0

    def forward(self, contexts):
        self.calls += 1
        return self.pred * 1.0


def _batch(contexts, targets, **kw):
    c = torch.tensor(contexts, dtype=torch.float32)
    t = torch.tensor(targets, dtype=torch.float32)
    n = t.shape[0]
    return Batch(c, t, article=torch.zeros(n, dtype=torch.long), target_rows=torch.arange(n), **kw)


E1, E2 = [1.0, 0.0], [0.0, 1.0]


def test_mse_and_cosine_by_hand(host):
    model = Fixed([E1, E2])
    batch = _batch([[E1, E1], [E1, E1]], [[0.6, 0.8], E2])
    # row 0 differs by (0.4, -0.8): squares 0.16 + 0.64 = 0.8; row 1 equal; mean over 4 elements
    assert _loss(host, "mse")(batch, model)["mse"].item() == pytest.approx(0.2)
    # 1 - cos: row 0 1 - 0.6, row 1 0 -> mean 0.2
    assert _loss(host, "cosine")(batch, model)["cosine"].item() == pytest.approx(0.2)
    assert model.calls == 1  # the prediction is shared by both terms


def test_infonce_in_batch_by_hand(host):
    model = Fixed([E1, E2])
    batch = _batch([[E1], [E1]], [E1, [0.6, 0.8]])
    # logits (T = 1): row 0 [1, 0.6] -> label 0; row 1 [0, 0.8] -> label 1
    expected = (math.log(1 + math.exp(-0.4)) + math.log(1 + math.exp(-0.8))) / 2
    terms = _loss(host, "infonce", temperature=1.0)(batch, model)
    assert terms["infonce"].item() == pytest.approx(expected, abs=1e-6)
    assert terms["stat/top1"].item() == 1.0  # both positives have the top logit
    # temperature 0.5 doubles every logit
    expected_t = (math.log(1 + math.exp(-0.8)) + math.log(1 + math.exp(-1.6))) / 2
    assert _loss(host, "infonce", temperature=0.5)(batch, model)["infonce"].item() == pytest.approx(expected_t, abs=1e-6)


def test_infonce_symmetric_by_hand(host):
    model = Fixed([E1, E2])
    batch = _batch([[E1], [E1]], [E1, [0.6, 0.8]])
    forward = (math.log(1 + math.exp(-0.4)) + math.log(1 + math.exp(-0.8))) / 2
    # target -> prediction: keys @ query.T = [[1, 0], [0.6, 0.8]]; row 0 label 0, row 1 label 1
    backward = (math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(-0.2))) / 2
    got = _loss(host, "infonce", temperature=1.0, symmetric=True)(batch, model)["infonce"].item()
    assert got == pytest.approx((forward + backward) / 2, abs=1e-6)


def test_infonce_context_negatives_by_hand(host):
    model = Fixed([E1])
    batch = _batch([[E2, [0.8, 0.6]]], [[0.6, 0.8]])
    # logits: positive 0.6; context frames 0.0 and 0.8 (T = 1)
    logits = [0.6, 0.0, 0.8]
    expected = -0.6 + math.log(sum(math.exp(v) for v in logits))
    terms = _loss(host, "infonce", temperature=1.0, context_negatives=True)(batch, model)
    assert terms["infonce"].item() == pytest.approx(expected, abs=1e-6)
    assert terms["stat/top1"].item() == 0.0  # the last context frame outscores the target


def test_hard_negative_offsets_lie_outside_the_window():
    assert hard_negative_offsets(1, 5) == [1]
    assert hard_negative_offsets(4, 5) == [1, -6, 2, -7]
    assert hard_negative_offsets(3, 2) == [1, -3, 2]


def test_infonce_same_article_hard_negatives_by_hand(host):
    """Store of 6 rows: article 0 = rows 0..3, article 1 = rows 4..5. One window, L = 2,
    target row 2 (context rows 0, 1). Hard negatives with k = 2: row 3 (+1, same article) and
    row -1 (-(L+1), outside the store -> masked)."""
    vectors = torch.tensor([E1, E1, [0.6, 0.8], E2, [0.8, 0.6], E1])
    row_art = torch.tensor([0, 0, 0, 0, 1, 1])

    def gather(rows):
        assert rows.min() >= 0 and rows.max() < 6  # never asked for rows outside the store
        return vectors[rows]

    def row_article(rows):
        inside = (rows >= 0) & (rows < 6)
        return torch.where(inside, row_art[rows.clamp(0, 5)], torch.full_like(rows, -1))

    model = Fixed([E1])
    batch = Batch(vectors[[0, 1]][None], vectors[[2]], article=torch.tensor([0]), target_rows=torch.tensor([2]),
                  gather=gather, row_article=row_article)
    # logits: positive cos(e1, (.6,.8)) = 0.6; hard negative row 3 = e2 -> 0.0; row -1 masked
    expected = -0.6 + math.log(math.exp(0.6) + math.exp(0.0))
    got = _loss(host, "infonce", temperature=1.0, hard_negatives=2)(batch, model)["infonce"].item()
    assert got == pytest.approx(expected, abs=1e-6)
    # a window at the end of article 0 (target row 3): +1 is row 4, another article -> masked;
    # -(L+1) = row 0 -> e1, cos 1.0
    batch2 = Batch(vectors[[1, 2]][None], vectors[[3]], article=torch.tensor([0]), target_rows=torch.tensor([3]),
                   gather=gather, row_article=row_article)
    expected2 = -0.0 + math.log(math.exp(0.0) + math.exp(1.0))
    got2 = _loss(host, "infonce", temperature=1.0, hard_negatives=2)(batch2, model)["infonce"].item()
    assert got2 == pytest.approx(expected2, abs=1e-6)


def test_infonce_hard_negatives_need_gather(host):
    batch = _batch([[E1]], [E1])
    with pytest.raises(RuntimeError, match="gather"):
        _loss(host, "infonce", hard_negatives=1)(batch, Fixed([E1]))


# pred e1, target (.6, .8): cos 0.6.  contexts: c0 = e1 (cos 1.0), c_last = (.8, .6) (cos 0.8)
DIR_CTX, DIR_TGT = [[E1, [0.8, 0.6]]], [[0.6, 0.8]]


@pytest.mark.parametrize("params, expected", [
    ({"margin": 0.05}, 0.25),  # gap vs c_last = 0.6 - 0.8 = -0.2 -> relu(0.05 + 0.2)
    ({"margin": 0.0}, 0.2),
    ({"margin": -0.3}, 0.0),  # the target leads by more than needed -> no penalty
    ({"margin": 0.05, "form": "softplus", "gamma": 4.0}, math.log(1 + math.e) / 4),  # softplus(4 * 0.25) / 4
    ({"margin": 0.05, "frames": "all"}, (0.45 + 0.25) / 2),  # gaps -0.4 (c0) and -0.2 (c_last)
    ({"margin": 0.05, "frames": "nearest"}, 0.45),  # the nearest frame is c0 (cos 1.0)
])
def test_directional_margin_by_hand(host, params, expected):
    got = _loss(host, "directional_margin", **params)(_batch(DIR_CTX, DIR_TGT), Fixed([E1]))
    assert got["directional_margin"].item() == pytest.approx(expected, abs=1e-6)
    frames = params.get("frames", "last")
    gap = {"last": -0.2, "all": (-0.4 - 0.2) / 2, "nearest": -0.4}[frames]
    assert got["stat/margin"].item() == pytest.approx(gap, abs=1e-6)


def test_directional_margin_uses_the_last_frame_not_the_one_before():
    """The original's bug compared with ctx[-2]; swapping the frames must change the value."""
    h = load_plugins(entry_points=False)
    swapped = _batch([[[0.8, 0.6], E1]], DIR_TGT)  # now c_last = e1 (cos 1.0)
    got = _loss(h, "directional_margin", margin=0.05)(swapped, Fixed([E1]))["directional_margin"].item()
    assert got == pytest.approx(0.45)


def test_bad_options_are_input_errors(host):
    with pytest.raises(InputError, match="form"):
        host.get("loss", "directional_margin").obj(form="square")
    with pytest.raises(InputError, match="temperature"):
        host.get("loss", "infonce").obj(temperature=0.0)


@pytest.mark.parametrize("name, params", [
    ("mse", {}), ("cosine", {}), ("infonce", {"hard_negatives": 2, "context_negatives": True, "symmetric": True}),
    ("directional_margin", {"margin": 0.5, "form": "softplus"}), ("directional_margin", {"margin": 0.5, "frames": "all"}),
])
def test_gradients_reach_every_model_parameter(host, name, params):
    torch.manual_seed(0)
    model = TransformerVectorPredictor(6, 3, d_model=8, num_layers=1, nhead=2, dim_feedforward=8, dropout=0.0)
    vectors = torch.nn.functional.normalize(torch.randn(12, 6), dim=-1)
    target_rows = torch.tensor([3, 4, 5, 9])
    ctx_rows = target_rows[:, None] + torch.arange(-3, 0)[None, :]
    art = torch.tensor([0] * 7 + [1] * 5)
    batch = Batch(vectors[ctx_rows], vectors[target_rows], article=art[target_rows], target_rows=target_rows,
                  gather=lambda r: vectors[r],
                  row_article=lambda r: torch.where((r >= 0) & (r < 12), art[r.clamp(0, 11)], -1))
    terms = _loss(host, name, **params)(batch, model)
    assert [k for k in terms if not k.startswith("stat/")] == [name]
    assert terms[name].dim() == 0 and torch.isfinite(terms[name])
    assert all(not v.requires_grad for k, v in terms.items() if k.startswith("stat/"))
    terms[name].backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
