"""One real-terminal smoke test: tmux runs `lvm-workbench`, keys load the tiny plan and train
it on the bundled demo store, the screen shows the finished run, and `q` quits."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import DEMO_STORE

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.skipif(not DEMO_STORE.is_dir(), reason="bundled demo store not built yet"),
]

PLAN = f"""name = "tiny"
seed = 0
[data]
store = "{DEMO_STORE}"
context_len = 5
[data.split]
fractions = {{ train = 0.8, val = 0.2 }}
seed = 0
[model]
arch = "mlp"
[model.params]
hidden_dim = 32
[[loss]]
name = "mse"
weight = 1.0
[train]
epochs = 1
batch_size = 64
device = "cpu"
threads = 1
log_every = 10
"""


def _screen(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def _wait_for(session: str, text: str, timeout: float) -> str:
    end = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < end:
        screen = _screen(session)
        if text in screen:
            return screen
        time.sleep(0.3)
    raise AssertionError(f"{text!r} not on screen after {timeout}s:\n{screen}")


def test_tmux_load_train_see_the_finished_run_and_quit(tmp_path):
    plan = tmp_path / "tiny.toml"
    plan.write_text(PLAN, encoding="utf-8")
    session = f"lvmwb{int(time.time() * 1000) % 10**8}"
    exe = Path(sys.executable).with_name("lvm-workbench")
    cmd = f"cd {tmp_path} && LVM_WORKBENCH_STATE_DIR={tmp_path}/state TEXTUAL_ANIMATIONS=none {exe}; sleep 30"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", cmd], check=True)
    try:
        subprocess.run(["tmux", "set", "-s", "escape-time", "0"], check=True)
        _wait_for(session, "Load plan", 60)
        subprocess.run(["tmux", "send-keys", "-t", session, "C-o"], check=True)
        _wait_for(session, "Load a plan file", 10)
        subprocess.run(["tmux", "send-keys", "-t", session, "-l", str(plan)], check=True)
        subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)
        _wait_for(session, "loaded", 10)  # then the path, wrapped at 80 columns
        subprocess.run(["tmux", "send-keys", "-t", session, "C-t"], check=True)
        _wait_for(session, "run completed at step", 180)
        time.sleep(0.5)
        screen = _screen(session)
        assert re.search(r"completed · step (\d+)/\1\b", screen) and "on cpu" in screen and "val margin_vs_last" in screen
        subprocess.run(["tmux", "send-keys", "-t", session, "5"], check=True)  # the Runs screen
        screen = _wait_for(session, "1 runs in", 10)
        assert "completed" in screen
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        end = time.monotonic() + 10
        while time.monotonic() < end and "Runs" in _screen(session):
            time.sleep(0.2)
        assert "Plugins" not in _screen(session)  # the app is gone; the shell's sleep holds the pane
        assert list((tmp_path / "runs").glob("tiny-*/checkpoints/best.safetensors"))
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
