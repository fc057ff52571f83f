"""One process per run folder: an OS file lock (flock) on `<run>/.lock`.

The kernel drops the lock when its holder dies (even by kill -9), so a stale lock never blocks
a resume, and a live one always does. The file holds the holder's PID, for the message only.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import InputError

LOCK_NAME = ".lock"


class RunBusy(InputError):
    """Another live process holds the run folder."""


def holder_pid(folder: Path) -> str:
    try:
        return (folder / LOCK_NAME).read_text(encoding="ascii").strip() or "?"
    except OSError:
        return "?"


class RunLock:
    """An exclusive, non-blocking lock on a run folder; `release()` or process death frees it."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        path = self.folder / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunBusy(str(self.folder), f"in use by process {holder_pid(self.folder)} (it holds {path.name}); "
                                            "wait for it to end or stop it first") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __del__(self) -> None:  # a lock forgotten by a test or a crashed front end
        try:
            self.release()
        except Exception:  # noqa: BLE001
            pass


def check_not_busy(folder: str | os.PathLike[str]) -> None:
    """Raise RunBusy when a live process holds `folder` (without taking the lock)."""
    folder = Path(folder)
    if (folder / LOCK_NAME).is_file():
        RunLock(folder).acquire().release()
