"""docs/plan.md, generated from the schema: `lvm-workbench plan-docs` writes it, a test fails when
the file and the schema disagree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lvm_core.params import Param
from lvm_core.training.curriculum import FILTER_KEYS
from lvm_core.training.tripwires import TRIPWIRE_KEYS

from .schema import DELEGATED, SECTIONS, Section

DOCS_PATH = Path(__file__).resolve().parents[2] / "docs" / "plan.md"
_DELEGATED_KEYS = {"data.filter": FILTER_KEYS, "tripwire": TRIPWIRE_KEYS}

INTRO = """# The plan file: every key

<!-- generated from workbench/plan/schema.py by `lvm-workbench plan-docs`; do not edit by hand
     (tests/test_plan_schema.py fails when this file is stale) -->

A plan is one TOML file: `lvm-workbench --run plan.toml` runs it headless, the workbench screen's
Setup edits it. Every key below is declared once, in `workbench/plan/schema.py`, with its type,
default, range and help; the loader checks a plan against it and reports every problem at once,
each with its key path and line (`plan.toml: line 49: train.epochs: expected <= 100000, got ...`),
exit code 2. Numbers are checked for bounds and finiteness (`lr = inf` or `nan` is refused).
`examples/quickstart.toml` is a commented example; `examples/recipes/` holds more.

Why a declaration type and not pydantic: the plan mixes fixed keys with tables that only plugins
know at run time (model and loss `params`, gate `thresholds`), every problem must carry its TOML
line, and the same declaration drives the loader, the writer, the Setup form and this page.
`lvm_core.params.Param` already declared plugin parameters, so plan keys use it too: one set of
rules for both, and no second type system.
"""


def _toml(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def _allowed(p: Param) -> str:
    parts = []
    if p.range_text():
        parts.append(p.range_text())
    if p.choices:
        parts.append("one of " + ", ".join(f"`{c}`" for c in p.choices))
    if p.type == "float":
        parts.append("finite" if p.finite else "not NaN")
    return "; ".join(parts)


def _row(p: Param) -> str:
    unit = f" ({p.unit})" if p.unit else ""
    help_text = p.help.replace("|", "\\|")
    return f"| `{p.name}` | {p.type} | `{_toml(p.default)}` | {_allowed(p)}{unit} | {help_text} |"


def _header(sec: Section) -> str:
    if not sec.path:
        return "top level"
    return f"[[{sec.path}]]" if sec.array else f"[{sec.path}]"


def render() -> str:
    """The whole reference page."""
    out = [INTRO]
    for sec in SECTIONS:
        out.append(f"## {sec.title}: `{_header(sec)}`\n\n{sec.help}\n")
        out.append("| key | type | default | allowed | what it does |\n|---|---|---|---|---|")
        out.extend(_row(p) for p in sec.keys)
        if sec.tables:
            out.append(f"\nTables inside: {', '.join(f'`{t}`' for t in sec.tables)}.")
        out.append("")
    out.append("## Tables checked in lvm_core\n")
    for path, (module, doc, what) in DELEGATED.items():
        keys = ", ".join(f"`{k}`" for k in _DELEGATED_KEYS[path])
        out.append(f"- `[[{path}]]` ({module}; {doc}): {what}. Keys: {keys}.")
    return "\n".join(out).rstrip() + "\n"


def write(path: Path = DOCS_PATH) -> bool:
    """Write the page; True if it changed."""
    text = render()
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True
