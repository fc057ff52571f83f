"""Training from the TUI vs headless on the same plan, and key-press latency while training.

    python benchmarks/bench_tui.py [--epochs 8] [--repeat 3] [--presses 40] [--nice 0 5] [--thread]

Prints, from one process: headless samples/s (`lvm-workbench --run`) and samples/s of the same
plan started from the TUI (which runs that same command as its child process) while the Train
screen follows it, in alternating pairs, with their ratio (target >= 0.90); then, in further
runs, the time from a key press to the first frame drawn after its handler ran while the run
trains (target p95 < 100 ms), with the throughput of those runs (ratio to the last headless
run; the presses redraw a chart each, so these runs are slower). `--thread` adds the old design for comparison: the
trainer in a thread of the app's process, its events drained into the Train screen 5 times a
second.

Latency is timed without Pilot.press, whose wait_for_idle() sleeps up to 1 s twice per key
while another thread of the process is busy (that, not the app, made the first measurements
read 2 s). The key event goes straight to the driver's queue, as a terminal's would; a frame is
an App._display call, rendered to terminal segments here since the headless driver skips that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import tomli_w

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
    return statistics.median(rates) if rates else float("nan")


def headless(plan_file: Path, run_dir: Path) -> float:
    """`lvm-workbench --run PLAN --run-dir D`, exactly the command the TUI starts."""
    subprocess.run([sys.executable, "-m", "workbench.cli", "--run", str(plan_file), "--run-dir", str(run_dir)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return samples_per_s([json.loads(x) for x in lines if x.strip()])


class FrameClock:
    """Times the first frame drawn after a key's handler changed the app's state."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.changed: Callable[[], bool] | None = None
        self.drawn_at: float | None = None
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            if renderable is not None:
                if hasattr(renderable, "render_segments"):  # the terminal output a real driver would write
                    renderable.render_segments(app.console)
                if self.changed is not None and self.drawn_at is None and self.changed():
                    self.drawn_at = time.perf_counter()
            original(screen, renderable)

        app._display = display

    async def press(self, key: str, changed: Callable[[], bool], timeout: float = 10.0) -> float | None:
        from textual import events

        self.changed, self.drawn_at = changed, None
        t0 = time.perf_counter()
        key_event = events.Key(key, key)
        key_event.set_sender(self.app)
        self.app._driver.send_message(key_event)
        while self.drawn_at is None and time.perf_counter() - t0 < timeout:
            await asyncio.sleep(0.001)
        self.changed = None
        return None if self.drawn_at is None else (self.drawn_at - t0) * 1000


async def in_tui(p: dict, tmp: Path, host: Any, presses: int, nice: int, thread: bool) -> tuple[float, list[float]]:
    from workbench.tui.app import WorkbenchApp

    app = WorkbenchApp(host=host, runs_dir=tmp / "runs", child_nice=nice)
    latencies: list[float] = []
    async with app.run_test(size=(120, 40)):
        clock = FrameClock(app)
        pane = app.train_pane
        done = threading.Event()
        if thread:
            _start_thread_trainer(app, p, tmp, host, done)
            running = lambda: not done.is_set()  # noqa: E731
        else:
            app.start_run(p, tmp, run_dir=app.new_run_dir(f"tui-nice{nice}"), resume=None)
            running = lambda: app.training  # noqa: E731
        end = time.monotonic() + 120
        while pane.step < 10 and running() and time.monotonic() < end:  # past start-up: training in full swing
            await asyncio.sleep(0.05)
        app.action_tab("train")
        for _ in range(presses):
            if not running():
                break
            before = pane.chart
            ms = await clock.press("m", lambda: pane.chart != before)  # toggles the val chart and redraws it
            if ms is not None:
                latencies.append(ms)
            await asyncio.sleep(0.1)
        while running() and time.monotonic() < end:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        if pane.status != "completed":
            raise SystemExit(f"the run in the TUI ended {pane.status}: {app.result}")
        return samples_per_s(pane.records), latencies


def _start_thread_trainer(app: Any, p: dict, tmp: Path, host: Any, done: threading.Event) -> None:
    """The old design, for comparison: train() in a thread, events drained 5 times a second."""
    from lvm_core.training.loop import train
    from workbench.plan import plan_from_dict
    from workbench.run_prep import prepare_run

    buffered: list[dict] = []
    lock = threading.Lock()

    def sink(event: Any) -> None:
        with lock:
            buffered.append(event.to_json())

    def drain() -> None:
        with lock:
            got, buffered[:] = list(buffered), []
        if got:
            app.train_pane.add_records(got)

    app.train_pane.reset("thread")
    app.set_interval(0.2, drain)
    setup = prepare_run(plan_from_dict(p, tmp), host, run_dir=tmp / "runs" / "tui-thread")
    threading.Thread(target=lambda: (train(setup, [sink], threading.Event()), drain(), done.set()), daemon=True).start()


def p95(values: list[float]) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))] if s else float("nan")


def report(label: str, rate: float, head: float, lat: list[float]) -> None:
    med = statistics.median(lat) if lat else float("nan")
    print(f"{label:<22} {rate:8.0f} samples/s  ratio {rate / head:5.3f}  key->frame n={len(lat)} "
          f"median {med:6.1f} ms  p95 {p95(lat):6.1f} ms  max {max(lat) if lat else float('nan'):6.1f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--presses", type=int, default=40)
    ap.add_argument("--nice", type=int, nargs="*", default=[0], help="child niceness values to measure")
    ap.add_argument("--repeat", type=int, default=3, help="headless/TUI pairs for the throughput ratio")
    ap.add_argument("--thread", action="store_true", help="also measure the trainer in a thread of the app")
    args = ap.parse_args()
    if not DEMO.is_dir():
        print(f"needs the bundled demo store {DEMO}", file=sys.stderr)
        return 2
    from workbench.plugin_host import load_plugins

    host = load_plugins()
    p = plan(args.epochs)
    print(f"plan: mlp hidden 512, batch 64, 1 thread, {args.epochs} epochs on {DEMO.name}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    print("targets: ratio >= 0.90, key->frame p95 < 100 ms")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        plan_file = tmp / "bench.toml"
        plan_file.write_text(tomli_w.dumps(p), encoding="utf-8")
        ratios = []
        for i in range(args.repeat):  # alternate, so a change in the machine's load hits both
            head = headless(plan_file, tmp / "runs" / f"headless-{i}")
            rate, _ = asyncio.run(in_tui(p, tmp, host, 0, 0, thread=False))
            ratios.append(rate / head)
            print(f"pair {i}: headless (--run) {head:8.0f} samples/s, TUI watching its child {rate:8.0f} samples/s, "
                  f"ratio {rate / head:5.3f}  (load {os.getloadavg()[0]:.2f})")
        print(f"throughput ratio TUI/headless: median {statistics.median(ratios):.3f} of {len(ratios)} pairs")
        for nice in args.nice:
            rate, lat = asyncio.run(in_tui(p, tmp, host, args.presses, nice, thread=False))
            report(f"TUI, child nice {nice}", rate, head, lat)
        if args.thread:
            rate, lat = asyncio.run(in_tui(p, tmp, host, args.presses, 0, thread=True))
            report("TUI, trainer thread", rate, head, lat)
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
