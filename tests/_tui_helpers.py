"""Fixtures for the TUI tests: a scripted child run that writes real trainer events into its
run directory, and run directories written the way the trainer writes them.

Run as a script (`python _tui_helpers.py MODE RUN_DIR`) it is that child process."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import tomli
import tomli_w

from workbench.hookspecs import hookimpl
from lvm_core.events import Alert, CheckpointSaved, EpochEnded, EvalDone, RunEnded, RunStarted, StepLogged


@pytest.fixture(autouse=True)
def tui_state_dir(tmp_path, monkeypatch):
    """Each TUI test gets its own recent-stores state and working directory (runs/ lands there).
    Import it into a test module to use it there."""
    monkeypatch.setenv("LVM_WORKBENCH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def host():
    from workbench.plugin_host import load_plugins

    return load_plugins()


async def settle(pilot, app, rounds: int = 3) -> None:
    """Let workers finish and the message queue drain, a few times over."""
    from textual.worker import WorkerCancelled

    for _ in range(rounds):
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:  # an exclusive worker (the parameter count) replaced by a newer one
            pass
        await pilot.pause()


async def until(pilot, cond, timeout: float = 10.0) -> bool:
    """Let the app run until `cond()` holds (bounded)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        await pilot.pause(0.05)
    return cond()


def scripted_events(run_dir: str, epochs: int = 3, steps_per_epoch: int = 4) -> list[Any]:
    """The events of a small run whose margin rises from -0.1 by 0.05 per epoch."""
    total = epochs * steps_per_epoch
    out: list[Any] = [RunStarted(run_dir=run_dir, name="scripted", device="cpu", device_reason="no cuda",
                                 total_steps=total, epochs=epochs)]
    step = 0
    for epoch in range(epochs):
        for _ in range(steps_per_epoch):
            step += 1
            out.append(StepLogged(step=step, epoch=epoch, total_steps=total,
                                  metrics={"loss": 1.0 / step, "loss/mse": 0.5 / step}, samples_per_s=100.0))
        out.append(EpochEnded(epoch=epoch, step=step, metrics={"loss": 1.0 / step}))
        out.append(EvalDone(epoch=epoch, step=step, metrics={
            "val/cos": 0.4 + 0.05 * epoch, "val/margin_vs_last": -0.1 + 0.05 * epoch, "val/R@1_no_context": 0.2,
            "val/copy_last/cos": 0.6, "val/copy_last/margin_vs_last": -0.4,
            "val/context_mean/cos": 0.55, "val/context_mean/margin_vs_last": -0.2}))
        if epoch == 1:
            out.append(Alert(epoch=epoch, step=step, level="warning", code="collapse", message="val/cos fell by 0.1"))
    out.append(CheckpointSaved(epoch=epochs - 1, step=step, path=f"{run_dir}/checkpoints/last.safetensors", tag="last"))
    out.append(RunEnded(status="completed", step=step, epoch=epochs - 1))
    return out


METRICS_KINDS = {"StepLogged", "EpochEnded", "EvalDone"}


def append_events(run_dir: Path, events: list[Any]) -> None:
    """Append events to the run's files the way the trainer's JSONL sinks split them."""
    for ev in events:
        name = "metrics.jsonl" if ev.kind in METRICS_KINDS else "events.jsonl"
        with (run_dir / name).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(ev.to_json()) + "\n")


class BrokenLosses:
    """A plugin whose loss registration raises: the host disables it, the app keeps working."""

    @hookimpl
    def register_losses(self, register):
        raise RuntimeError("cannot import my_cuda_kernel")


