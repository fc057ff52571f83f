"""`lvm-workbench plan-docs`: regenerate docs/plan.md from the plan schema (or check it is current)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lvm_core.errors import InputError

NAME = "plan-docs"
HELP = "write docs/plan.md, the reference of every plan key, from the plan schema (--check: only compare)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", help="where to write (default: the checkout's docs/plan.md)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from the schema")


def run(args: argparse.Namespace) -> int:
    from ..plan import docs

    path = Path(args.out) if args.out else docs.DOCS_PATH
    if args.check:
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != docs.render():
            print(f"{path}: stale; run lvm-workbench plan-docs", file=sys.stderr)
            return 1
        print(f"{path}: current")
        return 0
    if not path.parent.is_dir():
        raise InputError(str(path), "the folder does not exist")
    changed = docs.write(path)
    print(f"{path}: {'written' if changed else 'already current'}")
    return 0
