"""Store open time, memory and batch-gather time at the original's scale (584,545 x 768).

Writes a synthetic store (float16 by default, as the bundled stores; --dtype float32 for the
original's precision) to a temporary directory in blocks, drops it from the page cache, then
measures in fresh subprocesses:

- open: `ArticleStore.open` wall time and resident memory (VmRSS) before and after; memory-
  mapping must make both tiny, however large the store;
- gather: one 256-window batch (contexts (256, 5, D) + targets) from random windows, first
  from a cold page cache, then unseen rows, then the same rows again (cached); again with madvise(MADV_RANDOM) on the mapping, which
  stops the kernel reading ahead around each random row;
- references measured in the same subprocess: reading vectors.npy whole (what the original's
  np.load did) and one (256, D) x (D, D) float32 matmul, printed as ratios.

Run: python benchmarks/bench_store_open.py [--rows 584545 --dim 768 --articles 8447 --dtype float16]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lvm_core.data.store import MANIFEST, StoreManifest

MEASURE = r"""
import json, os, sys, time
import numpy as np

def rss_mb():
    with open("/proc/self/status") as fh:
        return {k: int(v.split()[0]) / 1024 for k, v in (l.split(":", 1) for l in fh) if k in ("VmRSS", "RssAnon", "RssFile")}

from lvm_core.data.store import ArticleStore
from lvm_core.data.windows import make_windows
path, mode = sys.argv[1], sys.argv[2]
out = {"rss_before_open": rss_mb()}
t0 = time.perf_counter()
store = ArticleStore.open(path)
out["open_s"] = time.perf_counter() - t0
out["rss_after_open"] = rss_mb()
if mode.startswith("gather"):
    if mode == "gather_random":  # no readahead around each random row
        import mmap
        store.vectors._mmap.madvise(mmap.MADV_RANDOM)
    t0 = time.perf_counter()
    windows = make_windows(store, context_len=5)
    out["windows_s"] = time.perf_counter() - t0
    out["n_windows"] = len(windows)
    rng = np.random.default_rng(0)
    batches = [rng.choice(len(windows), size=256, replace=False) for _ in range(5)]
    times = []
    for idx in batches + batches[:1]:  # 1 cold, 4 more unseen rows, then batch 1 again (cached)
        t0 = time.perf_counter()
        ctx, tgt = windows.batch(idx)
        times.append(time.perf_counter() - t0)
    out["gather_cold_s"], out["gather_unseen_s"], out["gather_cached_s"] = times[0], float(np.median(times[1:5])), times[5]
    out["batch_shape"] = [list(ctx.shape), list(tgt.shape)]
    out["rss_after_gather"] = rss_mb()
    a = np.random.default_rng(1).standard_normal((256, store.dim), dtype=np.float32)
    w = np.random.default_rng(2).standard_normal((store.dim, store.dim), dtype=np.float32)
    a @ w
    t0 = time.perf_counter()
    for _ in range(20):
        a @ w
    out["matmul_s"] = (time.perf_counter() - t0) / 20
elif mode == "full_load":
    t0 = time.perf_counter()
    v = np.load(os.path.join(path, "vectors.npy"), allow_pickle=False)
    out["full_load_s"] = time.perf_counter() - t0
    out["rss_after_full_load"] = rss_mb()
