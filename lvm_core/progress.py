"""Progress for people at a console: one duration format, one bar, one redrawn status line.

The store builder (chunks embedded), the store's NaN/Inf scan and the headless trainer (steps trained) show a bar
with rate and ETA on a terminal and plain lines in a log; the TUI shows the same durations.
Everything here is plain text on a stream (no rich, no Textual: lvm_core stays UI-free).
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

BAR_WIDTH = 24


def format_duration(seconds: float | None) -> str:
    """'m:ss', or 'h:mm:ss' from an hour on; '-' when unknown (None, NaN, infinite, negative)."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """'[######..................]': `fraction` (clamped to 0..1) of `width` cells, rounded down."""
    filled = int(width * min(max(fraction, 0.0), 1.0)) if fraction == fraction else 0
    return f"[{'#' * filled}{'.' * (width - filled)}]"


class StatusLine:
    """Writes progress to `stream`: on a terminal one line redrawn in place (`redraw`), in a log
    plain lines; `line` prints a permanent line (ending a redrawn one first)."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.out = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.out, "isatty", lambda: False)()) if tty is None else tty
        self.open = False

    def redraw(self, text: str) -> None:
        """The progress line: redrawn in place on a terminal, a plain line otherwise."""
        if not self.tty:
            self.line(text)
            return
        self.out.write(f"\r{text}\x1b[K")
        self.out.flush()
        self.open = True

    def line(self, text: str) -> None:
        self.close()
        self.out.write(text + "\n")
        self.out.flush()

    def close(self) -> None:
        """End a redrawn line, so what follows starts on a line of its own."""
        if self.open:
            self.out.write("\n")
            self.out.flush()
            self.open = False


class Progress:
    """Counts work done toward `total` and shows it with rate and ETA: a redrawn bar on a
    terminal (at most 5 times a second), a plain line every `interval` seconds otherwise.
    `cached` work counts as done but not toward the rate."""

    def __init__(self, total: int, label: str = "embedding", stream: TextIO | None = None,
                 interval: float = 5.0, unit: str = "chunks") -> None:
        self.total, self.label, self.unit = total, label, unit
        self.status = StatusLine(stream)
        self.tty = self.status.tty
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
            self.status.redraw(self.line(now))

    def rate(self, now: float | None = None) -> float:
        elapsed = (now or time.monotonic()) - self.start
        return (self.done - self.cached) / elapsed if elapsed > 0 else 0.0

    def line(self, now: float | None = None) -> str:
        rate = self.rate(now)
        left = self.total - self.done
        eta = format_duration(left / rate) if rate > 0 and left > 0 else ("0:00" if left <= 0 else "-")
        cached = f", {self.cached} cached" if self.cached else ""
        if self.tty:
            frac = self.done / self.total if self.total else 1.0
            return (f"{self.label} {progress_bar(frac)} {self.done}/{self.total} {rate:.1f} {self.unit}/s "
                    f"ETA {eta}{cached}")
        return f"{self.label}: {self.done}/{self.total} {self.unit}, {rate:.1f} {self.unit}/s, ETA {eta}{cached}"

    def close(self) -> None:
        self.status.close()
