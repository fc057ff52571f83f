"""List the functions longer than a limit in lvm_core/ and workbench/ (the TUI's compose
methods excepted: they lay out widgets and read best whole).

    python scripts/long_functions.py [--limit 80] [--top 5]

Prints `lines  path:line  qualified name`, longest first; exit code 1 when any is over the limit.
A function's length counts from its `def` (decorators excluded) to its last line.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lvm_core", "workbench")
LIMIT = 80


def functions(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> list[tuple[int, str, str]]:
    """(lines, "path:line", "Class.method") of every function, longest first."""
    out: list[tuple[int, str, str]] = []
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            rel = path.relative_to(root).as_posix()
            out.extend(_walk(tree, rel, ""))
    return sorted(out, key=lambda t: (-t[0], t[1]))


def _walk(node: ast.AST, rel: str, prefix: str) -> list[tuple[int, str, str]]:
    out = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = prefix + child.name
            out.append((child.end_lineno - child.lineno + 1, f"{rel}:{child.lineno}", name))
            out.extend(_walk(child, rel, name + "."))
        elif isinstance(child, ast.ClassDef):
            out.extend(_walk(child, rel, prefix + child.name + "."))
    return out


def exempt(where: str, name: str) -> bool:
    """The TUI's compose methods (widget layout) are exempt."""
    return where.startswith("workbench/tui/") and name.rsplit(".", 1)[-1] == "compose"


def too_long(limit: int = LIMIT, root: Path = ROOT) -> list[tuple[int, str, str]]:
    return [f for f in functions(root) if f[0] > limit and not exempt(f[1], f[2])]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=LIMIT)
    ap.add_argument("--top", type=int, default=5, help="also list the longest N functions")
    args = ap.parse_args(argv)
    over = too_long(args.limit)
    for n, where, name in over:
        print(f"{n:5d}  {where}  {name}  (over {args.limit})")
    print(f"longest {args.top} (compose methods excepted):")
    for n, where, name in [f for f in functions() if not exempt(f[1], f[2])][:args.top]:
        print(f"{n:5d}  {where}  {name}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
