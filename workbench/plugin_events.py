"""The plugin event sink: trainer events handed to the plugins' event hooks, each plugin isolated.

It sits beside the plugin host (plugin_host.py); run preparation (run_prep.py) adds one to every
run's sinks. Values a hook logs go to the run's metrics.jsonl, namespaced by plugin.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lvm_core.events import CheckpointSaved, EpochEnded, EvalDone, Event, RunEnded, RunStarted, StepLogged
from lvm_core.rundir import METRICS, RunDir

from .plugin_host import PluginHost


@dataclass
class RunInfo:
    """What event hooks receive as `run`: the run directory, the plan's name, the resolved plan."""

    path: Path
    name: str
    plan: dict[str, Any]


class PluginHookError(Exception):
    """Event hooks that raised; the trainer turns this into an Alert naming the plugins."""

    code = "plugin_error"


class PluginEventSink:
    """Calls the plugins' event hooks for trainer events, each plugin isolated from the others."""

    def __init__(self, host: PluginHost, run: RunInfo) -> None:
        self.host, self.run = host, run

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            hook, kwargs = "on_run_start", {"plan": self.run.plan}
        elif isinstance(event, StepLogged):
            hook, kwargs = "on_step_logged", {"epoch": event.epoch, "step": event.step, "metrics": event.metrics}
        elif isinstance(event, EpochEnded):
            hook, kwargs = "on_epoch_end", {"epoch": event.epoch, "step": event.step, "metrics": event.metrics}
        elif isinstance(event, EvalDone):
            hook, kwargs = "on_eval_end", {"epoch": event.epoch, "step": event.step, "metrics": event.metrics}
        elif isinstance(event, CheckpointSaved):
            hook, kwargs = "on_checkpoint", {"path": event.path, "tag": event.tag,
                                             "metrics": {event.metric: event.value} if event.metric else {}}
        elif isinstance(event, RunEnded):
            hook, kwargs = "on_run_end", {"status": event.status}
        else:
            return
        logged: dict[str, dict[str, float]] = {}
        failures = self.host.emit(hook, log_for=lambda plugin: _plugin_logger(plugin, logged), run=self.run, **kwargs)
        for plugin, values in logged.items():
            line = {"kind": "PluginMetrics", "t": time.time(), "plugin": plugin, "hook": hook,
                    "epoch": getattr(event, "epoch", None), "step": getattr(event, "step", None), "metrics": values}
            RunDir(self.run.path).append(METRICS, json.dumps(line, allow_nan=False))
        if failures:
            at = f" at step {event.step}" if getattr(event, "step", None) is not None else ""
            raise PluginHookError("; ".join(f"{self.host.origin(f.plugin)} raised in {f.stage}{at}: {f.error}"
                                            for f in failures))


def _plugin_logger(plugin: str, logged: dict[str, dict[str, float]]) -> Any:
    """The `log(name, value)` callback an event hook receives: finite numbers only, namespaced
    `plugin/<plugin>/<name>`."""

    def log(name: str, value: float) -> None:
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"log({name!r}, {value!r}): expected a finite number")
        logged.setdefault(plugin, {})[f"plugin/{plugin}/{name}"] = v

    return log
