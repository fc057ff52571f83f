"""Device check for the strategy library (not collected by pytest; run by hand on a GPU machine).

    python tests/_strategies_device_check.py [cuda|cpu] [--quick]

1. Every strategy runs on the device through the trainer's BatchSource, under bf16 autocast
   on CUDA, and gives finite terms on that device with gradient in every non-stat term.
2. Cost of one training step of each strategy relative to a plain one-step cosine loss on the
   same model and batch, measured in this one run (a ratio, not a timing assertion): a rollout
   of H steps should cost about H forward+backward passes.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lvm_core.data.store import write_store
from lvm_core.data.windows import make_windows
from lvm_core.device import autocast_bf16
from lvm_core.models.networks import TransformerVectorPredictor
from lvm_core.training.loop import BatchSource
from lvm_plugins.strategies import (AdaptiveDirectional, AntiCopy, EnergyScore, FutureRanking, NoisyHead, Rollout,
                                    VarianceGuard)


def synthetic_store(path: Path, articles: int = 300, length: int = 40, dim: int = 384):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(articles, 1, dim)) + np.cumsum(0.5 * rng.normal(size=(articles, length, dim)), axis=1)
    ids = list(range(articles))
    return write_store(path, x.reshape(-1, dim), [length] * articles, ids,
                       embedder={"name": "synthetic", "dim": dim}, corpus={"source": "synthetic"}, dtype="float32")


def main(device_name: str, quick: bool = False) -> None:
    dev = torch.device(device_name)
    store = synthetic_store(Path(tempfile.mkdtemp()) / "s.lvmstore", articles=20 if quick else 300)
    rows = torch.from_numpy(make_windows(store, None, 5).target_rows).to(dev)
    src = BatchSource(store, 5, dev, 1 << 30)
    dim = store.vectors.shape[1]
    strategies = {
        "one_step_cosine": Rollout(horizon=1),
        "rollout_h3": Rollout(horizon=3, flat_weight=10.0),
        "rollout_h5": Rollout(horizon=5),
        "adaptive_directional": AdaptiveDirectional(),
        "anti_copy": AntiCopy(),
        "future_ranking_k3": FutureRanking(horizons=3),
        "variance_guard": VarianceGuard(),
        "energy_score_m8": EnergyScore(samples=8),
    }
    times: dict[str, float] = {}
    for name, strategy in strategies.items():
        torch.manual_seed(0)
        base = dict(d_model=256, num_layers=2, nhead=4, dim_feedforward=1024)
        model = (NoisyHead(dim, 5, base="transformer", base_width=256, base_layers=2) if "energy" in name
                 else TransformerVectorPredictor(dim, 5, **base)).to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        g = torch.Generator(device="cpu").manual_seed(0)
        steps, warm, size = (4, 1, 16) if quick else (40, 10, 512)
        for step in range(steps):
            if step == warm:
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            idx = torch.randint(0, len(rows), (size,), generator=g).to(dev)
            batch = src.batch(rows[idx], 1, step)
            with autocast_bf16(dev, True):
                terms = strategy(batch, model)
                loss = sum(v.float() for k, v in terms.items() if not k.startswith("stat/"))
            for k, v in terms.items():
                assert v.device.type == dev.type and torch.isfinite(v), (name, k, v)
                assert v.requires_grad == (not k.startswith("stat/")), (name, k)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times[name] = (time.perf_counter() - t0) / (steps - warm)
        print(f"{name:22s} ok  last terms: " + ", ".join(f"{k}={v.item():.4f}" for k, v in terms.items()))
    ref = times["one_step_cosine"]
    print(f"\nstep cost relative to one_step_cosine ({ref * 1e3:.2f} ms/step, batch {size}, {dev}):")
    for name, t in times.items():
        print(f"  {name:22s} {t / ref:5.2f}x")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--quick"]
    torch.set_num_threads(2)
    main(args[0] if args else ("cuda" if torch.cuda.is_available() else "cpu"), quick="--quick" in sys.argv)
