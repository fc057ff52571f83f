"""A double Ctrl-C on a headless run (issue 11): exit 130, no traceback, no "Exception ignored in
atexit callback", and the run resumes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, make_tiny_store

PLAN = """name = "ctrlc"
seed = 0
[data]
store = "tiny"
context_len = 3
[model]
arch = "mlp"
params = { hidden_dim = 64, dropout = 0.1 }
[[loss]]
name = "mse"
[train]
epochs = 400
batch_size = 4
device = "cpu"
log_every = 1
"""


@pytest.mark.slow
@pytest.mark.parametrize("gap", [0.0, 0.05, 0.3])
def test_double_ctrl_c_exits_130_without_a_traceback(tmp_path, gap):
    make_tiny_store(tmp_path / "tiny", lengths=(12,) * 10, dim=16)
    (tmp_path / "plan.toml").write_text(PLAN)
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "--run", str(tmp_path / "plan.toml"),
                             "--run-dir", str(run_dir)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:  # wait until it trains
        lines.append(line)
        if line.startswith("epoch 1/400 step"):
            break
    for _ in range(3):
        proc.send_signal(signal.SIGINT)
        time.sleep(gap)
    rest = proc.stderr.read()
    proc.wait(60)
    err = "".join(lines) + rest
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert (run_dir / "run.json").is_file()


SECOND_PRESS_INSIDE_THE_FIRST = """
import io, os, signal, threading
from workbench.headless import stop_on_ctrl_c
stop = threading.Event()
real_set = stop.set
def set_with_a_second_press():
    with stop._cond:  # what Event.set holds when the second press lands
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10000):
            pass
    real_set()
stop.set = set_with_a_second_press
try:
    with stop_on_ctrl_c(stop, io.StringIO()):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100000):
            pass
    print("not aborted")
except KeyboardInterrupt:
    print("aborted")
"""


def test_a_second_press_inside_the_first_handler_aborts_instead_of_deadlocking():
    """The second SIGINT can arrive while the first handler is inside stop.set() (holding the
    Event's lock): asking the Event again there deadlocked the run (seen on a fresh clone)."""
    done = subprocess.run([sys.executable, "-c", SECOND_PRESS_INSIDE_THE_FIRST], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.strip() == "aborted", done.stderr
