"""torch.load with weights_only=True, its refusals told in our words.

torch's own text for a refused global is several lines ending in advice to retry with
weights_only=False: advice a user must never take for a file they did not make. Here a refusal
is one line naming the global the file asked for (for example `posix.system`); nothing runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

import torch

from .errors import InputError

_GLOBAL = re.compile(r"[Uu]nsupported (?:global: )?GLOBAL ([\w.]+)|but got <class '([\w.]+)'>")


def refused_global(text: str) -> str | None:
    """The global a weights_only load refused, read from torch's message (None: not a refusal)."""
    for groups in _GLOBAL.findall(text):
        name = next((g for g in groups if g), None)
        if name:
            return name
    return None


def load_weights_only(path: str | Path, what: str, *, allowed: Iterable[Any] = (), map_location: Any = "cpu") -> Any:
    """`torch.load(path, weights_only=True)`; any failure is one InputError line about `what`."""
    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every refusal must be one line
        text = str(exc)
        name = refused_global(text)
        if name:
            raise InputError(str(path), f"refused: the file asks to run {name}, which is not an allowed "
                             f"type in {what} (nothing was executed)") from None
        first = next((ln for ln in text.splitlines() if ln.strip() and "weights_only" not in ln), "")
        raise InputError(str(path), f"not a readable {what} ({type(exc).__name__}{': ' + first if first else ''})") from None
