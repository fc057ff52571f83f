"""`lvm-workbench plugins`: every registered item with its kind, plugin, distribution and version,
its parameters (type, default, range), and every disabled plugin with its problem."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lvm_core.params import Param

from ..plugin_host import load_plugins

NAME = "plugins"
HELP = "list installed plugins and every loss, gate, model, embedder, reader and diagnostic they register"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--no-params", dest="params", action="store_false",
                        help="one line per item, without its parameters (type, default, range)")
    parser.add_argument("--kind", help="only this kind (loss, gate, model, embedder, corpus_reader, diagnostic)")


def run(args: argparse.Namespace) -> int:
    host = load_plugins()
    items = [i for i in host.all_items() if not args.kind or i.kind == args.kind]
    if args.json:
        out = {
            "items": [
                {"kind": i.kind, "name": i.name, "plugin": i.plugin, "distribution": i.dist, "version": i.version,
                 "description": i.description,
                 "params": [_param_json(p) for p in i.params]}
                for i in items
            ],
            "problems": [p.to_json() for p in host.problems],
        }
        print(json.dumps(out, indent=2, default=str))
        return 0
    rows = [(i.kind, i.name, f"{i.dist} {i.version}".strip(), i.plugin, i.description) for i in items]
    header = ("KIND", "NAME", "DISTRIBUTION", "PLUGIN", "DESCRIPTION")
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(4)]
    for r, item in zip([header, *rows], [None, *items]):
        print("  ".join(str(r[c]).ljust(widths[c]) for c in range(4)) + "  " + r[4][:70])
        for p in item.params if item is not None and args.params else ():
            print(f"{'':{widths[0]}}    {p.name} ({p.type}, default {p.default!r}{_range(p)}): {p.help}")
    for p in host.problems:
        print(f"warning: {p.line()}")
    return 0


def _range(p: Param) -> str:
    """', 0.0..1.0' / ', >= 1' / ', one of [...]' for the table."""
    if p.choices is not None:
        return f", one of {list(p.choices)}"
    if p.min is not None and p.max is not None:
        return f", {p.min:g}..{p.max:g}"
    if p.min is not None:
        return f", >= {p.min:g}"
    if p.max is not None:
        return f", <= {p.max:g}"
    return ""


def _param_json(p: Param) -> dict[str, Any]:
    return {"name": p.name, "type": p.type, "default": p.default, "help": p.help, "min": p.min, "max": p.max,
            "choices": list(p.choices) if p.choices is not None else None}
