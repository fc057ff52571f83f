"""Move lvm_core's flat modules into rooms (subpackages) and rewrite every reference to them.

    python scripts/rooms.py            # in a clean checkout: git mv, merge, rewrite, regenerate
    python scripts/rooms.py --dry-run  # print the plan only

What it does, in order (each step is plain text/AST work, so it re-runs on any later main):
  1. git mv every module of MOVES to its room; the two baseline modules become one
     (lvm_core/models/baselines.py: the numpy definitions and the torch modules);
  2. writes each room's __init__.py (a docstring saying what lives there);
  3. rewrites relative imports inside lvm_core for the new places (AST: from-imports at any
     depth, `from . import a, b` split per room);
  4. rewrites `from lvm_core import <module>` and every dotted or slashed reference
     (`lvm_core.train`, `lvm_core/train.py`) in .py, .md, .toml and .sh files, one regex pass
     over the original text;
  5. lists the rooms in pyproject.toml and refreshes the import graph in docs/architecture.md.
A module that is not in MOVES stays where it is and is named on stderr.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ROOMS = {
    "data": "Data: the article store, windows and splits, corpora, text, embedding, the store builder and the data checks.",
    "legacy": "The original formats: NPZ import and export, .pt checkpoint import, and their checks.",
    "models": "Networks and the baselines (one definition each, numpy and torch), the fitted baselines and the model input.",
    "training": "The trainer: the loop and its TrainState, batches, validation, checkpoints, schedules, curricula, "
                "tripwires, weight control and torchrun.",
    "evaluation": "Judging models: metrics, the 5CAT gate battery, bootstrap intervals, paired evaluation, gate "
                  "reports, data diagnostics, run comparison and seed statistics.",
}

#: old module (under lvm_core) -> new module (under lvm_core)
MOVES = {
    "store": "data.store", "windows": "data.windows", "corpus": "data.corpus", "text": "data.text",
    "embedding": "data.embedding", "build": "data.build", "shards": "data.shards", "split_guard": "data.split_guard",
    "validate": "data.checks",
    "legacy_npz": "legacy.npz", "legacy_checkpoint": "legacy.checkpoint", "legacy_formats": "legacy.formats",
    "legacy_checks": "legacy.checks",
    "models": "models.networks", "baselines": "models.baselines", "baseline_models": "models.baselines",
    "fitted_baselines": "models.fitted", "ridge_stream": "models.ridge_stream",
    "start_at_baseline": "models.start_at_baseline", "model_input": "models.input",
    "train": "training.loop", "train_state": "training.state", "validation": "training.validation",
    "batch": "training.batch", "checkpoint": "training.checkpoint", "checkpointer": "training.checkpointer",
    "compiled": "training.compiled", "curriculum": "training.curriculum", "distributed": "training.distributed",
    "exact_stop": "training.exact_stop", "schedules": "training.schedules", "tripwires": "training.tripwires",
    "weight_control": "training.weight_control",
    "evaluation": "evaluation.battery", "metrics": "evaluation.metrics", "bootstrap": "evaluation.bootstrap",
    "paired_eval": "evaluation.paired_eval", "gate_report": "evaluation.gate_report",
    "diagnostics": "evaluation.diagnostics", "compare": "evaluation.compare", "seed_stats": "evaluation.seed_stats",
    "metric_names": "evaluation.metric_names",
}
#: shared by all the rooms: they stay at the top of lvm_core
STAY = {"__init__", "errors", "params", "atomic", "events", "device", "faults", "failures", "progress", "safe_load",
        "rundir", "runlock"}
MERGE_INTO = ("baseline_models", "baselines")  # (merged away, kept)
TEXT_SUFFIXES = {".py", ".md", ".toml", ".sh", ".txt", ".cfg", ".ini"}
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", "lvm_workbench.egg-info", "runs"}


def sh(*args: str) -> None:
    subprocess.run(args, cwd=ROOT, check=True)


def present_moves() -> dict[str, str]:
    core = ROOT / "lvm_core"
    have = {p.stem for p in core.glob("*.py")}
    for stem in sorted(have - set(MOVES) - STAY):
        print(f"rooms: lvm_core/{stem}.py is not in MOVES; it stays at the top of lvm_core", file=sys.stderr)
    return {old: new for old, new in MOVES.items() if old in have}


# ---- 1. moving and merging ---------------------------------------------------------------------

def move_files(moves: dict[str, str]) -> None:
    for room, doc in ROOMS.items():
        folder = ROOT / "lvm_core" / room
        folder.mkdir(exist_ok=True)
        init = folder / "__init__.py"
        if not init.exists():
            init.write_text(f'"""{doc}"""\n', encoding="utf-8")
            sh("git", "add", str(init.relative_to(ROOT)))
    merged, kept = MERGE_INTO
    for old, new in moves.items():
        if old == merged and kept in moves:
            continue
        sh("git", "mv", f"lvm_core/{old}.py", "lvm_core/" + new.replace(".", "/") + ".py")
    if merged in moves and kept in moves:
        merge_modules(ROOT / f"lvm_core/{merged}.py", ROOT / ("lvm_core/" + moves[kept].replace(".", "/") + ".py"),
                      merged, kept)
        sh("git", "rm", "-q", f"lvm_core/{merged}.py")


def _split_module(src: str) -> tuple[str, list[str], str]:
    """(docstring, import lines, body) of a module's source."""
    tree = ast.parse(src)
    lines = src.splitlines()
    doc = ast.get_docstring(tree, clean=False) or ""
    imports, body_start = [], 0
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str) \
                and node is tree.body[0]:
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append("\n".join(lines[node.lineno - 1:node.end_lineno]))
            continue
        body_start = node.lineno - 1
        # decorators start earlier
        if getattr(node, "decorator_list", None):
            body_start = min(d.lineno for d in node.decorator_list) - 1
        break
    return doc, imports, "\n".join(lines[body_start:])


