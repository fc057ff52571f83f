"""Wall time of the 5CAT battery beside the bare batched forward passes it needs.

Workload (issue 4): 5000 VAL + 5000 OOD samples, horizon 5, the 17.9M-parameter reference
transformer (d_model 512, 4 layers, 8 heads) at D = 768 on the CPU, on a synthetic store.
The battery predicts 13 input variants per split (base, shuffled, reversed, 4 leave-one-out,
repeat-last, cross-article, rollout steps 2..5); the bare baseline runs exactly that many
forward passes on random inputs of the same shape and batch size, in the same process.
Target: battery / forwards <= 1.25; the paired bootstrap of gate vs_baselines adds <= 10 %.

    python benchmarks/bench_5cat.py                  # the full workload
    python benchmarks/bench_5cat.py --samples 1000   # a quicker look on a busy machine
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lvm_core.data.store import write_store
from lvm_core.data.windows import make_windows
from lvm_core.evaluation.battery import resolve_gates, run_battery, static_variants, torch_predictor
from lvm_core.models.networks import ARCHITECTURES, count_parameters
from workbench.plugin_host import load_plugins


def synthetic_store(path: Path, n_articles: int, length: int, dim: int, seed: int):
    """Unit random walks per article (adjacent cosine about 0.5), float16 like real stores."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(size=(n_articles, length, dim)).astype(np.float32)
    vecs = np.empty_like(steps)
    vecs[:, 0] = steps[:, 0]
    for i in range(1, length):
        vecs[:, i] = 0.5 * vecs[:, i - 1] + np.sqrt(0.75) * steps[:, i]
    return write_store(path, vecs.reshape(-1, dim), [length] * n_articles, list(range(n_articles)), dtype="float16")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=5000, help="samples per split (default 5000)")
    ap.add_argument("--horizon", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--batch-size", type=int, default=2048)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dim, ctx = 768, 5
    model = ARCHITECTURES["transformer"](dim, ctx).eval()
    n_articles = max(50, args.samples // 25)
    with tempfile.TemporaryDirectory() as tmp:
        val = synthetic_store(Path(tmp) / "val", n_articles, 60, dim, seed=1)
        ood = synthetic_store(Path(tmp) / "ood", n_articles, 60, dim, seed=2)
        splits = {"val": (val, make_windows(val).target_rows), "ood": (ood, make_windows(ood).target_rows)}
        host = load_plugins(entry_points=False)
        gates = resolve_gates(lambda n: host.get("gate", n))
        predict = torch_predictor(model, "cpu", args.batch_size)
        predict(np.zeros((8, ctx, dim), np.float32))  # warm-up
        n_variants = len(static_variants(ctx, legacy=False)) + args.horizon - 1

        t0 = time.perf_counter()
        result = run_battery(predict, splits, gates, samples=args.samples, horizon=args.horizon)
        battery_s = time.perf_counter() - t0

        rows = [s["samples"] for s in result.splits.values()]
        x = np.random.default_rng(0).normal(size=(max(rows), ctx, dim)).astype(np.float32)
        t0 = time.perf_counter()
        for n in rows:
            for _ in range(n_variants):
                predict(x[:n])
        forward_s = time.perf_counter() - t0

    print(f"model: reference transformer, {count_parameters(model):,} parameters, D = {dim}, "
          f"torch threads {torch.get_num_threads()}, batch {args.batch_size}")
    print(f"workload: {' + '.join(map(str, rows))} samples (VAL + OOD), horizon {args.horizon}, "
          f"{n_variants} variants per split = {n_variants * sum(rows):,} predicted rows")
    print(f"battery (model + 3 baselines, gates A-E): {battery_s:8.2f} s"
          f"   (of which model forwards {result.timings['predict_model_s']:.2f} s)")
    paired = result.timings.get("paired_s", 0.0)
    print(f"  of which the paired bootstrap (vs_baselines, {len(result.splits)} splits): {paired:.3f} s = "
          f"{paired / (battery_s - paired):.2%} added to the rest of the battery (target <= 10%)")
    print(f"bare batched forward passes:              {forward_s:8.2f} s")
    print(f"ratio battery / forwards:                 {battery_s / forward_s:8.3f}   (target <= 1.25)")
    print(f"score {result.score()}/5 for a random-init model (the numbers are not the point here)")


if __name__ == "__main__":
    main()
