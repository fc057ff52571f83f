"""Original-format `.pt` checkpoints import without unpickling code and predict as the original.

The modules below re-state the original architectures' layout (app/lvm/models.py of
lnsp-phase-4: module names, shapes, forward) independently of lvm_core/models/networks.py, so the test
checks that an original file, not our own, round-trips."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lvm_core.errors import InputError
from lvm_core.legacy.checkpoint import import_legacy_checkpoint, read_legacy_checkpoint
from lvm_core.models.networks import ARCHITECTURES
from lvm_core.training.checkpoint import load_model

D = 12


class OrigTransformer(nn.Module):
    def __init__(self, input_dim=D, d_model=16, nhead=4, num_layers=2, dropout=0.1):
        super().__init__()
        self.input_proj = nn.Linear(input_dim, d_model)
        self.pos_encoder = nn.Module()
        pe = torch.zeros(100, d_model)
        pos = torch.arange(100, dtype=torch.float).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
        self.pos_encoder.register_buffer("pe", pe.unsqueeze(0))
        layer = nn.TransformerDecoderLayer(d_model, nhead, d_model * 4, dropout, batch_first=True)
        self.transformer_decoder = nn.TransformerDecoder(layer, num_layers=num_layers)
        self.head = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU(), nn.LayerNorm(d_model),
                                  nn.Linear(d_model, input_dim))

    def forward(self, x):
        x = self.input_proj(x) + self.pos_encoder.pe[:, :x.size(1)]
        mask = nn.Transformer.generate_square_subsequent_mask(x.size(1))
        x = self.transformer_decoder(tgt=x, memory=x, tgt_mask=mask, memory_mask=mask)
        return F.normalize(self.head(x[:, -1]), dim=-1)


class OrigLSTM(nn.Module):
    def __init__(self, input_dim=D, hidden_dim=10, num_layers=2, dropout=0.2):
        super().__init__()
        self.lstm = nn.LSTM(input_dim, hidden_dim, num_layers, dropout=dropout, batch_first=True)
        self.output_proj = nn.Linear(hidden_dim, input_dim)

    def forward(self, x):
        return F.normalize(self.output_proj(self.lstm(x)[0][:, -1]), dim=-1)


class OrigGRUBlock(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.gru, self.norm = nn.GRU(d, d, batch_first=True), nn.LayerNorm(d)

    def forward(self, x):
        return self.norm(x + self.gru(x)[0])


class OrigGRU(nn.Module):
    def __init__(self, input_dim=D, d_model=8, num_layers=3):
        super().__init__()
        self.input_proj = nn.Linear(input_dim, d_model)
        self.blocks = nn.ModuleList([OrigGRUBlock(d_model) for _ in range(num_layers)])
        self.output_proj = nn.Linear(d_model, input_dim)

    def forward(self, x):
        x = self.input_proj(x)
        for b in self.blocks:
            x = b(x)
        return F.normalize(self.output_proj(x[:, -1]), dim=-1)


class OrigAMN(nn.Module):
    def __init__(self, input_dim=D, d_model=6, hidden_dim=10):
        super().__init__()
        self.context_encoder, self.query_encoder = nn.Linear(input_dim, d_model), nn.Linear(input_dim, d_model)
        self.scale = math.sqrt(d_model)
        self.residual_net = nn.Sequential(nn.Linear(input_dim * 2, hidden_dim), nn.GELU(), nn.LayerNorm(hidden_dim),
                                          nn.Linear(hidden_dim, hidden_dim // 2), nn.GELU(),
                                          nn.LayerNorm(hidden_dim // 2), nn.Linear(hidden_dim // 2, input_dim))

    def forward(self, x):
        base = x.mean(1)
        att = F.softmax(torch.bmm(self.query_encoder(base).unsqueeze(1),
                                  self.context_encoder(x).transpose(1, 2)) / self.scale, dim=-1)
        weighted = torch.bmm(att, x).squeeze(1)
        return F.normalize(base + self.residual_net(torch.cat([base, weighted], -1)), dim=-1)


CASES = {
    "transformer": (OrigTransformer, {"input_dim": D, "d_model": 16, "nhead": 4, "num_layers": 2, "dropout": 0.1}),
    "lstm": (OrigLSTM, {"input_dim": D, "hidden_dim": 10, "num_layers": 2, "dropout": 0.2}),
    "gru": (OrigGRU, {"input_dim": D, "d_model": 8, "num_layers": 3}),
    "amn": (OrigAMN, {"input_dim": D, "d_model": 6, "hidden_dim": 10}),
}


def _save_original(path, model_type, model, config, **extra):
    torch.save({
        "epoch": 3, "model_type": model_type, "model_state_dict": model.state_dict(),
        "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 5e-4, "params": [0, 1]}]},
        "val_loss": np.float64(0.0012), "val_cosine": np.float32(0.5864), "model_config": config,
        "args": {"lr": np.float64(5e-4), "batch_size": np.int64(64), "tau": np.float32(0.07),
                 "use_pos": np.bool_(False), "data": "artifacts/lvm/train.npz"},
        **extra,
    }, path)


@pytest.mark.parametrize("model_type", sorted(CASES))
def test_original_checkpoint_imports_and_predicts_the_same(tmp_path, model_type):
    torch.manual_seed(0)
    cls, config = CASES[model_type]
    orig = cls(**{k: v for k, v in config.items()}).eval()
    src = tmp_path / "best_model.pt"
    _save_original(src, model_type, orig, config)
    out = import_legacy_checkpoint(src, tmp_path / "imported")
    assert out.name == "imported.safetensors"
    model = load_model(out, lambda arch: ARCHITECTURES[arch])
    x = torch.randn(7, 5, D)
    with torch.no_grad():
        assert torch.allclose(model(x), orig(x), atol=1e-6)
    meta = model.checkpoint_meta
    assert meta["imported_from"]["args"]["batch_size"] == 64 and meta["imported_from"]["val_cosine"] == pytest.approx(0.5864)


def test_sizes_come_from_the_weights_not_the_config(tmp_path):
    """The original ignored model_config; a config that lies about sizes must not break import."""
    torch.manual_seed(1)
    orig = OrigTransformer(num_layers=3).eval()
    src = tmp_path / "m.pt"
    _save_original(src, "transformer", orig, {"d_model": 512, "num_layers": 4, "nhead": 4})
    model = load_model(import_legacy_checkpoint(src, tmp_path / "m"), lambda a: ARCHITECTURES[a])
    x = torch.randn(3, 5, D)
    with torch.no_grad():
        assert torch.allclose(model(x), orig(x), atol=1e-6)


_ran = []


def _mark_ran(*_args):
    _ran.append(True)
    return {}


class Payload:
    def __reduce__(self):
        return (_mark_ran, ("pwned",))


def test_a_checkpoint_with_other_objects_is_refused_without_running_them(tmp_path):
    src = tmp_path / "evil.pt"
    _save_original(src, "amn", OrigAMN(), CASES["amn"][1], payload=Payload())
    with pytest.raises(InputError, match="refused") as err:
        read_legacy_checkpoint(src)
    assert "_mark_ran" in str(err.value) and _ran == []


def test_a_pickled_model_object_is_refused(tmp_path):
    src = tmp_path / "whole.pt"
    torch.save(OrigAMN(), src)
    with pytest.raises(InputError):
        read_legacy_checkpoint(src)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable"):
        read_legacy_checkpoint(tmp_path / "junk.pt")


def test_unknown_model_type_is_one_clear_error(tmp_path):
    src = tmp_path / "m.pt"
    _save_original(src, "mamba_s", OrigAMN(), {})
    with pytest.raises(InputError, match="mamba_s"):
        import_legacy_checkpoint(src, tmp_path / "out")
    assert not (tmp_path / "out.safetensors").exists()


def test_data_import_checkpoint_command(tmp_path, capsys):
    from workbench.cli import main

    src = tmp_path / "best_model.pt"
    _save_original(src, "lstm", OrigLSTM().eval(), CASES["lstm"][1])
    out = tmp_path / "new.safetensors"
    assert main(["data", "import-checkpoint", str(src), "--out", str(out)]) == 0
    assert load_model(out, lambda a: ARCHITECTURES[a]).checkpoint_meta["arch"] == "lstm"
    assert main(["data", "import-checkpoint", str(src), "--out", str(out)]) == 2  # no silent overwrite
    assert "already exists" in capsys.readouterr().err
