"""`lvm-workbench data ACTION`: build, import, export, validate and describe article stores.

Each action lives in its own module `workbench/commands/_data_<action>.py` with the same
NAME / HELP / add_arguments / run interface as a top-level command, and is found automatically.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil

from .. import commands

NAME = "data"
HELP = "build, import, export, validate and describe article stores"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_action", metavar="ACTION", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_data_"):
            continue
        mod = importlib.import_module(f"{commands.__name__}.{info.name}")
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks for errors")
        mod.add_arguments(p)
        p.set_defaults(_data_handler=mod.run)


def run(args: argparse.Namespace) -> int:
    return int(args._data_handler(args))
