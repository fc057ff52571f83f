"""A training run in a child process, the way a person runs it headless.

The TUI starts `python -m workbench.cli --run PLAN --run-dir D` (or `--resume D`) and follows
D/metrics.jsonl and D/events.jsonl like any other run. Training in its own process keeps the
trainer's numpy/torch work from competing with the UI for the GIL: the screen stays responsive
and the run trains at headless speed. Stop is SIGINT, which the headless trainer answers by
saving `last` and ending "stopped". No Textual here, so it is tested on its own.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

#: (plan file or None, run directory, resume?) -> argv of the child
Command = Callable[[Path | None, Path, bool], Sequence[str]]


def headless_command(plan_file: Path | None, run_dir: Path, resume: bool) -> list[str]:
    """`lvm-workbench --run PLAN --run-dir D` or `--resume D`, through this interpreter
    (works without the console script on PATH)."""
    cmd = [sys.executable, "-m", "workbench.cli"]
    if resume:
        return [*cmd, "--resume", str(run_dir)]
    assert plan_file is not None
    return [*cmd, "--run", str(plan_file), "--run-dir", str(run_dir)]


class ChildRun:
    """One child process with its output in a private log file (a pipe nobody reads would
    block the child once full). `workdir` holds the plan file and the log; `cleanup()` removes it."""

    def __init__(self, argv: Sequence[str], workdir: Path, *, nice: int = 0) -> None:
        self.argv = list(argv)
        self.workdir = workdir
        self.log_path = workdir / "child.log"
        self.started = time.monotonic()
        log = self.log_path.open("wb")
        try:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # terminal signals go to the app; the app decides what the child gets
                preexec_fn=(lambda: os.nice(nice)) if nice > 0 else None,
            )
        finally:
            log.close()

    @staticmethod
    def make_workdir() -> Path:
        return Path(tempfile.mkdtemp(prefix="lvm-workbench-run-"))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""
        return self.proc.poll()

    def stop(self) -> None:
        """Ask the run to stop: the headless trainer saves `last` and ends "stopped"."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop_and_wait(self, timeout: float) -> int:
        """Stop, wait up to `timeout` s for the checkpoint to be saved, then kill."""
        self.stop()
        code = self.wait(timeout)
        if code is None:
            self.proc.kill()
            code = self.proc.wait(5)
        return code

    def log_tail(self, lines: int = 8) -> str:
        """The last lines the child printed (a traceback ends here), for the message shown."""
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(max(0, self.log_path.stat().st_size - 8192))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        kept = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
        return "\n".join(kept[-lines:])

    def cleanup(self) -> None:
        self.cleanup_dir(self.workdir)

    @staticmethod
    def cleanup_dir(workdir: Path) -> None:
        shutil.rmtree(workdir, ignore_errors=True)


def exit_reason(code: int) -> str:
    """A child's exit code in words (workbench/exit_codes.py; negative: killed by a signal)."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return {0: "done", 1: "failed", 2: "bad input", 3: "a required gate failed or a stop tripwire fired",
            130: "interrupted"}.get(code, f"exit code {code}")
