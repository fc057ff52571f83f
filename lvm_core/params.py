"""Declared parameters of a plugin item (a loss, a gate, a model...).

Every registered item says which parameters it takes, with a type, a default and one line of
help. Plans are checked against these declarations before anything runs, the TUI builds its
editors from them, and `lvm-workbench plugins` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .errors import InputError, InputErrors

_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list": (list, tuple),
}


@dataclass(frozen=True)
class Param:
    """One parameter: name, type ("int", "float", "str", "bool", "list"), default, help."""

    name: str
    type: str
    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None

    def check(self, value: Any, where: str, source: str) -> Any:
        """Return `value` coerced to this parameter's type, or raise InputError."""
        ok_types = _TYPES[self.type]
        if isinstance(value, bool) and self.type in ("int", "float"):
            raise InputError(source, f"expected {self.type}, got a boolean", where)
        if not isinstance(value, ok_types):
            raise InputError(source, f"expected {self.type}, got {type(value).__name__} {value!r}", where)
        if self.type == "float":
            value = float(value)
        if self.choices is not None and value not in self.choices:
            raise InputError(source, f"expected one of {list(self.choices)}, got {value!r}", where)
        if self.min is not None and value < self.min:
            raise InputError(source, f"expected >= {self.min}, got {value!r}", where)
        if self.max is not None and value > self.max:
            raise InputError(source, f"expected <= {self.max}, got {value!r}", where)
        return value


def resolve_params(
    declared: Sequence[Param], given: Mapping[str, Any], *, where: str, source: str
) -> tuple[dict[str, Any], list[InputError]]:
    """Defaults filled in and types checked; returns (values, errors) so callers report all errors."""
    by_name = {p.name: p for p in declared}
    values = {p.name: p.default for p in declared}
    errors: list[InputError] = []
    for key, value in given.items():
        p = by_name.get(key)
        if p is None:
            known = ", ".join(sorted(by_name)) or "none"
            errors.append(InputError(source, f"unknown parameter (known: {known})", f"{where}.{key}"))
            continue
        try:
            values[key] = p.check(value, f"{where}.{key}", source)
        except InputError as exc:
            errors.append(exc)
    return values, errors



class TableCheck:
    """Collects every problem of one plan table (e.g. `tripwire[2]`), each with its key path,
    so a plan reports all its problems at once. Raises at once if `obj` is not a table."""

    def __init__(self, obj: Any, *, path: str, known_keys: Sequence[str], source: str, table: str) -> None:
        if not isinstance(obj, Mapping):
            raise InputError(source, f"expected a table ([[{table}]])", path)
        self.path, self.source = path, source
        self.errors: list[InputError] = []
        for key in obj:
            if key not in known_keys:
                self.bad(key, f"unknown key (known: {', '.join(known_keys)})")

    def bad(self, key: str, message: str) -> None:
        self.errors.append(InputError(self.source, message, f"{self.path}.{key}" if key else self.path))

    def epoch_window(self, obj: Mapping[str, Any]) -> tuple[int, int]:
        """`from_epoch` (default 1) and `until_epoch` (default 0: to the end), checked."""
        out = {}
        for key, default, low in (("from_epoch", 1, 1), ("until_epoch", 0, 0)):
            v = obj.get(key, default)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                self.bad(key, f"expected an integer >= {low}, got {v!r}")
                v = default
            out[key] = v
        if out["until_epoch"] and out["until_epoch"] < out["from_epoch"]:
            self.bad("until_epoch", f"expected 0 (to the end) or >= from_epoch {out['from_epoch']}, got {out['until_epoch']}")
        return out["from_epoch"], out["until_epoch"]

    def raise_any(self) -> None:
        if self.errors:
            raise self.errors[0] if len(self.errors) == 1 else InputErrors(self.source, self.errors)
