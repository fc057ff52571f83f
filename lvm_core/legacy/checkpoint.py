"""Import the original lnsp-phase-4 `.pt` checkpoints (Transformer, LSTM, GRU, AMN) into our
safetensors format without executing pickle code.

The original saved a dict (`model_type`, `model_state_dict`, `model_config`, `args` with numpy
scalars, ...) with torch.save and loaded it with weights_only=False, which runs any code the
file names. Here the file is read with torch.load(weights_only=True) and an explicit allow-list
of the numpy globals that numpy scalars need (`numpy._core.multiarray.scalar` under either
module name, `numpy.dtype`, and the dtype classes of numeric and bool scalars); anything else
in the file is refused with one clear line.

Sizes are read from the weight shapes (the original ignored `model_config`, so configs lie
about non-default widths); only what shapes cannot tell (heads, dropout) comes from
`model_config`. Our architectures (lvm_core/models/networks.py) use the original parameter names, so the
state dict loads strictly, unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..errors import InputError
from ..models.networks import ARCHITECTURES
from ..safe_load import load_weights_only
from ..training.checkpoint import save_checkpoint

#: original model_type -> our architecture name
MODEL_TYPES = {"transformer": "transformer", "lstm": "lstm", "gru": "gru", "amn": "amn"}


def _numpy_scalar_globals() -> list[Any]:
    """The allow-list: exactly what a pickled numpy scalar needs, under numpy 1 and 2 names."""
    core = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray  # type: ignore[attr-defined]
    dtype_classes = [type(np.dtype(code)) for code in "?bhilqBHILQefdgFD"]  # no object/str/void dtypes
    return [(core.scalar, "numpy._core.multiarray.scalar"), (core.scalar, "numpy.core.multiarray.scalar"),
            np.dtype, *dtype_classes]


def read_legacy_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, loaded with weights_only=True and the numpy-scalar allow-list only."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "checkpoint file not found")
    obj = load_weights_only(path, "torch checkpoint", allowed=_numpy_scalar_globals())
    if not isinstance(obj, dict) or "model_state_dict" not in obj:
        raise InputError(str(path), "expected an original checkpoint: a dict with 'model_state_dict' "
                         "(a pickled model object cannot be loaded safely)")
    state = obj["model_state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(str(path), "expected a mapping of parameter names to tensors", "model_state_dict")
    return obj


def _count(state: Mapping[str, torch.Tensor], pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in state if (m := rx.match(k))})


def _shape(state: Mapping[str, torch.Tensor], key: str, src: str) -> tuple[int, ...]:
    if key not in state:
        raise InputError(src, f"missing parameter {key!r} for this model_type", "model_state_dict")
    return tuple(state[key].shape)


def architecture_of(ckpt: Mapping[str, Any], src: str = "checkpoint") -> tuple[str, dict[str, Any], int]:
    """(our arch name, arch params, input dim) for an original checkpoint."""
    model_type = str(ckpt.get("model_type", "amn")).lower()  # the original's default
    if model_type not in MODEL_TYPES:
        raise InputError(src, f"model_type {model_type!r} has no importer (known: {', '.join(MODEL_TYPES)})",
                         "model_type")
    cfg = ckpt.get("model_config") or {}
    if not isinstance(cfg, Mapping):
        raise InputError(src, f"expected a dict, got {type(cfg).__name__}", "model_config")
    sd = ckpt["model_state_dict"]
    if model_type == "transformer":
        d_model, dim = _shape(sd, "input_proj.weight", src)
        out_dim = _shape(sd, "head.3.weight", src)[0]
        ff = _shape(sd, "transformer_decoder.layers.0.linear1.weight", src)[0]
        params = {"d_model": d_model, "num_layers": _count(sd, r"transformer_decoder\.layers\.(\d+)\."),
                  "nhead": int(cfg.get("nhead", 8)), "dim_feedforward": ff, "dropout": float(cfg.get("dropout", 0.1))}
    elif model_type == "lstm":
        hidden, dim = _shape(sd, "lstm.weight_ih_l0", src)[0] // 4, _shape(sd, "lstm.weight_ih_l0", src)[1]
        out_dim = _shape(sd, "output_proj.weight", src)[0]
        params = {"hidden_dim": hidden, "num_layers": _count(sd, r"lstm\.weight_ih_l(\d+)$"),
                  "dropout": float(cfg.get("dropout", 0.2))}
    elif model_type == "gru":
        d_model, dim = _shape(sd, "input_proj.weight", src)
        out_dim = _shape(sd, "output_proj.weight", src)[0]
        params = {"d_model": d_model, "num_layers": _count(sd, r"blocks\.(\d+)\."),
                  "dropout": float(cfg.get("dropout", 0.0))}
    else:
        d_model, dim = _shape(sd, "context_encoder.weight", src)
        out_dim = _shape(sd, "residual_net.6.weight", src)[0]
        params = {"d_model": d_model, "hidden_dim": _shape(sd, "residual_net.0.weight", src)[0]}
    if out_dim != dim:
        raise InputError(src, f"input dim {dim} differs from output dim {out_dim}: models trained with the "
                         "769-D positional channel are not supported", "model_state_dict")
    return MODEL_TYPES[model_type], params, int(dim)


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    if isinstance(x, float) and not np.isfinite(x):
        return None
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        return x.item()
    return repr(x)


def legacy_model(path: str | Path, context_len: int = 5) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Our model with the checkpoint's weights (eval mode), and the metadata to save with it."""
    src = str(path)
    ckpt = read_legacy_checkpoint(path)
    arch, params, dim = architecture_of(ckpt, src)
    model = ARCHITECTURES[arch](dim, context_len, **params)
    try:
        model.load_state_dict(ckpt["model_state_dict"], strict=True)
    except RuntimeError as exc:
        first = str(exc).split("\n\t")[1] if "\n\t" in str(exc) else str(exc)
        raise InputError(src, f"weights do not fit {arch} {params}: {first.strip()[:200]}", "model_state_dict") from None
    model.eval()
    meta = {
        "arch": arch, "arch_params": params, "input_dim": dim, "context_len": context_len,
        "imported_from": {"path": str(Path(path).name), "model_type": ckpt.get("model_type", "amn"),
                          **{k: _jsonable(ckpt[k]) for k in ("epoch", "val_loss", "val_cosine", "model_config", "args")
                             if k in ckpt}},
    }
    return model, meta


def import_legacy_checkpoint(path: str | Path, out: str | Path, context_len: int = 5) -> Path:
    """Write `out` (.safetensors) from an original `.pt` checkpoint; returns the weights path."""
    model, meta = legacy_model(path, context_len)
    return save_checkpoint(out, model, meta)