def merge_modules(merged_path: Path, kept_path: Path, merged: str, kept: str) -> None:
    """Append the merged module's body to the kept one; one import block, one docstring."""
    m_doc, m_imports, m_body = _split_module(merged_path.read_text(encoding="utf-8"))
    k_src = kept_path.read_text(encoding="utf-8")
    k_doc, k_imports, k_body = _split_module(k_src)
    m_imports = [i for i in m_imports if not re.match(rf"from \.{kept} import ", i)]
    imports = list(dict.fromkeys([*k_imports, *m_imports]))
    future = [i for i in imports if i.startswith("from __future__")]
    local = sorted([i for i in imports if i.startswith("from .")], key=_import_key)
    third = sorted([i for i in imports if i.split()[1].split(".")[0] in THIRD_PARTY], key=_import_key)
    std = _combine_from([i for i in imports if i not in future + local + third])
    doc = k_doc.rstrip() + "\n\n" + MERGED_DOC
    blocks = [f'"""{doc}"""', "\n".join(future), "\n".join(std), "\n".join(third), "\n".join(local),
              k_body.rstrip(), "# ---- the same baselines as torch modules " + "-" * 56, m_body.rstrip()]
    kept_path.write_text("\n\n".join(b for b in blocks if b).replace(
        "# ---- the same baselines as torch modules", "\n# ---- the same baselines as torch modules") + "\n",
        encoding="utf-8")


THIRD_PARTY = {"numpy", "torch", "safetensors", "pluggy", "tomli", "textual", "rich"}
MERGED_DOC = ("The same baselines as torch modules with the models' interface (CopyLast, ContextMean,\n"
              "LinearExtrapolation, Ridge, at the end): contexts (B, L, D) -> unit rows (B, D), registered as\n"
              "model architectures, so the trainer, the evaluation and the gates compare a model with\n"
              "copy-last or ridge through one code path; ridge's closed-form weights (RidgeBaseline) live in\n"
              "an nn.Linear, saved and reloaded with the checkpoint like any model's.\n")


def _combine_from(lines: list[str]) -> list[str]:
    """Standard-library imports, sorted, `from m import a` and `from m import b` as one line."""
    plain = sorted(i for i in lines if i.startswith("import "))
    names: dict[str, list[str]] = {}
    for i in lines:
        if i.startswith("from ") and "(" not in i:
            mod, _, rest = i[5:].partition(" import ")
            names.setdefault(mod, []).extend(n.strip() for n in rest.split(","))
    other = [i for i in lines if i.startswith("from ") and "(" in i]
    froms = [f"from {m} import {', '.join(sorted(dict.fromkeys(n)))}" for m, n in sorted(names.items())]
    return plain + froms + other


def _import_key(line: str) -> tuple[int, str]:
    return (0 if line.startswith("import ") else 1, line.split()[1])


# ---- 3. relative imports inside lvm_core --------------------------------------------------------

def old_to_new_module(moves: dict[str, str]) -> dict[str, str]:
    """Full dotted names: lvm_core.train -> lvm_core.training.loop."""
    return {f"lvm_core.{old}": f"lvm_core.{new}" for old, new in moves.items()}


