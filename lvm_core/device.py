"""Where and how reproducibly a run computes: device choice, CPU threads, seeds, RNG state, bf16.

A requested device that is absent is an error, never a silent fallback: a run that was meant
for the GPU and quietly trained on the CPU wastes a day and misleads a comparison.
"""

from __future__ import annotations

import contextlib
import os
import random
from typing import Any, ContextManager

import numpy as np
import torch

from .errors import EnvironmentProblem, InputError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def select_device(requested: str = "auto", *, source: str = "device") -> tuple[torch.device, str]:
    """The torch device to use and a one-line reason, for the run log.

    "auto" picks cuda, then mps, then cpu. "cuda", "cuda:N", "mps" and "cpu" are taken as
    given; one that this machine lacks raises InputError naming `source` (e.g. "--device").
    """
    req = str(requested).strip().lower()
    kind, _, index = req.partition(":")
    if kind not in DEVICE_CHOICES or (index and (kind != "cuda" or not index.isdigit())):
        raise InputError(source, f"expected one of auto, cpu, cuda, cuda:N, mps; got {requested!r}")
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda"), f"auto: CUDA available ({torch.cuda.get_device_name(0)})"
        if _mps_available():
            return torch.device("mps"), "auto: no CUDA; Apple MPS available"
        return torch.device("cpu"), "auto: no CUDA or MPS available"
    if kind == "cpu":
        return torch.device("cpu"), "requested cpu"
    if kind == "mps":
        if not _mps_available():
            raise EnvironmentProblem(source, "device 'mps' was requested but MPS is not available on this machine "
                                     "(use device = \"auto\" or \"cpu\")")
        return torch.device("mps"), "requested mps"
    if not torch.cuda.is_available():
        built = "built with CUDA" if torch.backends.cuda.is_built() else "a CPU-only torch build"
        raise EnvironmentProblem(source, f"device {req!r} was requested but CUDA is not available ({built}); "
                                 "use device = \"auto\" or \"cpu\"")
    n = torch.cuda.device_count()
    if index and int(index) >= n:
        raise EnvironmentProblem(source, f"device {req!r} was requested but only {n} CUDA device(s) exist")
    dev = torch.device(req)
    return dev, f"requested {req} ({torch.cuda.get_device_name(dev)})"


def configure_threads(n: int | None) -> int:
    """Set torch's intra-op CPU threads (None or 0 keeps the default); returns the count in use."""
    if n is not None and n != 0:
        if n < 0:
            raise InputError("threads", f"expected a positive thread count or 0 for the default, got {n}")
        torch.set_num_threads(int(n))
    return torch.get_num_threads()


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, numpy and torch (all devices); with `deterministic`, also ask torch for
    deterministic kernels (an op without one raises instead of silently varying)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(deterministic)


def capture_rng_state() -> dict[str, Any]:
    """Every RNG's state as plain types and tensors, so it round-trips through
    ``torch.load(..., weights_only=True)`` (numpy arrays would not)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `capture_rng_state` (CUDA state is restored only where CUDA exists)."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def autocast_bf16(device: torch.device, enabled: bool = True) -> ContextManager[Any]:
    """bf16 autocast on CUDA when enabled; a no-op context on every other device."""
    if enabled and torch.device(device).type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
