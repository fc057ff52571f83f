"""Training and evaluation on several processes (torchrun), with DistributedDataParallel.

    torchrun --standalone --nproc-per-node 2 -m workbench.cli --plan plan.toml   (torchrun takes "--run" as its own)

Why a module of its own: the trainer stays one loop that reads top to bottom; everything that
differs when WORLD_SIZE > 1 lives here behind a `Dist` value whose single-process instance
(`SINGLE`) makes every helper a no-op. The rules it implements:

- **One global batch.** The plan's `train.batch_size` is the global micro-batch; rank r takes
  the r-th equal slice of each one. Every rank computes the same seeded epoch shuffle
  (`train.epoch_order`), so this is a distributed sampler that needs no communication, and
  each rank reads only its own rows from the memory-mapped store.
- **Gradients averaged by DDP.** For losses that are means over samples, the averaged gradient
  of N slices equals the single-process gradient of the whole batch, so the weights agree to
  float tolerance (tests/test_distributed.py). Losses that couple samples (in-batch negatives of
  InfoNCE) see only their rank's slice, and dropout masks differ from a single process.
- **Host syncs only at log points.** Logged loss sums and the stop flag are all-reduced there.
- **Evaluation sharded, results equal.** Each rank predicts a contiguous share of the fixed
  validation / 5CAT samples; the predictions are all-gathered in sample order, and rank 0's
  metrics are broadcast so that selection, tripwires and early stopping agree everywhere.
- **Rank 0 alone writes** the run folder, metrics, checkpoints, gates and report.

Collectives travel as tensors and JSON, never pickles.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, ContextManager

import numpy as np
import torch
from torch import nn

from ..errors import InputError

ENV_KEYS = ("WORLD_SIZE", "RANK", "LOCAL_RANK")


@dataclass(frozen=True)
class Dist:
    """Where this process stands in a torchrun job; `SINGLE` for a plain process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> str:
        return f"rank {self.rank} of {self.world_size}" if self.active else "single process"


SINGLE = Dist()


def from_env(env: dict[str, str] | None = None) -> Dist:
    """The torchrun variables (WORLD_SIZE, RANK, LOCAL_RANK); SINGLE when they are absent."""
    env = dict(os.environ if env is None else env)
    if "WORLD_SIZE" not in env:
        return SINGLE
    values = {}
    for key in ENV_KEYS:
        raw = env.get(key, "0")
        if not raw.strip().isdigit():
            raise InputError(key, f"expected a non-negative integer (set by torchrun), got {raw!r}")
        values[key] = int(raw)
    world, rank = values["WORLD_SIZE"], values["RANK"]
    if world < 1 or rank >= world:
        raise InputError("RANK", f"expected 0 <= RANK < WORLD_SIZE, got RANK={rank}, WORLD_SIZE={world}")
    return Dist(rank, world, values["LOCAL_RANK"])


def init(device_kind: str, env: dict[str, str] | None = None) -> Dist:
    """Join the process group torchrun prepared: nccl for CUDA, gloo otherwise. A world of one
    (or no torchrun at all) is SINGLE and starts no process group."""
    d = from_env(env)
    if not d.active:
        return SINGLE
    if not torch.distributed.is_initialized():
        # DDP imports torch._dynamo, and an import of torch._dynamo after the group exists keeps
        # references to it that `destroy_process_group` cannot drop: the gloo worker threads
        # then outlive `shutdown` and, at interpreter exit, one freeing a finished broadcast
        # aborts the process ("terminate called without an active exception", 3 of 40
        # resumed CPU jobs). Imported first, nothing holds the group and shutdown joins its threads.
        importlib.import_module("torch._dynamo")
        torch.distributed.init_process_group("nccl" if device_kind == "cuda" else "gloo")
    return d


def shutdown(d: Dist) -> None:
    """Leave the process group; its worker threads end here, not at interpreter exit."""
    if d.active and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def local_device(d: Dist, dev: torch.device) -> torch.device:
    """On CUDA each rank takes the GPU of its LOCAL_RANK; other devices are used as given."""
    if d.active and dev.type == "cuda":
        dev = torch.device("cuda", d.local_rank)
        torch.cuda.set_device(dev)
    return dev


