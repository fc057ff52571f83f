"""Builder speed: chunks per second of each installed embedder on real chunks, plus the chunker.

Run:  python benchmarks/bench_builder.py [--store examples/data/python-docs-minilm] [--threads 2]

Everything is measured in this one process, beside the machine's own float32 matmul speed, so
numbers from different machines can be compared as ratios. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lvm_core.data.embedding import EmbedderUnavailable  # noqa: E402
from lvm_core.data.store import ArticleStore  # noqa: E402
from lvm_core.data.text import chunk_text  # noqa: E402

#: embedder -> texts to time (the slow transformers get fewer)
SAMPLES = {"potion-base-8m": 4000, "minilm": 256, "mpnet": 32}


def matmul_gflops(n: int = 1024, repeats: int = 5) -> float:
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    a @ a
    t = time.perf_counter()
    for _ in range(repeats):
        a @ a
    return 2 * n**3 * repeats / (time.perf_counter() - t) / 1e9


def time_encode(embedder, texts: list[str]) -> float:
    embedder.encode(texts[:8])  # warm-up
    t = time.perf_counter()
    embedder.encode(texts)
    return len(texts) / (time.perf_counter() - t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", default=str(ROOT / "examples" / "data" / "python-docs-minilm"))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    texts = ArticleStore.open(args.store).texts
    if not texts:
        print(f"{args.store} has no texts", file=sys.stderr)
        return 2
    words = np.array([len(t.split()) for t in texts])
    print(f"real chunks from {args.store}: {len(texts)} (mean {words.mean():.0f} words)")
    gflops = matmul_gflops()
    print(f"machine float32 matmul (1024^3): {gflops:.1f} GFLOP/s")

    t = time.perf_counter()
    for _ in range(3):
        chunk_text(texts, 120)
    wps = 3 * words.sum() / (time.perf_counter() - t)
    print(f"chunker: {wps / 1e6:.2f} M words/s ({wps / 112:.0f} chunks/s at ~112 words a chunk)")

    from workbench.plugin_host import load_plugins

    host = load_plugins(entry_points=False)
    rates: dict[str, float] = {}
    for name in host.names("embedder"):
        item = host.get("embedder", name)
        try:
            t = time.perf_counter()
            embedder = item.obj()
            load = time.perf_counter() - t
        except EmbedderUnavailable as exc:
            print(f"{name:16s} not installed ({exc.install_command})")
            continue
        n = SAMPLES.get(name, 64)
        sample = (texts * (n // len(texts) + 1))[:n]
        rates[name] = time_encode(embedder, sample)
        print(f"{name:16s} {embedder.dim:4d}-D  {rates[name]:9.1f} chunks/s on {n} chunks  "
              f"(load {load:.1f} s; {rates[name] / gflops:.3f} chunks/s per matmul GFLOP/s)")
    if "potion-base-8m" in rates and "minilm" in rates:
        print(f"potion / minilm speed ratio: {rates['potion-base-8m'] / rates['minilm']:.0f}x")
    if "minilm" in rates:
        for n in (5_000, 20_000, 67_000):
            print(f"minilm for {n} chunks: ~{n / rates['minilm'] / 60:.0f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