print(json.dumps(out))
"""


def write_synthetic_store(path: Path, rows: int, dim: int, articles: int, dtype: str, seed: int = 0) -> None:
    """The store layout of lvm_core/data/store.py, written block by block (never all in memory)."""
    path.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, rows), size=articles - 1, replace=False))
    offsets = np.concatenate([[0], cuts, [rows]]).astype(np.int64)
    lengths = np.diff(offsets)
    vec = np.lib.format.open_memmap(path / "vectors.npy", mode="w+", dtype=dtype, shape=(rows, dim))
    block = 32768
    for start in range(0, rows, block):
        x = rng.standard_normal((min(block, rows - start), dim), dtype=np.float32)
        vec[start:start + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    vec.flush()
    del vec
    np.save(path / "offsets.npy", offsets)
    np.save(path / "article_ids.npy", np.arange(1, articles + 1, dtype=np.int64))
    np.save(path / "chunk_index.npy", np.arange(rows, dtype=np.int64) - np.repeat(offsets[:-1], lengths))
    manifest = StoreManifest(dim=dim, n_chunks=rows, n_articles=articles, dtype=dtype,
                             embedder={"name": "synthetic", "dim": dim}, corpus={"source": "bench_store_open"})
    (path / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2) + "\n")


def drop_from_page_cache(path: Path) -> None:
    """Ask the kernel to forget the file's cached pages, so the first read is a real disk read."""
    for f in path.iterdir():
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def measure(path: Path, mode: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(path), mode], capture_output=True, text=True,
                          env=env, check=True)
    return json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=584_545)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--articles", type=int, default=8_447)
    ap.add_argument("--dtype", choices=("float16", "float32"), default="float16")
    ap.add_argument("--dir", help="write the store under this directory (default: a temporary one)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_store_", dir=args.dir))
    try:
        store = root / "store"
        t0 = time.perf_counter()
        write_synthetic_store(store, args.rows, args.dim, args.articles, args.dtype)
        size_mb = sum(f.stat().st_size for f in store.iterdir()) / 2**20
        print(f"store: {args.rows:,} x {args.dim} {args.dtype}, {args.articles:,} articles, "
              f"{size_mb:,.0f} MB on disk (written in {time.perf_counter() - t0:.1f} s)")
        drop_from_page_cache(store)
        g = measure(store, "gather")
        drop_from_page_cache(store)
        gr = measure(store, "gather_random")
        drop_from_page_cache(store)
        f = measure(store, "full_load")
    finally:
        shutil.rmtree(root)
    r0, r1, r2 = g["rss_before_open"], g["rss_after_open"], g["rss_after_gather"]
    print(f"open (fresh process, cold cache): {g['open_s'] * 1e3:.1f} ms")
    print(f"resident memory: {r0['VmRSS']:.1f} MB before open, {r1['VmRSS']:.1f} MB after open "
          f"(+{r1['VmRSS'] - r0['VmRSS']:.2f} MB; file-backed +{r1['RssFile'] - r0['RssFile']:.2f} MB), "
          f"{r2['VmRSS']:.1f} MB after windows + 6 batches (anon +{r2['RssAnon'] - r1['RssAnon']:.1f} MB, "
          f"file-backed page cache +{r2['RssFile'] - r1['RssFile']:.1f} MB)")
    print(f"windows: {g['n_windows']:,} (context 5) indexed in {g['windows_s'] * 1e3:.1f} ms")
    for name, m in (("default", g), ("madvise(MADV_RANDOM)", gr)):
        print(f"gather one 256-window batch {m['batch_shape']}, {name}: first (cold cache) {m['gather_cold_s'] * 1e3:.2f} ms, "
              f"next unseen rows {m['gather_unseen_s'] * 1e3:.2f} ms, same rows again {m['gather_cached_s'] * 1e3:.2f} ms; "
              f"file-backed resident +{m['rss_after_gather']['RssFile'] - m['rss_after_open']['RssFile']:.1f} MB")
    print(f"reference: reading vectors.npy whole {f['full_load_s']:.2f} s "
          f"(+{f['rss_after_full_load']['VmRSS'] - f['rss_before_open']['VmRSS']:.0f} MB resident); "
          f"(256, {args.dim}) x ({args.dim}, {args.dim}) float32 matmul {g['matmul_s'] * 1e3:.2f} ms")
    print(f"ratios: open / whole read = {g['open_s'] / f['full_load_s']:.4f}; "
          f"cached gather / matmul = {g['gather_cached_s'] / g['matmul_s']:.2f}; "
          f"cold gather / matmul = {g['gather_cold_s'] / g['matmul_s']:.2f}")


if __name__ == "__main__":
    main()