def rewrite_relative(path: Path, old_module: str, new_module: str, full: dict[str, str]) -> str:
    """The source of `path` (which was lvm_core module `old_module`, now `new_module`) with every
    relative import pointing at the new places, still relative."""
    src = path.read_text(encoding="utf-8")
    tree = ast.parse(src)
    lines = src.splitlines(keepends=True)
    old_pkg = old_module.rpartition(".")[0]  # the package holding it (for __init__: the package itself)
    edits = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ImportFrom) and node.level):
            continue
        base = old_pkg.split(".")[:len(old_pkg.split(".")) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
        indent = " " * node.col_offset
        new_lines = []
        if node.module:
            new_target = full.get(target, target)
            new_lines.append(f"{indent}from {relative(new_module, new_target)} import {_names(node)}")
        else:  # from . import a, b: each name may be a module that moved
            groups: dict[str, list[str]] = {}
            for a in node.names:
                mod = f"{target}.{a.name}"
                if mod in full:
                    pkg, _, name = full[mod].rpartition(".")
                    alias = a.asname or (a.name if name != a.name else None)
                    groups.setdefault(pkg, []).append(f"{name} as {alias}" if alias and alias != name else name)
                else:
                    groups.setdefault(target, []).append(f"{a.name} as {a.asname}" if a.asname else a.name)
            for pkg, names in groups.items():
                new_lines.append(f"{indent}from {relative(new_module, pkg, is_package=True)} import {', '.join(names)}")
        edits.append((node.lineno, node.end_lineno, "\n".join(new_lines) + "\n"))
    for start, end, text in sorted(edits, reverse=True):
        lines[start - 1:end] = [text]
    return "".join(lines)


def _names(node: ast.ImportFrom) -> str:
    return ", ".join(f"{a.name} as {a.asname}" if a.asname else a.name for a in node.names)


def relative(from_module: str, target: str, is_package: bool = False) -> str:
    """The relative spelling of `target` as seen from module `from_module`."""
    here = from_module.split(".")[:-1]  # the package holding from_module
    there = target.split(".")
    common = 0
    while common < min(len(here), len(there)) and here[common] == there[common]:
        common += 1
    dots = "." * (len(here) - common + 1)
    rest = ".".join(there[common:])
    return dots + rest


# ---- 4. every other reference --------------------------------------------------------------------

def reference_pattern(full: dict[str, str]) -> re.Pattern[str]:
    olds = sorted((o.split(".", 1)[1] for o in full), key=len, reverse=True)
    alt = "|".join(re.escape(o) for o in olds)
    return re.compile(rf"\blvm_core([./])({alt})(?![\w])(\.py)?")


def rewrite_references(text: str, pattern: re.Pattern[str], moves: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        sep, old, py = m[1], m[2], m[3] or ""
        new = moves[old]
        return f"lvm_core{sep}{new.replace('.', sep)}{py}"

    return pattern.sub(sub, text)


def rewrite_from_lvm_core(src: str, moves: dict[str, str]) -> str:
    """`from lvm_core import a, b as c` where a, b are moved modules -> one import per room."""
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return src
    lines = src.splitlines(keepends=True)
    edits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "lvm_core" \
                and any(a.name in moves for a in node.names):
            indent = " " * node.col_offset
            groups: dict[str, list[str]] = {}
            for a in node.names:
                if a.name in moves:
                    pkg, _, name = ("lvm_core." + moves[a.name]).rpartition(".")
                    alias = a.asname or (a.name if name != a.name else None)
                    groups.setdefault(pkg, []).append(f"{name} as {alias}" if alias and alias != name else name)
                else:
                    groups.setdefault("lvm_core", []).append(f"{a.name} as {a.asname}" if a.asname else a.name)
            text = "".join(f"{indent}from {pkg} import {', '.join(n)}\n" for pkg, n in groups.items())
            edits.append((node.lineno, node.end_lineno, text))
    for start, end, text in sorted(edits, reverse=True):
        lines[start - 1:end] = [text]
    return "".join(lines)


def sort_import_runs(text: str) -> str:
    """Sort each run of consecutive top-level project imports (`from lvm_core...`, `from .x`),
    which the rewriting left in their old order; other lines never move."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    while i < len(lines):
        units = []
        while i < len(lines) and _project_import(lines[i]):
            j = i
            depth = lines[i].count("(") - lines[i].count(")")
            while depth > 0 and j + 1 < len(lines):
                j += 1
                depth += lines[j].count("(") - lines[j].count(")")
            units.append(lines[i:j + 1])
            i = j + 1
        if units:
            for unit in sorted(units, key=lambda u: _project_key(u[0])):
                out.extend(unit)
        if i < len(lines):
            out.append(lines[i])
            i += 1
    return "".join(out)


def _project_import(line: str) -> bool:
    return line.startswith(("from lvm_core", "from .")) and " import " in line


def _project_key(line: str) -> str:
    return line.split()[1].lstrip(".")


def text_files() -> list[Path]:
    out = []
    for p in ROOT.rglob("*"):
        if any(part in SKIP_DIRS for part in p.relative_to(ROOT).parts):
            continue
        if p.is_file() and p.suffix in TEXT_SUFFIXES and p.resolve() != Path(__file__).resolve():
            out.append(p)
    return out


# ---- 5. pyproject and the docs -------------------------------------------------------------------

def list_rooms_in_pyproject() -> None:
    path = ROOT / "pyproject.toml"
    text = path.read_text(encoding="utf-8")
    m = re.search(r'^packages = \[(.*)\]$', text, re.M)
    names = [n.strip().strip('"') for n in m[1].split(",") if n.strip()]
    for room in ROOMS:
        if f"lvm_core.{room}" not in names:
            names.insert(names.index("lvm_core") + 1 + list(ROOMS).index(room), f"lvm_core.{room}")
    text = text[:m.start(1)] + ", ".join(f'"{n}"' for n in names) + text[m.end(1):]
    path.write_text(text, encoding="utf-8")


ROOMS_BEGIN, ROOMS_END = "<!-- rooms:begin -->", "<!-- rooms:end -->"


def describe_rooms() -> None:
    """The rooms of lvm_core, with their modules, in docs/architecture.md (between markers,
    inserted before "## Where things live" the first time)."""
    path = ROOT / "docs" / "architecture.md"
    text = path.read_text(encoding="utf-8")
    core = ROOT / "lvm_core"
    top = sorted(p.stem for p in core.glob("*.py") if p.stem != "__init__")
    rows = [f"| `lvm_core/` | Shared by the rooms below. Modules: {', '.join(top)}. |"]
    for room, doc in ROOMS.items():
        mods = sorted(p.stem for p in (core / room).glob("*.py") if p.stem != "__init__")
        rows.append(f"| `lvm_core/{room}/` | {doc} Modules: {', '.join(mods)}. |")
    block = "\n".join([ROOMS_BEGIN, "## The rooms of lvm_core", "", "| room | what lives there (modules) |",
                       "|---|---|", *rows, ROOMS_END])
    if ROOMS_BEGIN in text:
        text = text[:text.index(ROOMS_BEGIN)] + block + text[text.index(ROOMS_END) + len(ROOMS_END):]
    else:
        text = text.replace("## Where things live", block + "\n\n## Where things live", 1)
    path.write_text(text, encoding="utf-8")


def readme_rooms() -> None:
    path = ROOT / "README.md"
    text = path.read_text(encoding="utf-8")
    old = "- `lvm_core/` is the library (data, models, training, evaluation, checkpoints); it never imports"
    new = ("- `lvm_core/` is the library, in rooms (`data/`, `models/`, `training/`, `evaluation/`, `legacy/`:\n"
           "  [docs/architecture.md](docs/architecture.md)); it never imports")
    if old in text:
        path.write_text(text.replace(old, new), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    moves = present_moves()
    full = old_to_new_module(moves)
    if args.dry_run:
        for old, new in moves.items():
            print(f"lvm_core/{old}.py -> lvm_core/{new.replace('.', '/')}.py")
        return 0
    move_files(moves)
    # 3: relative imports of every lvm_core module, at its new place
    new_of_path = {}
    for path in (ROOT / "lvm_core").rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        new_module = ".".join(rel.parts)
        old_module = next((o for o, n in full.items() if n == new_module), new_module)
        new_of_path[path] = (old_module, new_module)
    for path, (old_module, new_module) in new_of_path.items():
        path.write_text(rewrite_relative(path, old_module, new_module, full), encoding="utf-8")
    # 4: absolute references everywhere
    pattern = reference_pattern(full)
    for path in text_files():
        text = path.read_text(encoding="utf-8")
        new = rewrite_references(text, pattern, moves)
        if path.suffix == ".py":
            new = rewrite_from_lvm_core(new, moves)
            if new != text or path.is_relative_to(ROOT / "lvm_core"):  # rewritten: put the imports in order
                new = sort_import_runs(new)
        if new != text:
            path.write_text(new, encoding="utf-8")
    list_rooms_in_pyproject()
    describe_rooms()
    readme_rooms()
    sh(sys.executable, "scripts/import_graph.py", "--write")
    sh("git", "add", "-A", "lvm_core")
    sh("git", "add", "-u")
    return 0


if __name__ == "__main__":
    sys.exit(main())
