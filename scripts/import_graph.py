"""The import graph of lvm-workbench between its rooms, drawn from the code.

    python scripts/import_graph.py            # print the graph
    python scripts/import_graph.py --write    # refresh the block in docs/architecture.md

A room is a subpackage (lvm_core.training, workbench.tui, ...), the top-level modules of a
package (lvm_core, workbench), or the built-in plugins (lvm_plugins, the plugins/ folder).
tests/test_architecture.py fails when the block in docs/architecture.md is stale.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"lvm_core": "lvm_core", "workbench": "workbench", "plugins": "lvm_plugins"}
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- import-graph:begin -->", "<!-- import-graph:end -->"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    parts[0] = PACKAGES[parts[0]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def room(module: str) -> str:
    """lvm_core.training.loop -> lvm_core.training; lvm_core.errors (a module) -> lvm_core."""
    parts = module.split(".")
    top = parts[0]
    if top != "lvm_plugins" and len(parts) >= 2 and (ROOT / _folder(top) / parts[1] / "__init__.py").is_file():
        return f"{top}.{parts[1]}"
    return top


def _folder(top: str) -> str:
    return {v: k for k, v in PACKAGES.items()}[top]


def imports_of(path: Path) -> set[str]:
    """Project modules `path` imports (absolute and relative, at any depth)."""
    mod = module_name(path)
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            out |= {f"{target}.{a.name}" for a in node.names}  # `from pkg import module`
    return {m for m in out if m.split(".")[0] in PACKAGES.values()}


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for folder in PACKAGES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            src = room(module_name(path))
            edges.setdefault(src, set())
            for target in imports_of(path):
                dst = room(target)
                if dst != src:
                    edges[src].add(dst)
    return edges


def render(edges: dict[str, set[str]]) -> str:
    width = max(len(k) for k in edges)
    lines = [f"{src:<{width}}  ->  {', '.join(sorted(dsts)) or '(nothing of the project)'}"
             for src, dsts in sorted(edges.items())]
    return "\n".join(lines)


def block() -> str:
    return f"{BEGIN}\n```\n{render(graph())}\n```\n{END}"


def doc_block(text: str) -> str:
    return text[text.index(BEGIN):text.index(END) + len(END)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="refresh the block in docs/architecture.md")
    args = ap.parse_args(argv)
    if not args.write:
        print(render(graph()))
        return 0
    text = DOC.read_text(encoding="utf-8")
    DOC.write_text(text.replace(doc_block(text), block()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
