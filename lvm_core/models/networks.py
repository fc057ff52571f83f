"""The latent vector models: contexts (B, L, D) -> next-chunk predictions (B, D) with unit rows.

Module and parameter names mirror the original `app/lvm/models.py` of lnsp-phase-4
(`input_proj`, `pos_encoder.pe`, `transformer_decoder.layers.N`, `head`, `lstm`, `output_proj`,
`blocks.N.gru`, `context_encoder`, `query_encoder`, `residual_net`), so an original `.pt`
state dict loads into our models with `load_state_dict` when the sizes match. Every size is a
parameter and D comes from the data; the defaults are the original's.

Builders take ``(dim, context_len, **params)``: that is the signature the `register_models`
hook expects, and the architecture name plus params in a checkpoint rebuild the model.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError


def _check(arch: str, ok: bool, where: str, message: str) -> None:
    if not ok:
        raise InputError(f"[model] {arch}", message, where)


def _check_sizes(arch: str, dim: int, context_len: int, **sizes: int) -> None:
    _check(arch, dim >= 1, "dim", f"expected an input dimension >= 1, got {dim}")
    _check(arch, context_len >= 1, "context_len", f"expected >= 1, got {context_len}")
    for name, value in sizes.items():
        _check(arch, value >= 1, name, f"expected >= 1, got {value}")


class LatentVectorModel(nn.Module):
    """Base class: remembers D and L and normalises the raw output.

    Subclasses implement `raw(x)`, the un-normalised prediction (the original trained MSE on it,
    which is why it stays reachable); `forward` returns the L2-normalised rows.
    """

    def __init__(self, dim: int, context_len: int) -> None:
        super().__init__()
        self.dim = dim
        self.context_len = context_len

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.raw(x), p=2, dim=-1)


# ---- transformer ---------------------------------------------------------------------------

class PositionalEncoding(nn.Module):
    """Fixed sinusoidal positions added to the projected inputs.

    Kept as a persistent buffer named `pe` of shape (1, max_len, d_model), as in the original,
    so original state dicts load strictly. Works for odd d_model too.
    """

    def __init__(self, d_model: int, max_len: int = 100) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term[: d_model // 2])
        self.register_buffer("pe", pe.unsqueeze(0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[:, : x.size(1), :]


class TransformerVectorPredictor(LatentVectorModel):
    """Causal transformer decoder with memory = input; the last position's state predicts.

    Both self- and cross-attention are causally masked, so position t only sees positions <= t
    (the original's design). The head is Linear -> GELU -> LayerNorm -> Linear.
    """

    def __init__(self, dim: int, context_len: int, *, d_model: int = 512, num_layers: int = 4, nhead: int = 8,
                 dim_feedforward: int = 2048, dropout: float = 0.1) -> None:
        _check_sizes("transformer", dim, context_len, d_model=d_model, num_layers=num_layers, nhead=nhead,
                     dim_feedforward=dim_feedforward)
        _check("transformer", d_model % nhead == 0, "nhead", f"d_model {d_model} must be divisible by nhead {nhead}")
        super().__init__(dim, context_len)
        self.input_proj = nn.Linear(dim, d_model)
        self.pos_encoder = PositionalEncoding(d_model, max_len=max(100, context_len))
        layer = nn.TransformerDecoderLayer(d_model=d_model, nhead=nhead, dim_feedforward=dim_feedforward,
                                           dropout=dropout, batch_first=True)
        self.transformer_decoder = nn.TransformerDecoder(layer, num_layers=num_layers)
        self.head = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU(), nn.LayerNorm(d_model),
                                  nn.Linear(d_model, dim))
        mask = torch.triu(torch.full((context_len, context_len), float("-inf")), diagonal=1)
        self.register_buffer("causal_mask", mask, persistent=False)

    def _mask(self, length: int, device: torch.device) -> torch.Tensor:
        if length == self.context_len:
            return self.causal_mask
        return torch.triu(torch.full((length, length), float("-inf"), device=device), diagonal=1)

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pos_encoder(self.input_proj(x))
        mask = self._mask(h.size(1), h.device)
        h = self.transformer_decoder(tgt=h, memory=h, tgt_mask=mask, memory_mask=mask)
        return self.head(h[:, -1, :])


# ---- recurrent -----------------------------------------------------------------------------

class LSTMBaseline(LatentVectorModel):
    """Stacked LSTM; the last timestep's hidden state is projected back to D."""

    def __init__(self, dim: int, context_len: int, *, hidden_dim: int = 512, num_layers: int = 2,
                 dropout: float = 0.2) -> None:
        _check_sizes("lstm", dim, context_len, hidden_dim=hidden_dim, num_layers=num_layers)
        super().__init__(dim, context_len)
        self.lstm = nn.LSTM(input_size=dim, hidden_size=hidden_dim, num_layers=num_layers,
                            dropout=dropout if num_layers > 1 else 0.0, batch_first=True)
        self.output_proj = nn.Linear(hidden_dim, dim)

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.output_proj(out[:, -1, :])


class GRUBlock(nn.Module):
    """GRU with a residual connection and LayerNorm: norm(x + dropout(gru(x)))."""

    def __init__(self, d_model: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.gru = nn.GRU(d_model, d_model, batch_first=True)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return self.norm(x + self.dropout(out))


class GRUStack(LatentVectorModel):
    """Linear D -> d_model, residual GRU blocks, last timestep projected back to D."""

    def __init__(self, dim: int, context_len: int, *, d_model: int = 512, num_layers: int = 4,
                 dropout: float = 0.0) -> None:
        _check_sizes("gru", dim, context_len, d_model=d_model, num_layers=num_layers)
        super().__init__(dim, context_len)
        self.input_proj = nn.Linear(dim, d_model)
        self.blocks = nn.ModuleList([GRUBlock(d_model, dropout) for _ in range(num_layers)])
        self.output_proj = nn.Linear(d_model, dim)

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input_proj(x)
        for block in self.blocks:
            h = block(h)
        return self.output_proj(h[:, -1, :])


# ---- attention mixture ---------------------------------------------------------------------

class AttentionMixtureNetwork(LatentVectorModel):
    """Mean of the context plus a learned residual.

    The query is the context mean; one-head scaled dot attention over the L context frames
    gives a weighted context in D-space; an MLP on [mean ‖ weighted] predicts the residual.
    `zero_residual` zero-initialises the MLP's last layer and takes the mean of unit frames, so
    the model starts exactly at the context-mean baseline and training can only move it away.
    """

    def __init__(self, dim: int, context_len: int, *, d_model: int = 256, hidden_dim: int = 512,
                 zero_residual: bool = False) -> None:
        _check_sizes("amn", dim, context_len, d_model=d_model, hidden_dim=hidden_dim)
        _check("amn", hidden_dim >= 2, "hidden_dim", f"expected >= 2, got {hidden_dim}")
        super().__init__(dim, context_len)
        self.context_encoder = nn.Linear(dim, d_model)
        self.query_encoder = nn.Linear(dim, d_model)
        self.scale = math.sqrt(d_model)
        half = hidden_dim // 2
        self.residual_net = nn.Sequential(
            nn.Linear(dim * 2, hidden_dim), nn.GELU(), nn.LayerNorm(hidden_dim),
            nn.Linear(hidden_dim, half), nn.GELU(), nn.LayerNorm(half),
            nn.Linear(half, dim),
        )
        self.zero_residual = zero_residual
        if zero_residual:  # start exactly at the context mean (a default Linear starts with norm ~11)
            nn.init.zeros_(self.residual_net[-1].weight)
            nn.init.zeros_(self.residual_net[-1].bias)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """Attention weights over the context frames, (B, L); rows sum to 1."""
        keys = self.context_encoder(x)  # (B, L, d)
        query = self.query_encoder(x.mean(dim=1)).unsqueeze(1)  # (B, 1, d)
        return torch.softmax(query @ keys.transpose(1, 2) / self.scale, dim=-1).squeeze(1)

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        # with zero_residual the mean is of unit frames, as the context-mean baseline's
        baseline = (F.normalize(x, dim=-1) if self.zero_residual else x).mean(dim=1)
        weighted = (self.attention(x).unsqueeze(1) @ x).squeeze(1)
        return baseline + self.residual_net(torch.cat([baseline, weighted], dim=-1))


# ---- MLP -----------------------------------------------------------------------------------

class SimpleMLP(LatentVectorModel):
    """Flatten the L frames -> hidden (ReLU, dropout) -> D: the cheapest learned model."""

    def __init__(self, dim: int, context_len: int, *, hidden_dim: int = 1024, dropout: float = 0.1) -> None:
        _check_sizes("mlp", dim, context_len, hidden_dim=hidden_dim)
        super().__init__(dim, context_len)
        self.net = nn.Sequential(nn.Linear(dim * context_len, hidden_dim), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden_dim, dim))

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        if x.size(1) != self.context_len:
            raise InputError("[model] mlp", f"expected contexts of length {self.context_len}, got {x.size(1)}",
                             "context_len")
        return self.net(x.flatten(1))


#: architecture name -> model class; each is a builder ``cls(dim, context_len, **params)``.
ARCHITECTURES: dict[str, Callable[..., LatentVectorModel]] = {
    "transformer": TransformerVectorPredictor,
    "lstm": LSTMBaseline,
    "gru": GRUStack,
    "amn": AttentionMixtureNetwork,
    "mlp": SimpleMLP,
}


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (buffers such as positional tables are not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
