"""`train.compile = true`: torch.compile the model and the loss terms of a run.

Why: on a GPU a small model is launch-bound (about 1 % of an H200's bf16 arithmetic for the
reference transformer at batch 256); fusing the forward, the loss and their backward into a few
kernels is where the rest of the speed is. Off by default: on CPU the compile time (tens of
seconds) rarely pays back, and it needs a C++ compiler.

`LVM_WORKBENCH_COMPILE_BACKEND` picks the backend (default "inductor"; "eager" traces with
dynamo but runs the ops as they are, which is how the tests check the wiring quickly).
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import torch
from torch import nn

BACKEND_ENV = "LVM_WORKBENCH_COMPILE_BACKEND"


def backend() -> str:
    return os.environ.get(BACKEND_ENV, "inductor") or "inductor"


def maybe_compile(net: nn.Module, losses: Sequence, enabled: bool) -> tuple[nn.Module, dict[str, Callable]]:
    """The module the strategies call and each loss term's strategy by name, compiled when
    `enabled` (the DDP wrapper, if any, is compiled as a whole: torch's supported order).
    Checkpoints keep using the bare model, so their keys never carry a compile prefix."""
    strategies = {t.name: t.strategy for t in losses}
    if not enabled:
        return net, strategies
    b = backend()
    return torch.compile(net, backend=b), {name: torch.compile(fn, backend=b) for name, fn in strategies.items()}
