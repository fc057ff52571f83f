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
        "for m in pkgutil.walk_packages(lvm_core.__path__, 'lvm_core.'):\n"  # subpackages too
        "    importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'workbench', 'lvm_plugins')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ---- plugins: the public API only (issue 10) ----------------------------------------------------

def _plugin_sources() -> list[Path]:
    """The built-in plugins and the example third-party plugins (their tests may reach further)."""
    return [*sorted((ROOT / "plugins").glob("*.py")), *sorted((ROOT / "examples").glob("*/src/**/*.py"))]


def _project_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import of lvm_core or workbench in `path`, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.split(".")[0] in ("lvm_core", "workbench")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] in ("lvm_core", "workbench"):
            out.append((node.module, [a.name for a in node.names]))
    return out


def test_plugins_import_only_the_public_plugin_api():
    import workbench
    import workbench.api

    public = {"workbench.api": set(workbench.api.__all__), "workbench": set(workbench.__all__)}
    bad = []
    for path in _plugin_sources():
        for module, names in _project_imports(path):
            allowed = public.get(module)
            if allowed is None:
                bad.append(f"{path.relative_to(ROOT)}: imports {module} (use workbench.api)")
            else:
                bad += [f"{path.relative_to(ROOT)}: {module}.{n} is not in its __all__" for n in names if n not in allowed]
    assert bad == []


def test_the_plugin_api_names_exist_and_the_rule_sees_a_back_door(tmp_path):
    import workbench.api

    assert all(hasattr(workbench.api, n) for n in workbench.api.__all__)
    assert len(set(workbench.api.__all__)) == len(workbench.api.__all__)
    back_door = tmp_path / "p.py"
    back_door.write_text("from lvm_core.evaluation.battery import SplitSamples\ndef f():\n    import workbench.session\n")
    assert _project_imports(back_door) == [("lvm_core.evaluation.battery", ["SplitSamples"]), ("workbench.session", [])]


def test_plugins_touch_no_private_attribute_of_the_core():
    """A built-in gate once filled SplitSamples._cache; `obj._name` outside `self` is a back door."""
    bad = []
    for path in _plugin_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
    assert bad == []


def test_lvm_core_has_no_import_cycle():
    """legacy_npz and validate imported each other (hidden by a function-level import)."""
    graph: dict[str, set[str]] = {}
    for path in (ROOT / "lvm_core").rglob("*.py"):
        mod = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        deps = graph.setdefault(mod, set())
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and getattr(block.test, "id", "") == "TYPE_CHECKING" for n in ast.walk(block)}
        for node in ast.walk(tree):
            if id(node) in typing_only:  # annotations only: no import at run time
                continue
            if isinstance(node, ast.ImportFrom) and node.level:
                base = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                deps |= {target, *(f"{target}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lvm_core"):
                deps |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    graph = {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}
    cycles = []

    def visit(m, stack):
        for d in graph[m]:
            if d in stack:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in done:
                visit(d, stack + [d])
        done.add(m)

    done: set[str] = set()
    for m in sorted(graph):
        if m not in done:
            visit(m, [m])
    # a package's __init__ importing its own modules is not a cycle worth naming
    assert [c for c in cycles if not all(x == c[0] for x in c)] == []
