"""Training inside the TUI vs headless on the same plan, and key-press latency while training.

    python benchmarks/bench_tui.py [--epochs 2] [--presses 40]

Prints, from one process: headless samples/s, TUI samples/s and their ratio (target >= 0.90),
and the time from a key press to the handled update while a run trains (target p95 < 100 ms).
Both runs train the same plan on the bundled demo store with the same thread count.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "data" / "python-docs-minilm"


def plan(epochs: int) -> dict:
    return {"name": "bench", "seed": 0,
            "data": {"store": str(DEMO), "context_len": 5, "split": {"fractions": {"train": 0.8, "val": 0.2}, "seed": 0}},
            "model": {"arch": "mlp", "params": {"hidden_dim": 512}},
            "loss": [{"name": "mse", "weight": 1.0}],
            "train": {"epochs": epochs, "batch_size": 64, "lr": 5e-4, "device": "cpu", "threads": 1, "log_every": 5}}


def samples_per_s(records: list[dict]) -> float:
    """Training throughput from the trainer's own StepLogged numbers (eval time excluded)."""
    rates = [r["samples_per_s"] for r in records if r.get("kind") == "StepLogged" and r.get("samples_per_s")]
    return statistics.median(rates)


def headless(p: dict, tmp: Path, host) -> float:
    from lvm_core.train import train
    from workbench import session

    records: list[dict] = []
    setup = session.prepare_run(session.plan_from_dict(p, tmp), host, run_dir=tmp / "runs" / "headless")
    train(setup, [lambda e: records.append(e.to_json())], threading.Event())
    return samples_per_s(records)


async def in_tui(p: dict, tmp: Path, host, presses: int) -> tuple[float, list[float]]:
    from workbench.tui.app import WorkbenchApp

    app = WorkbenchApp(host=host, runs_dir=tmp / "runs")
    latencies: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        app.start_run(p, tmp, run_dir=tmp / "runs" / "tui", resume=None)
        while app.train_pane.status in ("starting",):
            await pilot.pause(0.05)
        for i in range(presses):
            if not app.training:
                break
            before = app.train_pane.chart
            t0 = time.perf_counter()
            await pilot.press("m")  # toggle the val chart: a redraw of a plot
            while app.train_pane.chart == before:
                await pilot.pause()
            latencies.append((time.perf_counter() - t0) * 1000)
            await pilot.pause(0.1)
        await app.workers.wait_for_complete()
        await pilot.pause()
        return samples_per_s(app.train_pane.records), latencies


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--presses", type=int, default=40)
    args = ap.parse_args()
    if not DEMO.is_dir():
        print(f"needs the bundled demo store {DEMO}", file=sys.stderr)
        return 2
    from workbench.plugin_host import load_plugins

    host = load_plugins()
    p = plan(args.epochs)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        head = headless(p, tmp, host)
        tui, lat = asyncio.run(in_tui(p, tmp, host, args.presses))
    lat.sort()
    p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))] if lat else float("nan")
    print(f"plan: mlp hidden 512, batch 64, 1 thread, {args.epochs} epochs on {DEMO.name}")
    print(f"headless  {head:10.0f} samples/s (median of logged steps)")
    print(f"in TUI    {tui:10.0f} samples/s")
    print(f"ratio     {tui / head:10.3f}   (target >= 0.90)")
    print(f"key press -> handled update while training: n={len(lat)} median {statistics.median(lat) if lat else float('nan'):.1f} ms, "
          f"p95 {p95:.1f} ms, max {max(lat) if lat else float('nan'):.1f} ms   (target p95 < 100 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
