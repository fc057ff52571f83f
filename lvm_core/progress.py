"""The progress display of long passes over chunks (embedding a corpus, checking a store's
vectors): a bar with rate and ETA on a terminal, a plain line every few seconds in a log."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """A progress bar with rate and ETA on a terminal; a plain line every few seconds otherwise."""

    def __init__(self, total: int, label: str = "embedding", stream: TextIO | None = None,
                 interval: float = 5.0) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if not self.tty else 0.2
        self.done = 0
        self.cached = 0
        self.start = time.monotonic()
        self._last = 0.0

    def update(self, n: int, cached: bool = False) -> None:
        self.done += n
        if cached:
            self.cached += n
        now = time.monotonic()
        if now - self._last >= self.interval or self.done >= self.total:
            self._last = now
            self._draw(now)

    def rate(self, now: float | None = None) -> float:
        elapsed = (now or time.monotonic()) - self.start
        return (self.done - self.cached) / elapsed if elapsed > 0 else 0.0

    def line(self, now: float | None = None) -> str:
        rate = self.rate(now)
        left = self.total - self.done
        eta = _duration(left / rate) if rate > 0 and left > 0 else ("0s" if left <= 0 else "?")
        cached = f", {self.cached} cached" if self.cached else ""
        if self.tty:
            width = 30
            filled = int(width * self.done / self.total) if self.total else width
            bar = "#" * filled + "-" * (width - filled)
            return f"\r{self.label} [{bar}] {self.done}/{self.total} {rate:.1f} chunks/s ETA {eta}{cached}"
        return f"{self.label}: {self.done}/{self.total} chunks, {rate:.1f} chunks/s, ETA {eta}{cached}\n"

    def _draw(self, now: float) -> None:
        self.stream.write(self.line(now))
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