class ScriptedRun:
    """Stands in for `headless_command`: the app starts this file as its child process, which
    writes the scripted events into the run directory as the trainer would. Modes: "complete";
    "wait" (runs until SIGINT, then ends "stopped" with exit 130 like the headless trainer);
    "crash" (writes RunStarted, prints a traceback and exits 1, without a RunEnded); "slow" (like
    "wait", after a second with Python's default SIGINT handler, as the real child while importing)."""

    def __init__(self, mode: str = "complete") -> None:
        self.mode = mode
        self.calls: list[dict[str, Any]] = []

    def __call__(self, plan_file: Path | None, run_dir: Path, resume: bool) -> list[str]:
        plan = tomli.loads(plan_file.read_text(encoding="utf-8")) if plan_file else None
        self.calls.append({"plan": plan, "run_dir": run_dir, "resume": resume})
        return [sys.executable, __file__, self.mode, str(run_dir)]

    def started(self, run_dir: Path, timeout: float = 10.0) -> bool:
        """Wait (bounded) until the child has written its first events."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if (run_dir / "metrics.jsonl").exists():
                return True
            time.sleep(0.02)
        return False


def _scripted_child(mode: str, run_dir: Path) -> int:
    stop = threading.Event()
    if mode == "slow":  # like the real child while it imports torch: a SIGINT now is a KeyboardInterrupt
        time.sleep(1.0)
        mode = "wait"
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_text(json.dumps({"status": "running", "name": "scripted"}))
    events = scripted_events(str(run_dir))
    if mode == "crash":
        append_events(run_dir, events[:1])
        print("Traceback (most recent call last):\n  File \"train.py\", line 1\nRuntimeError: CUDA out of memory",
              file=sys.stderr, flush=True)
        return 1
    append_events(run_dir, events[:-2])
    if mode == "wait":
        stop.wait(30)  # bounded: a failing test must not leave a process behind
        end = RunEnded(status="stopped", step=events[-1].step, epoch=events[-1].epoch)
        append_events(run_dir, [events[-2], end])
        (run_dir / "run.json").write_text(json.dumps({"status": "stopped", "name": "scripted"}))
        return 130
    append_events(run_dir, events[-2:])
    (run_dir / "run.json").write_text(json.dumps({"status": "completed", "name": "scripted"}))
    return 0


def write_run(path: Path, *, status: str, plan: dict[str, Any], margins: list[float],
              gates: dict[str, Any] | None = None, checkpoint: bool = False,
              extra: list[dict[str, Any]] = ()) -> Path:
    """A run directory as the trainer left it before the metric rename (run.json, plan.toml,
    plan.resolved.json, metrics.jsonl with "val/margin" and the baselines beside the model,
    events.jsonl): the TUI reads it under the current names. With `checkpoint` a complete
    checkpoint generation of a tiny model; `extra`: more metrics.jsonl lines."""
    path.mkdir(parents=True)
    (path / "plan.toml").write_text(tomli_w.dumps(plan), encoding="utf-8")
    (path / "plan.resolved.json").write_text(json.dumps(plan), encoding="utf-8")
    best = max(range(len(margins)), key=lambda e: margins[e])
    (path / "run.json").write_text(json.dumps({"status": status, "name": plan.get("name", "run"), "duration_s": 12.0,
                                               "started": "2026-01-01T00:00:00Z",
                                               "best": {"metric": "val/cos", "value": 0.5 + margins[best],
                                                        "epoch": best}}))
    t = time.time()
    with (path / "metrics.jsonl").open("w", encoding="utf-8") as fh:
        for epoch, m in enumerate(margins):
            fh.write(json.dumps(EvalDone(epoch=epoch, step=10 * (epoch + 1), t=t + epoch, metrics={
                "val/margin": m, "val/cos": 0.5 + m, "val/copy_last/cos": 0.55,
                "val/context_mean/cos": 0.58}).to_json()) + "\n")
        for line in extra:
            fh.write(json.dumps(line) + "\n")
    (path / "events.jsonl").write_text("", encoding="utf-8")
    if gates is not None:
        (path / "gates.json").write_text(json.dumps(gates))
    if checkpoint:
        import torch

        from lvm_core.training.checkpointer import Checkpointer

        meta = {"arch": "linear", "arch_params": {}, "input_dim": 2, "context_len": 1, "step": 10 * len(margins),
                "epoch": len(margins) - 1}
        Checkpointer(path / "checkpoints").save("last", torch.nn.Linear(2, 2), meta, {"step": meta["step"]})
    return path


if __name__ == "__main__":
    sys.exit(_scripted_child(sys.argv[1], Path(sys.argv[2])))
