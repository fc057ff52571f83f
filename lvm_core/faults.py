"""Fault injection for the reliability tests: every file write of a run passes `write_point`.

    LVM_FAULT_KILL_AT=N     the process kills itself (SIGKILL) at the Nth write point
    LVM_FAULT_ENOSPC_AT=N   the Nth write point fails with OSError(ENOSPC, "No space left on device")
    LVM_FAULT_LOG=FILE      each write point appends its path to FILE (to count a run's write points)

Counted per process. Unset (the normal case) this costs one dict lookup per write.
"""

from __future__ import annotations

import errno
import os
import signal

_count = 0


def write_point(path: object) -> None:
    """Called just before a write becomes visible (a rename, a log line)."""
    global _count
    env = os.environ
    if "LVM_FAULT_KILL_AT" not in env and "LVM_FAULT_ENOSPC_AT" not in env and "LVM_FAULT_LOG" not in env:
        return
    _count += 1
    log = env.get("LVM_FAULT_LOG")
    if log:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{_count}\t{path}\n".encode())
        finally:
            os.close(fd)
    if env.get("LVM_FAULT_KILL_AT") == str(_count):
        os.kill(os.getpid(), signal.SIGKILL)
    if env.get("LVM_FAULT_ENOSPC_AT") == str(_count):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def reset() -> None:
    """Start counting from zero again (a forked test child)."""
    global _count
    _count = 0
