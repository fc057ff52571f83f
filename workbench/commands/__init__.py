"""One module per subcommand (NAME, HELP, add_arguments, run); cli.py finds them.

`data` sub-actions follow the same interface in modules named `_data_<action>.py`.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from typing import Any


def add_command_modules(subparsers: Any, *, prefix: str = "", handler_attr: str = "_handler") -> None:
    """Add a parser for every module of this package whose name starts with `prefix` (modules
    starting with "_" only when the prefix asks for them), sorted by module name."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith(prefix) or (not prefix and info.name.startswith("_")):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        p = subparsers.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks for errors")
        mod.add_arguments(p)
        p.set_defaults(**{handler_attr: mod.run})
