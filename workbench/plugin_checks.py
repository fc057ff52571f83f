"""Checks a plugin must pass before its items are used, so a bad declaration is found when the
plugin loads (and the plugin is disabled, named, with its problem) instead of as a traceback at
step 0 of a run, or as a crash of every command.

- `hook_problems`: hookimpls whose names are no hook of lvm-workbench (a misspelled
  `register_loss`), and wrapper hooks (the host calls hooks one plugin at a time, so a wrapper
  would never wrap anything);
- `item_problems`: each Param's default against its own type, choices and range, and the
  declared params against the factory's signature (a factory that does not accept a declared
  param would fail with a TypeError when a run starts).
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Sequence

from lvm_core.errors import InputError
from lvm_core.params import _TYPES, Param

#: positional arguments the host passes before the params, per kind (see workbench/hookspecs.py)
LEADING_ARGS: dict[str, int] = {"model": 2, "diagnostic": 2, "corpus_reader": 1}


def hook_problems(plugin: object, known_hooks: Sequence[str], parse: Callable[[object, str], Any]) -> list[str]:
    """Problems with the hook implementations of `plugin`; `parse` is pluggy's
    PluginManager.parse_hookimpl_opts."""
    out = []
    for attr in sorted(dir(plugin)):
        try:
            opts = parse(plugin, attr)
        except Exception:  # noqa: BLE001 - an attribute that cannot be inspected is no hookimpl
            continue
        if opts is None:
            continue
        name = opts.get("specname") or attr
        if name not in known_hooks:
            close = difflib.get_close_matches(name, known_hooks, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append(f"unknown hook {name!r}{hint}")
        elif opts.get("wrapper") or opts.get("hookwrapper"):
            out.append(f"hook {name!r} is a wrapper; lvm-workbench calls each plugin's hooks on their own, "
                       "so wrapper hooks are not supported")
    return out


def item_problems(kind: str, name: str, obj: Any, params: Sequence[Param]) -> list[str]:
    """Problems with one registered item's declaration."""
    out = []
    if not callable(obj):
        return [f"{kind} {name!r} is not callable (got {type(obj).__name__})"]
    seen = set()
    for p in params:
        if not isinstance(p, Param):
            out.append(f"{kind} {name!r}: params must be workbench.Param objects, got {type(p).__name__}")
            continue
        if p.name in seen:
            out.append(f"{kind} {name!r}: param {p.name!r} is declared twice")
        seen.add(p.name)
        if p.type not in _TYPES:
            out.append(f"{kind} {name!r}: param {p.name!r} has unknown type {p.type!r} (known: {', '.join(_TYPES)})")
            continue
        try:
            p.check(p.default, p.name, name)
        except InputError as exc:
            out.append(f"{kind} {name!r}: default of param {p.name!r} does not fit its declaration ({exc.message})")
    out += _signature_problems(kind, name, obj, [p.name for p in params if isinstance(p, Param)])
    return out


def _signature_problems(kind: str, name: str, obj: Any, declared: list[str]) -> list[str]:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):  # builtins without a signature: nothing to check
        return []
    ps = list(sig.parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in ps):
        return []
    by_kw = {p.name for p in ps if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    missing = [d for d in declared if d not in by_kw]
    if missing:
        return [f"{kind} {name!r}: declares param(s) {missing} that its factory {getattr(obj, '__name__', obj)!s} "
                f"does not accept (its signature is {sig})"]
    return []
