"""Run under torchrun by tests/test_distributed.py: the threads of this process before the
process group, and after a DDP step and `distributed.shutdown` (they must be the same)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from lvm_core.training import distributed


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def main() -> None:
    before = threads()
    d = distributed.init("cpu")
    net = distributed.wrap(d, torch.nn.Linear(4, 2), torch.device("cpu"))  # DDP
    net(torch.randn(8, 4)).sum().backward()
    distributed.broadcast_json(d, {"done": True})
    del net
    distributed.shutdown(d)
    report = {"rank": d.rank, "before": before, "after": threads()}
    (Path(os.environ["LVM_TEST_PROBE_DIR"]) / f"rank{d.rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