def check_batch(d: Dist, batch_size: int, source: str) -> None:
    """The global batch must split evenly, or ranks would see different numbers of samples."""
    if d.active and batch_size % d.world_size:
        raise InputError(source, f"batch_size {batch_size} does not split evenly across {d.world_size} "
                                 f"processes (it is the global batch; use a multiple of {d.world_size})",
                         "train.batch_size")


def local_rows(d: Dist, rows: torch.Tensor) -> torch.Tensor:
    """This rank's equal slice of one global micro-batch of rows."""
    if not d.active:
        return rows
    n = rows.shape[0] // d.world_size
    return rows[d.rank * n:(d.rank + 1) * n]


def share(d: Dist, n: int) -> slice:
    """This rank's contiguous share of n items (sizes differ by at most one)."""
    per, extra = divmod(n, d.world_size)
    start = d.rank * per + min(d.rank, extra)
    return slice(start, start + per + (1 if d.rank < extra else 0))


def wrap(d: Dist, model: nn.Module, dev: torch.device) -> nn.Module:
    """The module the loss strategies call: DDP around `model` in a torchrun job, else `model`.
    Checkpoints, evaluation and gates always use the bare `model`."""
    if not d.active or not any(p.requires_grad for p in model.parameters()):
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)


def no_sync(net: nn.Module, skip: bool) -> ContextManager[Any]:
    """Gradient accumulation: skip DDP's all-reduce on every micro-batch but the last."""
    if skip and hasattr(net, "no_sync"):
        return net.no_sync()
    return contextlib.nullcontext()


def _comm_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if torch.distributed.get_backend() == "nccl" \
        else torch.device("cpu")


def reduce_log(d: Dist, means: torch.Tensor, stop: bool) -> tuple[torch.Tensor, bool]:
    """Average this rank's logged means over the ranks and agree on a stop request (any rank
    asking stops all of them, at the same step). One all-reduce, only at log points."""
    if not d.active:
        return means, stop
    packed = torch.cat([means.float().reshape(-1), torch.tensor([1.0 if stop else 0.0], device=means.device)])
    packed = packed.to(_comm_device())
    torch.distributed.all_reduce(packed)
    packed = packed.to(means.device)
    return packed[:-1] / d.world_size, bool(packed[-1].item() > 0)


def gather_rows(d: Dist, local: np.ndarray, n: int) -> np.ndarray:
    """Every rank's `share` of an (n, ...) array, joined back in order (an all-gather)."""
    if not d.active:
        return local
    width = -(-n // d.world_size)
    buf = torch.zeros((width, *local.shape[1:]), dtype=torch.float32, device=_comm_device())
    buf[:len(local)] = torch.from_numpy(np.ascontiguousarray(local, dtype=np.float32)).to(buf.device)
    parts = [torch.empty_like(buf) for _ in range(d.world_size)]
    torch.distributed.all_gather(parts, buf)
    out = []
    for r, part in enumerate(parts):
        s = share(Dist(r, d.world_size), n)
        out.append(part[:s.stop - s.start].cpu().numpy())
    return np.concatenate(out, axis=0)


def broadcast_json(d: Dist, obj: Any) -> Any:
    """Rank 0's JSON-ready `obj` on every rank (NaN survives), so decisions agree."""
    if not d.active:
        return obj
    dev = _comm_device()
    data = json.dumps(obj, allow_nan=True).encode() if d.is_main else b""
    size = torch.tensor([len(data)], dtype=torch.int64, device=dev)
    torch.distributed.broadcast(size, 0)
    buf = torch.zeros(int(size.item()), dtype=torch.uint8, device=dev)
    if d.is_main:
        buf.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8).to(dev))
    torch.distributed.broadcast(buf, 0)
    return json.loads(bytes(buf.cpu().numpy().tobytes()).decode())


def barrier(d: Dist) -> None:
    if d.active:
        torch.distributed.barrier()


def sharded_predictor(d: Dist, predictor: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """A 5CAT Predictor whose forward passes are split across the ranks: each rank predicts its
    share of the rows and all of them receive every prediction, in order."""
    if not d.active:
        return predictor

    def predict(contexts: np.ndarray) -> np.ndarray:
        n = contexts.shape[0]
        return gather_rows(d, predictor(contexts[share(d, n)]), n)

    for attr in ("model",):
        if hasattr(predictor, attr):
            setattr(predict, attr, getattr(predictor, attr))
    return predict
