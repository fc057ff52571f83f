"""Trainer throughput: the real training loop vs the same passes on one pre-built batch.

    python benchmarks/bench_train.py [--device auto] [--steps 40] [--batch 64] [--threads 2]

Builds a synthetic store (D = 768 by default) and the reference transformer (the original's
defaults: d_model 512, 4 layers, 8 heads, FF 2048: 17,867,520 parameters), then measures in one
process, on the same device and batch size:

  loop      lvm_core.training.loop.train on the store: batches gathered from the store each step, loss
            strategy, lr schedule, grad clipping, AdamW, non-finite check, logging once an epoch
            (the better of epochs 2 and 3, so allocator and kernel warm-up is excluded);
  fwd+bwd   forward + MSE + backward on one batch already on the device;
  step      fwd+bwd plus grad clipping and the AdamW step (the same work as the loop, minus data).

The pre-built-batch rates are the best of 3 repeats (launch-bound GPUs are noisy), so the
ratios lean against the trainer. It prints samples/s for each and the ratios loop/step and
loop/fwd+bwd (target: >= 0.8).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lvm_core.data.store import write_store  # noqa: E402
from lvm_core.data.windows import make_windows  # noqa: E402
from lvm_core.device import autocast_bf16, select_device  # noqa: E402
from lvm_core.models.networks import TransformerVectorPredictor, count_parameters  # noqa: E402
from lvm_core.rundir import RunDir  # noqa: E402
from lvm_core.training.loop import EvalConfig, EvalSet, LossTerm, TrainConfig, TrainSetup, adamw, train  # noqa: E402


def mse(batch, model):
    return {"mse": F.mse_loss(batch.prediction(model).float(), batch.targets)}


def synthetic_store(path: Path, n_windows: int, dim: int, context_len: int, seed: int = 0):
    """Articles of 40 chunks, enough for `n_windows` training windows plus a small eval part."""
    per = 40
    n_articles = n_windows // (per - context_len) + 3
    rng = np.random.default_rng(seed)
    vecs = rng.normal(size=(n_articles * per, dim)).astype(np.float32)
    return write_store(path, vecs, [per] * n_articles, list(range(n_articles)), dtype="float16")


def timed_passes(model, ctx, tgt, steps: int, device, bf16: bool, with_step: bool) -> float:
    """samples/s of `steps` passes on one pre-built batch (after 3 warm-up passes)."""
    opt = adamw([{"params": list(model.parameters())}], 1e-4)  # the trainer's optimizer

    def one():
        with autocast_bf16(device, bf16):
            loss = F.mse_loss(model(ctx).float(), tgt)
        loss.backward()
        if with_step:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        one()
    _sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        one()
    _sync(device)
    return steps * ctx.shape[0] / (time.perf_counter() - t)


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=40, help="optimizer steps per measured epoch")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA only)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, reason = select_device(args.device)
    L = 5
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        store = synthetic_store(Path(tmp) / "store", args.steps * args.batch, args.dim, L)
        n_art = store.n_articles
        train_w = make_windows(store, np.arange(n_art - 2), L)
        eval_w = make_windows(store, np.arange(n_art - 2, n_art), L)
        model = TransformerVectorPredictor(args.dim, L)
        n_params = count_parameters(model)
        steps_per_epoch = len(train_w) // args.batch
        cfg = TrainConfig(epochs=3, batch_size=args.batch, lr=1e-4, warmup_steps=0, device=str(device),
                          log_every=10**9, bf16=args.bf16, select_metric="val/cos")
        run = RunDir(Path(tmp) / "run")
        run.path.mkdir()
        run.write_json("run.json", {"name": "bench"})
        setup = TrainSetup("bench", run, model, [LossTerm("mse", mse)], train_w, [EvalSet("val", eval_w)], cfg,
                           EvalConfig(max_samples=200), device=device, device_reason=reason,
                           checkpoint_meta={"arch": "transformer", "arch_params": {}, "input_dim": args.dim,
                                            "context_len": L})
        rates = {}
        train(setup, sinks=[lambda e: rates.__setitem__(e.epoch, e.samples_per_s) if e.kind == "StepLogged" else None])
        loop = max(rates[2], rates[3])

        ctx, tgt = train_w.batch(np.arange(args.batch))
        ctx, tgt = torch.from_numpy(ctx).to(device), torch.from_numpy(tgt).to(device)
        model.train()
        fwd_bwd = max(timed_passes(model, ctx, tgt, steps_per_epoch, device, args.bf16, with_step=False)
                      for _ in range(3))
        full = max(timed_passes(model, ctx, tgt, steps_per_epoch, device, args.bf16, with_step=True)
                   for _ in range(3))

    print(f"device {device} ({reason}); torch threads {torch.get_num_threads()}; bf16 {args.bf16}")
    print(f"reference transformer: {n_params:,} parameters, D = {args.dim}, batch {args.batch}, "
          f"{steps_per_epoch} steps per epoch")
    print(f"  training loop (best of epochs 2, 3) {loop:7.1f} samples/s")
    print(f"  pre-built batch, fwd+bwd+step       {full:7.1f} samples/s")
    print(f"  pre-built batch, fwd+bwd only       {fwd_bwd:7.1f} samples/s")
    print(f"ratio loop / (fwd+bwd+step) = {loop / full:.3f}   loop / (fwd+bwd) = {loop / fwd_bwd:.3f}   (target >= 0.8)")


if __name__ == "__main__":
    main()
