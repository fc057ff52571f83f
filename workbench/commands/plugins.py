"""`lvm-workbench plugins`: every registered item with its kind, plugin, distribution and version."""

from __future__ import annotations

import argparse
import json

from ..plugin_host import load_plugins

NAME = "plugins"
HELP = "list installed plugins and every loss, gate, model, embedder, reader and diagnostic they register"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--kind", help="only this kind (loss, gate, model, embedder, corpus_reader, diagnostic)")


def run(args: argparse.Namespace) -> int:
    host = load_plugins()
    items = [i for i in host.all_items() if not args.kind or i.kind == args.kind]
    if args.json:
        out = {
            "items": [
                {"kind": i.kind, "name": i.name, "plugin": i.plugin, "distribution": i.dist, "version": i.version,
                 "description": i.description,
                 "params": [{"name": p.name, "type": p.type, "default": p.default, "help": p.help} for p in i.params]}
                for i in items
            ],
            "problems": [vars(p) for p in host.problems],
        }
        print(json.dumps(out, indent=2, default=str))
        return 0
    rows = [(i.kind, i.name, f"{i.dist} {i.version}".strip(), i.plugin, i.description) for i in items]
    header = ("KIND", "NAME", "DISTRIBUTION", "PLUGIN", "DESCRIPTION")
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(4)]
    for r in [header, *rows]:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in range(4)) + "  " + r[4][:70])
    for p in host.problems:
        print(f"warning: plugin {p.plugin} failed at {p.stage}: {p.error}")
    return 0
