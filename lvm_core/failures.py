"""What a run leaves when it fails unexpectedly: one reason line for run.json and the console,
and the full traceback in `<run>/traceback.txt` (printed only with --debug)."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from .atomic import write_text
from .errors import os_error_line

if TYPE_CHECKING:
    from .rundir import RunDir

TRACEBACK_NAME = "traceback.txt"


def failure_reason(exc: BaseException) -> str:
    """One line: an OSError names its path and cause, anything else its type and message."""
    if isinstance(exc, OSError):
        return os_error_line(exc)
    first = (str(exc).splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def keep_traceback(folder: str | Path, exc: BaseException) -> Path | None:
    """Write the traceback beside the run and remember where on the exception (the CLI names
    the file). None when even that write fails (a full disk): the reason line still stands."""
    path = Path(folder) / TRACEBACK_NAME
    try:
        write_text(path, "".join(traceback.format_exception(exc)))
    except OSError:
        return None
    try:
        exc.traceback_file = str(path)  # type: ignore[attr-defined]
    except AttributeError:
        pass
    return path


def record_failure(run: "RunDir", exc: BaseException) -> None:
    """Make sure run.json says `failed` with the reason, and the traceback is kept (both best
    effort: on a full disk the small run.json rewrite usually still fits)."""
    from .rundir import RUN_JSON

    if getattr(exc, "traceback_file", None) is None:
        keep_traceback(run.path, exc)
    try:
        info = run.read_json(RUN_JSON) if (run.path / RUN_JSON).exists() else None
        if info is not None and info.get("status") != "failed":
            run.update_run(status="failed", error=failure_reason(exc))
    except Exception:  # noqa: BLE001 - the original error is the one to report
        pass
