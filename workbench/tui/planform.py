"""Turning the Setup form's text fields into plan values and back (no Textual here).

Every field is text in the form; a declared Param says how to read it. Lists and schedules are
written as TOML inline values (`[1, 2]`, `{ kind = "step", epoch = 3, before = 0.0, after = 0.5 }`)
so what a person types is exactly what the saved plan file will hold.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import tomli
import tomli_w

from lvm_core.errors import InputError
from lvm_core.params import TYPE_WORDS, Param


def widget_id(*parts: str) -> str:
    """A valid Textual id from item names (which may hold dots or spaces)."""
    return "-".join(re.sub(r"[^A-Za-z0-9_-]", "_", p) for p in parts)


def toml_inline(value: Any) -> str:
    """A TOML inline value: 3, 0.5, "x", [1, 2], { kind = "step", epoch = 3 }."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_inline(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_inline(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def toml_key(key: str) -> str:
    """A TOML key: bare when it can be (`epoch`), quoted otherwise (`"A.min_margin"`)."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else tomli_w.dumps({key: 0}).split(" = ", 1)[0]


def parse_inline(text: str, where: str) -> Any:
    """The value of a TOML inline text, or InputError naming the field."""
    try:
        return tomli.loads(f"v = {text}")["v"]
    except tomli.TOMLDecodeError as exc:
        raise InputError("setup", f"expected a TOML value such as 3, 0.5, \"text\", [1, 2] or {{ k = 1 }} ({exc})", where) from None


def param_text(value: Any) -> str:
    """How a parameter value shows in its Input."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, dict)):
        return toml_inline(value)
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def parse_param(param: Param, text: str, where: str) -> Any:
    """Read one Input's text as the Param's type (checked with the Param's own rules)."""
    text = text.strip()
    try:
        if param.type == "int":
            value: Any = int(text)
        elif param.type == "float":
            value = float(text)
        elif param.type == "str":
            value = text
        elif param.type == "bool":
            value = text.lower() in ("1", "true", "yes", "on")
        else:
            value = parse_inline(text, where)
    except ValueError:
        raise InputError("setup", f"expected {TYPE_WORDS[param.type]}, got {text!r}", where) from None
    return param.check(value, where, "setup")


def parse_number(text: str, kind: type, where: str) -> Any:
    try:
        return kind(text.strip())
    except ValueError:
        raise InputError("setup", f"expected {kind.__name__}, got {text!r}", where) from None


def merge(base: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """`base` with `updates` laid over it, tables merged key by key (lists replaced)."""
    out = copy.deepcopy(base)
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def relative_store(path: str, plan_dir: Path) -> str:
    """A store path as the plan file should hold it: relative to the plan's folder when possible."""
    p = Path(path)
    if not p.is_absolute():
        return path
    try:
        import os

        return os.path.relpath(p, plan_dir)
    except ValueError:  # another drive on Windows
        return str(p)


def resolve_store(path: str, plan_dir: Path) -> str:
    """A plan's store path made absolute (relative paths are relative to the plan file)."""
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (plan_dir / p).resolve())
