"""Seed-scale benchmark: a synthetic 584,545 x 768 store (the seed team's size), float16 and float32.

    python benchmarks/bench_scale.py [--rows 584545] [--dim 768] [--dtypes float16,float32]
                                     [--steps 20] [--batch 64] [--device auto] [--bf16] [--dir DIR]

For each dtype it writes the store (chunk by chunk, never whole in memory), then measures in
this one process:

  open        ArticleStore.open with its structural checks (warm page cache)
  windows     the seeded 80/10/10 article split and the train windows built from it
  fit         the per-run fit of ridge and frame weights (streamed normal equations), its time
              and peak RSS; with --dense-fit also the dense fit it replaced
  start       a closed-form start (the frame_weights model fitted before its first step): only
              the windows the fit uses are gathered; with --dense-fit also the whole train part
              gathered first, as the trainer did before
  data epoch  one full epoch of train batches gathered the trainer's way (BatchSource over the
              shuffled windows), with the peak resident memory (VmHWM, reset before) against the
              target 1.3 x store bytes + model + AdamW state (params, grads, two moments)
  train       lvm_core.training.loop.train for `--steps` optimizer steps of the reference transformer
              (17.9M parameters at D = 768) and of a small one (the quickstart's); the epoch
              time is EXTRAPOLATED from the measured samples/s (steps after the first log
              point), and is printed as such
  5CAT        run_battery on 5000 VAL + 5000 OOD samples (horizon 5), reference transformer

Peak memory of the training part is reported too (VmHWM over the capped run). Synthetic vectors
only: this measures speed and memory, not learning.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lvm_core.data.store import MANIFEST, ArticleStore, StoreManifest  # noqa: E402
from lvm_core.data.windows import Windows, make_windows, split_by_fractions  # noqa: E402
from lvm_core.device import select_device  # noqa: E402
from lvm_core.evaluation.battery import resolve_gates, run_battery, torch_predictor  # noqa: E402
from lvm_core.models.fitted import MAX_FIT_WINDOWS  # noqa: E402
from lvm_core.models.networks import TransformerVectorPredictor, count_parameters  # noqa: E402
from lvm_core.rundir import RunDir  # noqa: E402
from lvm_core.training.loop import BatchSource, EvalConfig, EvalSet, LossTerm, TrainConfig, TrainSetup, epoch_order, train  # noqa: E402

SEED_ROWS = 584_545
MODELS = {"reference transformer": {}, "small transformer": dict(d_model=128, num_layers=2, nhead=4, dim_feedforward=256)}


# ---- memory --------------------------------------------------------------------------------

def _status(key: str) -> int:
    """A /proc/self/status field in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return -1


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss() -> int:
    return _status("VmHWM")


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


# ---- the synthetic store -------------------------------------------------------------------

