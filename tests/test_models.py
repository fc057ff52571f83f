"""Models and baseline models: shapes, unit rows, parameter counts, any D, original names."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lvm_core.errors import InputError
from lvm_core.models import baselines
from lvm_core.models.baselines import BASELINE_MODELS, Ridge
from lvm_core.models.networks import ARCHITECTURES, PositionalEncoding, TransformerVectorPredictor, count_parameters
from workbench.plugin_host import load_plugins

torch.set_num_threads(1)

SMALL = {
    "transformer": {"d_model": 16, "num_layers": 2, "nhead": 4, "dim_feedforward": 32},
    "lstm": {"hidden_dim": 12},
    "gru": {"d_model": 12, "num_layers": 2},
    "amn": {"d_model": 8, "hidden_dim": 16},
    "mlp": {"hidden_dim": 24},
}


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("dim", [7, 32])
def test_shapes_unit_rows_and_gradients_for_any_dim(arch, dim):
    torch.manual_seed(0)
    model = ARCHITECTURES[arch](dim, 5, **SMALL[arch])
    x = torch.randn(4, 5, dim)
    y = model(x)
    assert y.shape == (4, dim)
    assert torch.allclose(y.norm(dim=-1), torch.ones(4), atol=1e-5)
    y.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


# Hand counts for D = 768 with the original defaults (lnsp-reference.md section 4):
# transformer = input_proj 393,728 + 4 x 4,204,032 decoder layers + head 657,664.
@pytest.mark.parametrize("arch, expected", [
    ("transformer", 17_867_520),
    ("lstm", 5_120_768),
    ("gru", 7_095_552),
    ("amn", 1_510_912),
    ("mlp", 3840 * 1024 + 1024 + 1024 * 768 + 768),
])
def test_parameter_counts_match_the_original_at_768(arch, expected):
    assert count_parameters(ARCHITECTURES[arch](768, 5)) == expected


def test_transformer_sizes_are_parameters():
    small = TransformerVectorPredictor(384, 5, d_model=64, num_layers=1, nhead=4, dim_feedforward=128, dropout=0.0)
    per_layer = 2 * (3 * 64 * 64 + 3 * 64 + 64 * 64 + 64) + (64 * 128 + 128) + (128 * 64 + 64) + 3 * 128
    head = (64 * 64 + 64) + 128 + (64 * 384 + 384)
    assert count_parameters(small) == (384 * 64 + 64) + per_layer + head


def test_transformer_is_causal_and_reads_the_last_position():
    """Changing the first frame changes the output (the last position sees all), and the
    per-position states before the last never see later frames."""
    torch.manual_seed(0)
    model = TransformerVectorPredictor(8, 4, d_model=16, num_layers=2, nhead=2, dim_feedforward=16, dropout=0.0).eval()
    x = torch.randn(1, 4, 8)
    x2 = x.clone()
    x2[0, 0] += 1.0
    assert not torch.allclose(model(x), model(x2))
    # the prefix x[:, :3] alone gives the same state at position 2 as the full input does
    h_full = model.transformer_decoder(tgt=model.pos_encoder(model.input_proj(x)),
                                       memory=model.pos_encoder(model.input_proj(x)),
                                       tgt_mask=model._mask(4, x.device), memory_mask=model._mask(4, x.device))
    assert torch.allclose(model.raw(x[:, :3]), model.head(h_full[:, 2]), atol=1e-5)


def test_positional_encoding_values_by_hand():
    pe = PositionalEncoding(4, max_len=3).pe[0]
    pos = 2.0
    expected = [np.sin(pos), np.cos(pos), np.sin(pos / 100.0), np.cos(pos / 100.0)]
    assert np.allclose(pe[2].numpy(), expected, atol=1e-6)
    assert torch.equal(pe[0], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert PositionalEncoding(5, max_len=3).pe.shape == (1, 3, 5)  # odd widths work


def test_state_dict_names_mirror_the_original():
    names = set(TransformerVectorPredictor(768, 5).state_dict())
    assert {"input_proj.weight", "pos_encoder.pe", "head.0.weight", "head.2.weight", "head.3.bias",
            "transformer_decoder.layers.3.multihead_attn.in_proj_weight",
            "transformer_decoder.layers.0.linear2.weight"} <= names
    assert "causal_mask" not in names
    assert {"lstm.weight_ih_l1", "output_proj.weight"} <= set(ARCHITECTURES["lstm"](768, 5).state_dict())
    assert {"input_proj.weight", "blocks.3.gru.weight_hh_l0", "blocks.0.norm.weight", "output_proj.bias"} <= set(
        ARCHITECTURES["gru"](768, 5).state_dict())
    assert {"context_encoder.weight", "query_encoder.bias", "residual_net.0.weight", "residual_net.6.bias"} <= set(
        ARCHITECTURES["amn"](768, 5).state_dict())


def test_amn_is_the_context_mean_when_the_residual_is_zero():
    model = ARCHITECTURES["amn"](6, 3, d_model=4, hidden_dim=8)
    torch.nn.init.zeros_(model.residual_net[6].weight)
    torch.nn.init.zeros_(model.residual_net[6].bias)
    x = torch.randn(2, 3, 6)
    expected = torch.nn.functional.normalize(x.mean(dim=1), dim=-1)
    assert torch.allclose(model(x), expected, atol=1e-6)
    assert torch.allclose(model.attention(x).sum(dim=1), torch.ones(2))


def test_bad_sizes_are_input_errors():
    with pytest.raises(InputError, match="nhead"):
        TransformerVectorPredictor(8, 5, d_model=10, nhead=3)
    with pytest.raises(InputError, match="context_len"):
        ARCHITECTURES["lstm"](8, 0)
    with pytest.raises(InputError, match="context_len"):
        BASELINE_MODELS["linear_extrapolation"](8, 1)


# ---- baselines as modules agree with the numpy definitions -------------------------------

@pytest.mark.parametrize("name", ["copy_last", "context_mean", "linear_extrapolation"])
def test_baseline_modules_match_numpy_baselines(name):
    rng = np.random.default_rng(1)
    ctx = rng.normal(size=(6, 5, 9)).astype(np.float32)
    module = BASELINE_MODELS[name](9, 5)
    got = module(torch.from_numpy(ctx)).numpy()
    assert np.allclose(got, baselines.BASELINES[name](ctx), atol=1e-6)


def test_baselines_by_hand():
    c = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]]])  # unit rows: e1, e1, e2
    assert torch.allclose(BASELINE_MODELS["copy_last"](2, 3)(c), torch.tensor([[0.0, 1.0]]))
    # mean of unit rows = (2/3, 1/3) -> normalised (2, 1)/sqrt(5)
    assert torch.allclose(BASELINE_MODELS["context_mean"](2, 3)(c), torch.tensor([[2.0, 1.0]]) / 5 ** 0.5)
    # 2 * e2 - e1 = (-1, 2) -> /sqrt(5)
    assert torch.allclose(BASELINE_MODELS["linear_extrapolation"](2, 3)(c), torch.tensor([[-1.0, 2.0]]) / 5 ** 0.5)


def test_ridge_fit_on_matches_the_numpy_fit_and_recovers_a_linear_map():
    rng = np.random.default_rng(2)
    ctx = rng.normal(size=(200, 2, 3))
    true_w = rng.normal(size=(6, 3))
    tgt = ctx.reshape(200, 6) @ true_w + 0.5
    model = Ridge(3, 2, alpha=1e-6)
    assert not bool(model.fitted)
    record = model.fit_on(ctx, tgt)
    assert record["n"] == 200 and bool(model.fitted)
    assert np.allclose(model.linear.weight.detach().numpy(), true_w.T, atol=1e-4)
    assert np.allclose(model.linear.bias.detach().numpy(), 0.5, atol=1e-4)
    oracle = baselines.RidgeBaseline().fit(ctx, tgt, alpha=1e-6).predict(ctx[:5])
    assert np.allclose(model(torch.tensor(ctx[:5], dtype=torch.float32)).detach().numpy(), oracle, atol=1e-5)
    assert count_parameters(model) == 0  # nothing for an optimizer to move


def test_ridge_rejects_wrong_shapes():
    with pytest.raises(InputError, match=r"\(N, 2, 3\)"):
        Ridge(3, 2).fit_on(np.zeros((4, 5, 3)), np.zeros((4, 3)))


def test_registered_model_plugins_build_from_declared_defaults():
    host = load_plugins(entry_points=False)
    assert {"transformer", "lstm", "gru", "amn", "mlp", "copy_last", "context_mean",
            "linear_extrapolation", "ridge"} <= set(host.names("model"))
    assert [p for p in host.problems if p.plugin.endswith("models")] == []
    for name in host.names("model"):
        item = host.get("model", name)
        params = item.param_defaults()
        if name in SMALL:
            params.update(SMALL[name])
        model = item.obj(10, 5, **params)
        assert model(torch.randn(2, 5, 10)).shape == (2, 10)
    assert host.get("model", "transformer").param_defaults() == {
        "d_model": 512, "num_layers": 4, "nhead": 8, "dim_feedforward": 2048, "dropout": 0.1}


def _ridge_objective(model: Ridge, ctx: np.ndarray, tgt: np.ndarray) -> tuple[float, float]:
    raw = model.raw(torch.tensor(ctx, dtype=torch.float32)).double().numpy()
    sse = float(((raw - tgt) ** 2).sum())
    return sse, sse + model.alpha * float((model.linear.weight.double() ** 2).sum())


def test_ridge_objective_is_no_worse_than_copy_last():
    """Copy-last is one linear map (identity on the last frame, zero bias, ||W||^2 = D), so the
    ridge optimum's penalised error is at most copy-last's: SSE_copy + alpha * D."""
    rng = np.random.default_rng(3)
    walk = np.cumsum(rng.normal(size=(40, 6, 8)), axis=1)
    ctx, tgt = walk[:, :5], walk[:, 5]
    model = Ridge(8, 5, alpha=2.0)
    model.fit_on(ctx, tgt)
    _, objective = _ridge_objective(model, ctx, tgt)
    copy_sse = float(((ctx[:, -1] - tgt) ** 2).sum())
    assert objective <= copy_sse + 2.0 * 8 + 1e-6
