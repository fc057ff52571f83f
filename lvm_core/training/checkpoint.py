"""Checkpoints: weights in safetensors with JSON metadata, training state in a separate file.

Two files per checkpoint, both written to a temporary name and renamed into place::

    <name>.safetensors   model weights; header metadata holds the architecture name and params,
                         input dim, context_len, step, epoch, metric values, plan hash, data
                         fingerprint and embedder id (each value json.dumps-ed: safetensors
                         metadata is str -> str), plus "format": "pt" for interop
    <name>.state.pt      optimizer, scheduler and RNG state (torch.save), loaded with
                         weights_only=True so a checkpoint can never run code

The state file is written first and the weights last, and both carry the same checkpoint id,
so a crash between the two renames is detected on resume instead of mixing two steps.
Nothing is ever unpickled; a model rebuilds from its .safetensors file alone.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from ..atomic import atomic_path
from ..errors import InputError
from ..safe_load import load_weights_only

WEIGHTS_SUFFIX = ".safetensors"
STATE_SUFFIX = ".state.pt"
FORMAT_VERSION = 1
#: keys every checkpoint's metadata must carry so a model rebuilds from the file alone
REQUIRED_META = ("arch", "arch_params", "input_dim", "context_len")
_RESERVED = ("format", "lvm_checkpoint_version", "checkpoint_id")


def _plain(obj: Any) -> Any:
    """json.dumps fallback: numpy and torch scalars (and small arrays) become plain numbers."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"checkpoint metadata value of type {type(obj).__name__} is not JSON-ready")


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """(weights, state) paths for a checkpoint given with or without its suffix."""
    p = Path(path)
    name = p.name
    for suffix in (WEIGHTS_SUFFIX, STATE_SUFFIX):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return p.with_name(name + WEIGHTS_SUFFIX), p.with_name(name + STATE_SUFFIX)


def save_checkpoint(path_without_suffix: str | Path, model: nn.Module, meta: Mapping[str, Any],
                    state: Mapping[str, Any] | None = None) -> Path:
    """Write `<path>.safetensors` (and `<path>.state.pt` when `state` is given); returns the
    weights path. `meta` needs at least REQUIRED_META; values must be JSON-ready."""
    weights_path, state_path = checkpoint_paths(path_without_suffix)
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ValueError(f"checkpoint metadata lacks {missing}")
    clash = [k for k in _RESERVED if k in meta]
    if clash:
        raise ValueError(f"checkpoint metadata may not set reserved keys {clash}")
    ckpt_id = uuid.uuid4().hex
    header = {k: json.dumps(v, allow_nan=True, sort_keys=True, default=_plain) for k, v in meta.items()}
    header.update({"format": "pt", "lvm_checkpoint_version": str(FORMAT_VERSION), "checkpoint_id": ckpt_id})
    # clone: safetensors refuses tensors that share storage, and the file must not alias the model
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    if state is not None:
        with atomic_path(state_path) as tmp:
            torch.save({"checkpoint_id": ckpt_id, **state}, tmp)
    with atomic_path(weights_path) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    return weights_path


def _open_error(path: Path, exc: Exception) -> InputError:
    return InputError(str(path), f"not a readable safetensors checkpoint ({type(exc).__name__}: {exc})")


def _raw_header(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise InputError(str(path), "checkpoint file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise _open_error(path, exc) from None


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """The metadata of a checkpoint (decoded JSON values), read from the header only."""
    weights_path, _ = checkpoint_paths(path)
    raw = _raw_header(weights_path)
    meta: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "format":
            continue
        if key in ("lvm_checkpoint_version", "checkpoint_id"):
            meta[key] = value
            continue
        try:
            meta[key] = json.loads(value)
        except json.JSONDecodeError:
            raise InputError(str(weights_path), f"expected a JSON value, got {value[:40]!r}", f"metadata {key!r}") from None
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise InputError(str(weights_path), f"not an lvm-workbench checkpoint: metadata lacks {missing}")
    version = meta.get("lvm_checkpoint_version", "?")
    if version != str(FORMAT_VERSION):
        raise InputError(str(weights_path), f"checkpoint format {version} is not supported (expected {FORMAT_VERSION})",
                         "metadata 'lvm_checkpoint_version'")
    return meta


def load_weights(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The state dict stored in a checkpoint (every tensor read, so truncation is caught here)."""
    weights_path, _ = checkpoint_paths(path)
    _raw_header(weights_path)
    try:
        with safe_open(str(weights_path), framework="pt", device=str(device)) as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001
        raise _open_error(weights_path, exc) from None


Lookup = Callable[[str], Callable[..., nn.Module]]


def load_model(path: str | Path, lookup: Lookup, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model from its checkpoint alone, in eval mode.

    `lookup(arch)` returns the builder registered for the architecture (the workbench passes
    its plugin host's lookup); it is called as ``builder(input_dim, context_len, **arch_params)``.
    The checkpoint's metadata is attached as `model.checkpoint_meta`.
    """
    weights_path, _ = checkpoint_paths(path)
    meta = read_checkpoint_meta(weights_path)
    builder = lookup(meta["arch"])
    params = meta["arch_params"]
    if not isinstance(params, dict):
        raise InputError(str(weights_path), f"expected an object, got {type(params).__name__}", "metadata 'arch_params'")
    try:
        model = builder(int(meta["input_dim"]), int(meta["context_len"]), **params)
    except TypeError as exc:  # params this version of the architecture no longer takes
        raise InputError(str(weights_path), f"cannot rebuild architecture {meta['arch']!r} with {params} ({exc})",
                         "metadata 'arch_params'") from None
    weights = load_weights(weights_path)
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    wrong = sorted(k for k in set(own) & set(weights) if own[k].shape != weights[k].shape)
    if missing or unexpected or wrong:
        parts = [f"{label} {names[:5]}" for label, names in
                 (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if names]
        raise InputError(str(weights_path), f"weights do not fit architecture {meta['arch']!r}: " + "; ".join(parts))
    model.load_state_dict(weights, strict=True)
    model.to(device)
    model.eval()
    model.checkpoint_meta = meta  # type: ignore[assignment]
    return model


def load_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The training state saved beside a checkpoint (optimizer, scheduler, RNG), never unpickled.

    Raises InputError when the file is missing, unreadable, or belongs to another save of the
    weights (a crash between the two renames).
    """
    weights_path, state_path = checkpoint_paths(path)
    if not state_path.is_file():
        raise InputError(str(state_path), "training state file not found (it is written only with state=...)")
    state = load_weights_only(state_path, "training state", map_location=map_location)
    if not isinstance(state, dict) or "checkpoint_id" not in state:
        raise InputError(str(state_path), "expected a dict with a 'checkpoint_id' key")
    if weights_path.is_file():
        meta = read_checkpoint_meta(weights_path)
        if meta.get("checkpoint_id") != state["checkpoint_id"]:
            raise InputError(str(state_path), f"belongs to a different save than {weights_path.name} "
                                              "(interrupted write?); resume from another checkpoint")
    return state