def write_synthetic_store(path: Path, rows: int, dim: int, dtype: str, seed: int = 0) -> None:
    """Articles of 6-80 chunks (seeded), unit vectors written in blocks into a memory map."""
    rng = np.random.default_rng(seed)
    lengths = []
    left = rows
    while left > 0:
        n = int(min(left, rng.integers(6, 81)))
        if left - n < 6 and left - n > 0:
            n = left
        lengths.append(n)
        left -= n
    path.mkdir(parents=True)
    vecs = np.lib.format.open_memmap(path / "vectors.npy", mode="w+", dtype=dtype, shape=(rows, dim))
    for start in range(0, rows, 65536):
        block = rng.standard_normal((min(65536, rows - start), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        vecs[start:start + len(block)] = block.astype(dtype)
    vecs.flush()
    del vecs
    lengths_a = np.asarray(lengths, dtype=np.int64)
    np.save(path / "offsets.npy", np.concatenate([[0], np.cumsum(lengths_a)]).astype(np.int64))
    np.save(path / "article_ids.npy", np.arange(len(lengths), dtype=np.int64))
    np.save(path / "chunk_index.npy", np.concatenate([np.arange(n, dtype=np.int64) for n in lengths]))
    manifest = StoreManifest(dim=dim, n_chunks=rows, n_articles=len(lengths), dtype=dtype,
                             embedder={"name": "synthetic", "dim": dim}, corpus={"source": "bench_scale"})
    (path / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2) + "\n")


# ---- measurements ----------------------------------------------------------------------------

def mse(batch, model):
    return {"mse": F.mse_loss(batch.prediction(model).float(), batch.targets)}


def state_bytes(model: torch.nn.Module) -> int:
    """Parameters + gradients + AdamW's two moments, float32."""
    return 4 * 4 * count_parameters(model)


def data_epoch(train_w: Windows, batch: int, device: torch.device) -> tuple[float, int]:
    """Seconds to gather every train batch of one epoch the trainer's way, and the peak RSS."""
    source = BatchSource(train_w.store, train_w.context_len, device, 2 << 30)
    rows = torch.from_numpy(train_w.target_rows).to(device)
    order = torch.from_numpy(epoch_order(len(train_w), 0, 1)).to(device)
    epoch_rows = rows[order]
    reset_peak()
    t = time.perf_counter()
    checksum = torch.zeros((), device=device)
    for start in range(0, len(train_w) - batch + 1, batch):
        b = source.batch(epoch_rows[start:start + batch], 1, 0)
        checksum += b.contexts[0, 0, 0] + b.targets[0, 0]  # keep the gather from being skipped
    float(checksum)
    return time.perf_counter() - t, peak_rss()


def baseline_fit(train_w: Windows, dense: bool) -> tuple[float, float, int, float]:
    """Seconds and peak RSS of the per-run fit of ridge and frame weights on the train windows
    (lvm_core.training.loop.fit_eval_baselines: normal equations streamed over chunks of windows), or
    with `dense` of the dense reference it replaced (the capped windows gathered whole, ridge
    by select_ridge_alpha + RidgeBaseline.fit on the design matrix). Wall and CPU seconds (the
    CPU time of this process, which a shared machine's load does not inflate), peak RSS, alpha."""
    from lvm_core.models.baselines import RidgeBaseline, select_ridge_alpha
    from lvm_core.models.fitted import fit_rows
    from lvm_core.training.validation import fit_eval_baselines

    gc.collect()
    reset_peak()
    t, cpu = time.perf_counter(), time.process_time()
    if dense:
        keep = fit_rows(len(train_w), 0)
        part = train_w if keep is None else train_w.subset(keep)
        ctx, tgt = part.batch()
        alpha, _ = select_ridge_alpha(ctx, tgt, part.article_pos, seed=0)
        RidgeBaseline().fit(ctx, tgt, alpha=alpha)
        del ctx, tgt
    else:
        alpha = fit_eval_baselines(train_w, 0).record["ridge"]["alpha"]
    return time.perf_counter() - t, time.process_time() - cpu, peak_rss(), alpha


def closed_form_start(train_w: Windows, whole: bool) -> tuple[float, int]:
    """Seconds and peak RSS of fitting a frame_weights model's start on the train windows
    (lvm_core.training.loop.fit_closed_form_start), or with `whole` the way the trainer did it
    before: every train window gathered, then `fit_on` (which keeps its capped subset)."""
    from lvm_core.models.start_at_baseline import FrameWeightsModel
    from lvm_core.training.loop import fit_closed_form_start

    model = FrameWeightsModel(train_w.store.dim, train_w.context_len)
    gc.collect()
    reset_peak()
    t = time.perf_counter()
    if whole:
        ctx, tgt = train_w.batch()
        model.fit_on(ctx, tgt, articles=train_w.article_pos, seed=0)
        del ctx, tgt
    else:
        fit_closed_form_start(model, train_w, 0)
    return time.perf_counter() - t, peak_rss()


def train_rate(name: str, params: dict, train_w: Windows, eval_w: Windows, device: torch.device, reason: str,
               steps: int, batch: int, bf16: bool, tmp: Path) -> tuple[float, int, int]:
    """samples/s of the real training loop over `steps` steps (after the first log point), its
    peak RSS, and the model + optimizer bytes."""
    torch.manual_seed(0)
    model = TransformerVectorPredictor(train_w.store.dim, train_w.context_len, **params)
    log_every = max(steps // 4, 1)
    cfg = TrainConfig(epochs=1, batch_size=batch, lr=1e-4, warmup_steps=0, device=str(device), log_every=log_every,
                      bf16=bf16, select_metric="val/cos")
    run = RunDir(tmp / f"run-{name.split()[0]}-{train_w.store.vectors.dtype}")
    run.path.mkdir()
    run.write_json("run.json", {"name": "bench"})
    setup = TrainSetup("bench", run, model, [LossTerm("mse", mse)], train_w, [EvalSet("val", eval_w)], cfg,
                       EvalConfig(max_samples=200), device=device, device_reason=reason,
                       checkpoint_meta={"arch": "transformer", "arch_params": params, "input_dim": train_w.store.dim,
                                        "context_len": train_w.context_len})
    reset_peak()
    rate = capped_rate(setup, steps)
    return rate, peak_rss(), state_bytes(model)


def capped_rate(setup: TrainSetup, steps: int) -> float:
    """Train until the first log point at or past `steps`; global samples/s between the first
    and the last log point (rank 0's view; 0.0 on the other ranks of a torchrun job)."""
    stop = threading.Event()  # set on rank 0; the other ranks follow at the next log point
    logged: list[tuple[int, float]] = []

    def sink(e) -> None:
        if e.kind == "StepLogged":
            logged.append((e.step, e.t))
            if e.step >= steps:
                stop.set()

    train(setup, sinks=[sink], stop_event=stop)
    if len(logged) < 2:
        return 0.0
    (s0, t0), (s1, t1) = logged[0], logged[-1]
    return (s1 - s0) * setup.config.batch_size * setup.config.grad_accum / (t1 - t0)


def fivecat_time(store: ArticleStore, val_rows: np.ndarray, ood_rows: np.ndarray, device: torch.device) -> float:
    from workbench.plugin_host import load_plugins

    host = load_plugins()
    gates = resolve_gates(lambda n: host.get("gate", n, source="bench"))
    model = TransformerVectorPredictor(store.dim, 5).to(device)
    t = time.perf_counter()
    run_battery(torch_predictor(model, device), {"val": (store, val_rows), "ood": (store, ood_rows)}, gates,
                samples=5000, horizon=5, context_len=5, seed=0)
    return time.perf_counter() - t


def warmed_up_rss(args: argparse.Namespace, device: torch.device, reason: str) -> int:
    """The process's RSS after both models trained a few steps on a tiny store: python, torch
    and the code pages of the kernels training uses, before any large store is opened. Reported
    beside the peaks, which include it."""
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp_s:
        tmp = Path(tmp_s)
        write_synthetic_store(tmp / "warm", 4000, args.dim, "float32")
        store = ArticleStore.open(tmp / "warm")
        w = make_windows(store, None, 5)
        for name, params in MODELS.items():
            train_rate(name, params, w, Windows(store, w.target_rows[:100], 5), device, reason, 4, args.batch,
                       args.bf16, tmp)
        del store, w
    gc.collect()
    return _status("VmRSS")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=SEED_ROWS)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--dtypes", default="float16,float32")
    ap.add_argument("--steps", type=int, default=20, help="optimizer steps measured per model (the epoch is extrapolated)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA only)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--skip-5cat", action="store_true")
    ap.add_argument("--skip-train", action="store_true", help="no training runs (store, data epoch and fits only)")
    ap.add_argument("--dense-fit", action="store_true",
                    help="also time the dense ridge fit the streamed one replaced (minutes and GiB at D = 768)")
    ap.add_argument("--dir", default=None, help="where to write the synthetic stores (default: a temporary folder)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, reason = select_device(args.device)
    base = warmed_up_rss(args, device, reason)
    print(f"device {device} ({reason}); torch {torch.__version__}, threads {torch.get_num_threads()}; "
          f"batch {args.batch}; bf16 {args.bf16}")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp_s:
        tmp = Path(tmp_s)
        for dtype in args.dtypes.split(","):
            path = tmp / f"store-{dtype}"
            t = time.perf_counter()
            write_synthetic_store(path, args.rows, args.dim, dtype)
            t_write = time.perf_counter() - t
            t = time.perf_counter()
            store = ArticleStore.open(path)
            t_open = time.perf_counter() - t
            store_bytes = int(np.asarray(store.vectors).nbytes)
            t = time.perf_counter()
            split = split_by_fractions(store, {"train": 0.8, "val": 0.1, "ood": 0.1}, seed=0)
            train_w = make_windows(store, split.positions(store, "train"), 5)
            val_w = make_windows(store, split.positions(store, "val"), 5)
            ood_w = make_windows(store, split.positions(store, "ood"), 5)
            t_windows = time.perf_counter() - t
            print(f"\n[{dtype}] {args.rows:,} x {args.dim} store, {gib(store_bytes)} of vectors, {store.n_articles:,} "
                  f"articles (written in {t_write:.1f} s)")
            print(f"  open {t_open * 1000:.1f} ms; split + windows {t_windows:.2f} s: {len(train_w):,} train, "
                  f"{len(val_w):,} val, {len(ood_w):,} ood windows")
            secs, peak = data_epoch(train_w, args.batch, device)
            print(f"  data epoch (gather only, {len(train_w) // args.batch:,} batches): {secs:.1f} s, "
                  f"{len(train_w) / secs:,.0f} windows/s, peak RSS {gib(peak)}")
            for dense in (False, True) if args.dense_fit else (False,):
                secs, cpu, peak_f, alpha = baseline_fit(train_w, dense)
                print(f"  baseline fit ({'dense reference' if dense else 'streamed'}, "
                      f"{min(len(train_w), MAX_FIT_WINDOWS):,} windows, alpha {alpha:g}): {secs:.1f} s "
                      f"({cpu:.1f} s CPU), peak RSS {gib(peak_f)}")
            for whole in (False, True) if args.dense_fit else (False,):
                secs, peak_s = closed_form_start(train_w, whole)
                how = "whole train part gathered" if whole else "fit windows only"
                print(f"  closed-form start (frame_weights model, {how}): {secs:.1f} s, peak RSS {gib(peak_s)}")
            eval_w = Windows(store, val_w.target_rows[:2000], 5)
            for name, params in ({} if args.skip_train else MODELS).items():
                rate, peak_t, state = train_rate(name, params, train_w, eval_w, device, reason, args.steps, args.batch,
                                                 args.bf16, tmp)
                target = 1.3 * store_bytes + state
                worst = max(peak, peak_t)
                print(f"  {name}: {rate:,.0f} samples/s over {args.steps} steps -> one epoch EXTRAPOLATED "
                      f"{len(train_w) / rate / 60:,.1f} min; peak RSS train {gib(peak_t)}, epoch max {gib(worst)} "
                      f"vs target {gib(target)} (1.3 x store + model/optimizer {gib(state)}): "
                      f"ratio {worst / target:.2f}, {(worst - base) / target:.2f} without the process's "
                      f"{gib(base)} after warm-up")
            if not args.skip_5cat:
                secs = fivecat_time(store, val_w.target_rows, ood_w.target_rows, device)
                print(f"  5CAT 5000 + 5000 samples, horizon 5, reference transformer: {secs:.1f} s")
            del store, train_w, val_w, ood_w, eval_w


if __name__ == "__main__":
    main()
