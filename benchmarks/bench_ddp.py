"""Distributed and GPU throughput of the real training loop (lvm_core.training.loop.train).

    python benchmarks/bench_ddp.py                 # CPU: 1 process vs 2 gloo processes
    python benchmarks/bench_ddp.py --gpu           # CUDA: one GPU, batch 256/1024/4096, compile off/on

CPU part: the same plan (the small transformer of the quickstart, D = 768 synthetic store, one
global batch) trained by one process with one thread and by two DDP processes (gloo) with one
thread each; it prints global samples/s of both and the scaling efficiency
rate(2) / (2 x rate(1)), and, for reference, one process with two threads.

GPU part (needs CUDA): the reference transformer (17.9M parameters at D = 768) under bf16
autocast at global batch 256, 1024 and 4096, without and with `train.compile`; for each, samples/s
after the first log point (so compile and warm-up are excluded) and the model FLOPs utilisation:
FLOPs of one forward + backward per sample (counted by torch.utils.flop_counter) x samples/s /
the GPU's peak bf16 FLOP/s (`--peak-tflops`, default 989 for H100/H200, dense).

All rates come from the trainer's own StepLogged events, measured in this run.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import capped_rate, write_synthetic_store  # noqa: E402
from lvm_core.data.store import ArticleStore  # noqa: E402
from lvm_core.data.windows import Windows, make_windows  # noqa: E402
from lvm_core.models.networks import TransformerVectorPredictor, count_parameters  # noqa: E402
from lvm_core.rundir import RunDir  # noqa: E402
from lvm_core.training import distributed
from lvm_core.training.loop import EvalConfig, EvalSet, LossTerm, TrainConfig, TrainSetup  # noqa: E402

SMALL = dict(d_model=128, num_layers=2, nhead=4, dim_feedforward=256, dropout=0.0)
REFERENCE = dict(dropout=0.0)
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0}


def mse(batch, model):
    return {"mse": F.mse_loss(batch.prediction(model).float(), batch.targets)}


def measure(store_path: Path, params: dict, *, batch: int, steps: int, device: str, bf16: bool = False,
            compile_: bool = False, dist: distributed.Dist = distributed.SINGLE, tmp: Path) -> float:
    """Global samples/s of the trainer between its first and last log points."""
    store = ArticleStore.open(store_path)
    w = make_windows(store, None, 5)
    torch.manual_seed(0)
    model = TransformerVectorPredictor(store.dim, 5, **params)
    dev = distributed.local_device(dist, torch.device(device))
    cfg = TrainConfig(epochs=1, batch_size=batch, lr=1e-4, warmup_steps=0, device=str(dev), log_every=max(steps // 5, 1),
                      bf16=bf16, compile=compile_, select_metric="val/cos")
    run = RunDir(tempfile.mkdtemp(prefix=f"run-{batch}-{int(compile_)}-{dist.rank}-", dir=tmp))
    setup = TrainSetup("bench", run, model, [LossTerm("mse", mse)], w, [EvalSet("val", Windows(store, w.target_rows[:256], 5))],
                       cfg, EvalConfig(max_samples=256), device=dev, device_reason="bench", dist=dist,
                       checkpoint_meta={"arch": "transformer", "arch_params": params, "input_dim": store.dim, "context_len": 5})
    if dist.is_main:
        run.write_json("run.json", {"name": "bench"})
    return capped_rate(setup, steps)


def _worker(rank: int, world: int, port: int, store_path: str, batch: int, steps: int, tmp: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    d = distributed.init("cpu")
    rate = measure(Path(store_path), SMALL, batch=batch, steps=steps, device="cpu", dist=d, tmp=Path(tmp))
    distributed.shutdown(d)
    if rank == 0:
        Path(out).write_text(str(rate))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_scaling(args: argparse.Namespace, tmp: Path) -> None:
    store = tmp / "store"
    write_synthetic_store(store, args.rows, 768, "float16")
    steps = args.steps
    torch.set_num_threads(1)
    one = measure(store, SMALL, batch=args.batch, steps=steps, device="cpu", tmp=tmp)
    torch.set_num_threads(2)
    one_two_threads = measure(store, SMALL, batch=args.batch, steps=steps, device="cpu", tmp=tmp)
    out = tmp / "rate2"
    torch.multiprocessing.spawn(_worker, args=(2, _free_port(), str(store), args.batch, steps, str(tmp), str(out)),
                                nprocs=2, join=True)
    two = float(out.read_text())
    n = count_parameters(TransformerVectorPredictor(768, 5, **SMALL))
    print(f"CPU, small transformer ({n:,} parameters), D = 768, global batch {args.batch}, {steps} steps each:")
    print(f"  1 process x 1 thread     {one:9,.0f} samples/s")
    print(f"  1 process x 2 threads    {one_two_threads:9,.0f} samples/s")
    print(f"  2 processes x 1 thread   {two:9,.0f} samples/s (DDP, gloo)")
    print(f"  scaling efficiency rate(2 processes) / (2 x rate(1 process)) = {two / (2 * one):.2f}; "
          f"speed-up over 1 process x 2 threads {two / one_two_threads:.2f}x")


def flops_per_sample(params: dict, batch: int, device: torch.device, bf16: bool) -> float:
    """Forward + backward FLOPs per sample, counted on one real batch."""
    from torch.utils.flop_counter import FlopCounterMode

    from lvm_core.device import autocast_bf16

    model = TransformerVectorPredictor(768, 5, **params).to(device)
    x = torch.randn(batch, 5, 768, device=device)
    counter = FlopCounterMode(display=False)
    with counter, autocast_bf16(device, bf16):
        model(x).float().pow(2).mean().backward()
    return counter.get_total_flops() / batch


def gpu_table(args: argparse.Namespace, tmp: Path) -> None:
    if not torch.cuda.is_available():
        print("GPU part skipped: CUDA is not available on this machine (no numbers are made up)")
        return
    name = torch.cuda.get_device_name(0)
    peak = args.peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
    store = tmp / "gpu-store"
    write_synthetic_store(store, args.rows, 768, "float16")
    dev = torch.device("cuda")
    per_sample = flops_per_sample(REFERENCE, 256, dev, True)
    n = count_parameters(TransformerVectorPredictor(768, 5, **REFERENCE))
    print(f"GPU {name}, reference transformer ({n:,} parameters), bf16 autocast; "
          f"{per_sample / 1e9:.3f} GFLOP per sample (fwd+bwd); peak {peak or '?'} TFLOP/s")
    print(f"{'batch':>6} {'compile':>8} {'samples/s':>12} {'TFLOP/s':>9} {'MFU':>7}")
    for batch in (256, 1024, 4096):
        for compile_ in (False, True):
            try:
                rate = measure(store, REFERENCE, batch=batch, steps=args.gpu_steps, device="cuda", bf16=True,
                               compile_=compile_, tmp=tmp)
            except Exception as exc:  # noqa: BLE001 - report and go on with the other rows
                print(f"{batch:>6} {str(compile_):>8} failed: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            tflops = rate * per_sample / 1e12
            mfu = f"{tflops / peak:.1%}" if peak else "?"
            print(f"{batch:>6} {str(compile_):>8} {rate:>12,.0f} {tflops:>9.1f} {mfu:>7}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpu", action="store_true", help="the single-GPU table (batch 256/1024/4096, compile off/on)")
    ap.add_argument("--rows", type=int, default=60_000, help="rows of the synthetic store")
    ap.add_argument("--batch", type=int, default=128, help="global batch of the CPU part")
    ap.add_argument("--steps", type=int, default=40, help="optimizer steps per CPU measurement")
    ap.add_argument("--gpu-steps", type=int, default=100, help="optimizer steps per GPU measurement")
    ap.add_argument("--peak-tflops", type=float, default=None, help="the GPU's peak bf16 TFLOP/s (dense)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.gpu:
            args.rows = max(args.rows, 584_545)  # enough windows for 100 steps of 4096
            gpu_table(args, Path(tmp))
        else:
            cpu_scaling(args, Path(tmp))


if __name__ == "__main__":
    main()
