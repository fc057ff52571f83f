"""Test plugin for tests/test_distributed.py (no clock involved in either hook).

- `on_checkpoint` SIGKILLs its own process right after the first `last` checkpoint when
  LVM_TEST_KILL_AFTER_LAST is set: a hard kill at a known point.
- the loss `rows_seen` records, per process, the store rows of each batch it trains on into
  LVM_TEST_ROWS_DIR/rank<RANK>.jsonl (it adds nothing to the loss: a `stat/` term).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import torch

from workbench.hookspecs import hookimpl


@hookimpl
def on_checkpoint(run, path, tag, metrics):
    if tag == "last" and os.environ.get("LVM_TEST_KILL_AFTER_LAST") and not (Path(run.path) / "killed").exists():
        (Path(run.path) / "killed").write_text("killed after the first last checkpoint\n")
        os.kill(os.getpid(), signal.SIGKILL)


def rows_seen():
    def strategy(batch, model):
        out = os.environ.get("LVM_TEST_ROWS_DIR")
        if out:
            line = json.dumps({"epoch": batch.epoch, "step": batch.step, "rows": batch.target_rows.tolist()})
            with open(Path(out) / f"rank{os.environ.get('RANK', '0')}.jsonl", "a") as fh:
                fh.write(line + "\n")
        return {"stat/rows": torch.zeros(())}

    return strategy


@hookimpl
def register_losses(register):
    register("rows_seen", rows_seen, description="test only: records the rows each process trains on")
