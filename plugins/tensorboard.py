"""The built-in TensorBoard event sink: scalars for every logged metric and baseline, so
`tensorboard --logdir runs/` shows any run. Off unless the plan says `[plugins] tensorboard =
true`; needs the extra: `pip install 'lvm-workbench[tensorboard]'`.

It is an ordinary event-hook plugin: it uses only the hooks and arguments a third-party sink gets.
Each run writes its event files under `<run>/tensorboard/`: the loss and each loss term, the
learning rate and the term weights at every logged step (`step/loss`, `step/loss/<term>`,
`step/lr`, `step/w/<term>`), the train averages at each epoch end (`epoch_avg/...`) and the
evaluation (model metrics, baselines, gates) at each evaluation, all at the optimizer step of
the event.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from workbench.api import hookimpl

SUBDIR = "tensorboard"
_writers: dict[Path, Any] = {}


def enabled(plan: Any) -> bool:
    return isinstance(plan, dict) and bool((plan.get("plugins") or {}).get("tensorboard"))


def _writer(run: Any) -> Any | None:
    if not enabled(getattr(run, "plan", None)):
        return None
    path = Path(run.path)
    if path not in _writers:
        from torch.utils.tensorboard import SummaryWriter  # the extra: tensorboard

        _writers[path] = SummaryWriter(log_dir=str(path / SUBDIR))
    return _writers[path]


def _scalars(run: Any, metrics: dict[str, Any], step: int, prefix: str = "") -> None:
    w = _writer(run)
    if w is None:
        return
    for name, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            w.add_scalar(prefix + name, float(value), step)
    w.flush()


@hookimpl
def on_run_start(run):
    _writer(run)


@hookimpl
def on_step_logged(run, step, metrics):
    _scalars(run, metrics, step, prefix="step/")


@hookimpl
def on_epoch_end(run, step, metrics):
    _scalars(run, metrics, step, prefix="epoch_avg/")


@hookimpl
def on_eval_end(run, step, metrics):
    _scalars(run, metrics, step)


@hookimpl
def on_run_end(run):
    w = _writers.pop(Path(run.path), None) if getattr(run, "path", None) else None
    if w is not None:
        w.close()
