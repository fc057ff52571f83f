"""docs/architecture.md shows the import graph of the code as it is (issue 10)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
import_graph = importlib.util.module_from_spec(_spec)
sys.modules["import_graph"] = import_graph
_spec.loader.exec_module(import_graph)


def test_the_import_graph_in_the_docs_is_the_code_s():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert import_graph.doc_block(doc) == import_graph.block(), \
        "docs/architecture.md is stale: run python scripts/import_graph.py --write"


def test_the_layers_point_down():
    edges = import_graph.graph()
    assert not any(d.startswith(("workbench", "lvm_plugins")) for src, dsts in edges.items()
                   if src.startswith("lvm_core") for d in dsts)
    assert edges["lvm_plugins"] <= {"workbench"}  # workbench.api (test_layering checks the names)


def test_rooms_and_relative_imports_resolve(tmp_path, monkeypatch):
    pkg = tmp_path / "lvm_core"
    (pkg / "training").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("")
    (pkg / "training" / "__init__.py").write_text("")
    (pkg / "training" / "loop.py").write_text("from ..errors import X\nfrom . import state\nimport workbench.api\n")
    monkeypatch.setattr(import_graph, "ROOT", tmp_path)
    assert import_graph.room("lvm_core.training.loop") == "lvm_core.training"
    assert import_graph.room("lvm_core.errors") == "lvm_core"
    assert import_graph.imports_of(pkg / "training" / "loop.py") == {
        "lvm_core.errors", "lvm_core.errors.X", "lvm_core.training", "lvm_core.training.state", "workbench.api"}
