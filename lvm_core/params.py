"""Declared parameters of a plugin item (a loss, a gate, a model...).

Every registered item says which parameters it takes, with a type, a default and one line of
help. Plans are checked against these declarations before anything runs, the TUI builds its
editors from them, and `lvm-workbench plugins` prints them.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .errors import InputError, raise_all

_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list": (list, tuple),
    "table": (dict,),
}

#: the largest epoch a plan may name anywhere (train.epochs, schedules, tripwire and curriculum windows)
MAX_EPOCHS = 100_000

#: how a problem names a type: "expected an integer, got a string 'ten'"
TYPE_WORDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
              "list": "an array", "table": "a table"}
_VALUE_WORDS = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
                tuple: "an array", dict: "a table"}


def value_kind(v: Any) -> str:
    """How a problem names a given value: "a string 'ten'", "a number 1e+20", "a table"."""
    word = _VALUE_WORDS.get(type(v), type(v).__name__)
    return word if isinstance(v, (dict, list, tuple)) else f"{word} {v!r}"


@dataclass(frozen=True)
class Param:
    """One declared key: name, type ("int", "float", "str", "bool", "list", "table"), default, help.

    The same declaration serves a plugin's parameters and every key of the plan schema
    (workbench/plan/schema.py), so one `check` gives every key the same rules: types (booleans are
    never numbers, ints are accepted as floats), finiteness (NaN never; inf only with
    `finite=False`), inclusive `min`/`max`, exclusive `gt`/`lt`, `choices` and a regex `pattern`.
    A default of None makes the key optional: None is then a valid value ("not set").
    """

    name: str
    type: str
    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    gt: float | None = None
    lt: float | None = None
    unit: str = ""
    pattern: str | None = None
    finite: bool = True

    def check(self, value: Any, where: str, source: str) -> Any:
        """Return `value` coerced to this parameter's type, or raise InputError."""
        if value is None and self.default is None:
            return None
        ok_types = _TYPES[self.type]
        if isinstance(value, bool) and self.type in ("int", "float"):
            raise InputError(source, f"expected {TYPE_WORDS[self.type]}, got a boolean", where)
        if not isinstance(value, ok_types):
            raise InputError(source, f"expected {TYPE_WORDS[self.type]}, got {value_kind(value)}", where)
        if self.type == "float":
            value = float(value)
            if math.isnan(value) or (self.finite and math.isinf(value)):
                raise InputError(source, f"expected a finite number, got {value!r}", where)
        if self.choices is not None and value not in self.choices:
            raise InputError(source, f"expected one of {list(self.choices)}, got {value!r}", where)
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            raise InputError(source, f"expected {self.help or self.pattern}, got {value!r}", where)
        for bound, ok, op in ((self.min, lambda b: value >= b, ">="), (self.max, lambda b: value <= b, "<="),
                              (self.gt, lambda b: value > b, ">"), (self.lt, lambda b: value < b, "<")):
            if bound is not None and not ok(bound):
                raise InputError(source, f"expected {op} {bound}, got {value!r}", where)
        return value

    def range_text(self) -> str:
        """The bounds as one phrase: ">= 1", "0 < x < 1", "0 <= x <= 4294967295"; "" if none."""
        low = f"{self.min} <=" if self.min is not None else f"{self.gt} <" if self.gt is not None else ""
        high = f"<= {self.max}" if self.max is not None else f"< {self.lt}" if self.lt is not None else ""
        if low and high:
            return f"{low} {self.name} {high}"
        if low:
            return f"{'>=' if self.min is not None else '>'} {self.min if self.min is not None else self.gt}"
        if high:
            return high
        return ""


def unknown_keys(obj: Mapping[str, Any], known: Sequence[str], *, path: str, source: str) -> list[InputError]:
    """One problem per key of `obj` not in `known`, with a "did you mean" when one is close."""
    out = []
    for key in obj:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append(InputError(source, f"unknown key (known: {', '.join(known)}){hint}",
                                  f"{path}.{key}" if path else str(key)))
    return out


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
        self.errors: list[InputError] = unknown_keys(obj, known_keys, path=path, source=source)

    def bad(self, key: str, message: str) -> None:
        self.errors.append(InputError(self.source, message, f"{self.path}.{key}" if key else self.path))

    def epoch_window(self, obj: Mapping[str, Any]) -> tuple[int, int]:
        """`from_epoch` (default 1) and `until_epoch` (default 0: to the end), checked."""
        out = {}
        for key, default, low in (("from_epoch", 1, 1), ("until_epoch", 0, 0)):
            v = obj.get(key, default)
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= MAX_EPOCHS:
                self.bad(key, f"expected an integer from {low} to {MAX_EPOCHS}, got {v!r}")
                v = default
            out[key] = v
        if out["until_epoch"] and out["until_epoch"] < out["from_epoch"]:
            self.bad("until_epoch", f"expected 0 (to the end) or >= from_epoch {out['from_epoch']}, got {out['until_epoch']}")
        return out["from_epoch"], out["until_epoch"]

    def raise_any(self) -> None:
        raise_all(self.source, self.errors)
