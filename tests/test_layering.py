"""The core stays free of the UI and of the plugins (design.md, rules of the house)."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"textual", "workbench", "plugins", "lvm_plugins", "rich"}


def test_lvm_core_sources_import_no_ui_or_plugins():
    bad = []
    for path in (ROOT / "lvm_core").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            bad += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert bad == []


def test_importing_the_core_loads_no_textual():
    code = (
        "import sys, pkgutil, importlib, lvm_core\n"
        "for m in pkgutil.iter_modules(lvm_core.__path__):\n"
        "    importlib.import_module('lvm_core.' + m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'workbench', 'lvm_plugins')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
