"""Fixtures for the TUI tests: a scripted trainer that emits real trainer events, and run
directories written the way the trainer writes them."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import tomli_w

from lvm_core.events import Alert, CheckpointSaved, EpochEnded, EvalDone, RunEnded, RunStarted, StepLogged


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
            "val/cos": 0.4 + 0.05 * epoch, "val/margin": -0.1 + 0.05 * epoch, "val/R@1": 0.2,
            "val/copy_last/cos": 0.6, "val/copy_last/margin": -0.4,
            "val/context_mean/cos": 0.55, "val/context_mean/margin": -0.2}))
        if epoch == 1:
            out.append(Alert(epoch=epoch, step=step, level="warning", code="collapse", message="val/cos fell by 0.1"))
    out.append(CheckpointSaved(epoch=epochs - 1, step=step, path=f"{run_dir}/checkpoints/last.safetensors", tag="last"))
    out.append(RunEnded(status="completed", step=step, epoch=epochs - 1))
    return out


class ScriptedTrainer:
    """Stands in for `run_with_engine`: emits scripted events; with `wait_for_stop`, it keeps
    running until the stop event is set and then ends "stopped", as the real trainer does."""

    def __init__(self, wait_for_stop: bool = False) -> None:
        self.wait_for_stop = wait_for_stop
        self.calls: list[dict[str, Any]] = []
        self.started = threading.Event()

    def __call__(self, plan, plan_dir, host, sinks, stop_event, run_dir, resume):
        self.calls.append({"plan": plan, "plan_dir": plan_dir, "run_dir": run_dir, "resume": resume})
        events = scripted_events(str(run_dir))
        for ev in events[:-2]:
            for sink in sinks:
                sink(ev)
        self.started.set()
        if self.wait_for_stop:
            stop_event.wait(30)  # bounded: a failing test must not leave a thread that blocks exit
            end = RunEnded(status="stopped", step=events[-1].step, epoch=events[-1].epoch)
        else:
            end = events[-1]
        for sink in sinks:
            sink(end)
        return {"status": end.status}


def write_run(path: Path, *, status: str, plan: dict[str, Any], margins: list[float],
              gates: dict[str, Any] | None = None, checkpoint: bool = False) -> Path:
    """A run directory as the trainer leaves it (run.json, plan.toml, metrics.jsonl, events.jsonl)."""
    path.mkdir(parents=True)
    (path / "plan.toml").write_text(tomli_w.dumps(plan), encoding="utf-8")
    (path / "run.json").write_text(json.dumps({"status": status, "name": plan.get("name", "run"), "duration_s": 12.0,
                                               "started": "2026-01-01T00:00:00Z",
                                               "best": {"metric": "val/margin", "value": max(margins)}}))
    t = time.time()
    with (path / "metrics.jsonl").open("w", encoding="utf-8") as fh:
        for epoch, m in enumerate(margins):
            fh.write(json.dumps(EvalDone(epoch=epoch, step=10 * (epoch + 1), t=t + epoch,
                                         metrics={"val/margin": m, "val/cos": 0.5 + m}).to_json()) + "\n")
    (path / "events.jsonl").write_text("", encoding="utf-8")
    if gates is not None:
        (path / "gates.json").write_text(json.dumps(gates))
    if checkpoint:
        (path / "checkpoints").mkdir()
        (path / "checkpoints" / "last.safetensors").write_bytes(b"")
    return path
