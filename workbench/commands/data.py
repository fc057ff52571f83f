"""`lvm-workbench data ACTION`: build, import, export, validate and describe article stores.

Each action lives in its own module `workbench/commands/_data_<action>.py` with the same
NAME / HELP / add_arguments / run interface as a top-level command, and is found automatically.
"""

from __future__ import annotations

import argparse

from .. import commands

NAME = "data"
HELP = "build, import, export, validate and describe article stores"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_action", metavar="ACTION", required=True)
    commands.add_command_modules(sub, prefix="_data_", handler_attr="_data_handler")


def run(args: argparse.Namespace) -> int:
    return int(args._data_handler(args))
