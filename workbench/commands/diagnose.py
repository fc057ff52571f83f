"""`lvm-workbench diagnose STORE`: the data diagnostics of a store and a split, before training.

Runs every registered diagnostic (or those named with --only), prints each as console tables,
and optionally writes all results as JSON (--json) and as a Markdown report (--report).
The numbers are explained in docs/diagnostics.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from lvm_core.atomic import write_json, write_text
from lvm_core.data.store import ArticleStore
from lvm_core.data.windows import Split, split_by_fractions
from lvm_core.errors import InputError, InputErrors, PluginFault
from lvm_core.params import resolve_params

from ..plugin_guard import run_diagnostic
from ..plugin_host import Item, load_plugins, warn_problems

NAME = "diagnose"
HELP = "data diagnostics of a store and split: direction profile, pair-order probe, baselines, split hygiene"
SCHEMA = "lvm-workbench.diagnostics/1"
DOCS = "docs/diagnostics.md"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", metavar="STORE", help="article store directory")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--split-file", metavar="F", help="a split JSON written by a run or `Split.save` (parts of article ids)")
    how.add_argument("--val-fraction", type=float, default=0.2, metavar="F",
                     help="without --split-file: seeded split of whole articles into train and val (default 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and of the sampling (default 0)")
    parser.add_argument("--part", default="val", help="split part the numbers are computed on (default val)")
    parser.add_argument("--context-len", type=int, default=5, metavar="L", help="context length (default 5)")
    parser.add_argument("--only", metavar="NAME,...", help="run only these diagnostics (see `lvm-workbench plugins --kind diagnostic`)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME.KEY=VALUE",
                        help="set a diagnostic's parameter, e.g. baselines.ridge_alpha=10 (repeatable)")
    parser.add_argument("--json", metavar="OUT", help="write every result to this JSON file")
    parser.add_argument("--report", metavar="OUT.md", help="write a Markdown report")


# ---- setting up --------------------------------------------------------------------------

def _split(args: argparse.Namespace, store: ArticleStore) -> Split:
    if args.split_file:
        path = Path(args.split_file)
        if not path.is_file():
            raise InputError(str(path), "no such split file (expected JSON with {'parts': {name: [article ids]}})")
        return Split.load(path)
    f = args.val_fraction
    if not 0.0 < f < 1.0:
        raise InputError("--val-fraction", f"expected a fraction between 0 and 1, got {f}")
    return split_by_fractions(store, {"train": 1.0 - f, "val": f}, seed=args.seed)


def _parse_sets(pairs: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for raw in pairs:
        key, eq, value = raw.partition("=")
        name, dot, param = key.partition(".")
        if not eq or not dot or not name or not param:
            raise InputError("--set", f"expected NAME.KEY=VALUE, got {raw!r}")
        try:
            parsed: Any = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(name, {})[param] = parsed
    return out


def _selected(args: argparse.Namespace) -> list[tuple[Item, dict[str, Any]]]:
    host = load_plugins()
    warn_problems(host)
    available = host.items["diagnostic"]
    names = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else list(available)
    items = [host.get("diagnostic", n, source="--only") for n in names]
    sets = _parse_sets(args.set)
    for name in sets:
        host.get("diagnostic", name, source="--set")
    chosen, errors = [], []
    for item in items:
        given = dict(sets.get(item.name, {}))
        declared = {p.name for p in item.params}
        if "part" in declared:
            given.setdefault("part", args.part)
        if "seed" in declared:
            given.setdefault("seed", args.seed)
        values, errs = resolve_params(item.params, given, where=item.name, source="--set")
        errors += errs
        chosen.append((item, values))
    if errors:
        raise InputErrors("--set", errors)
    return chosen


def _check_parts(split: Split, chosen: list[tuple[Item, dict[str, Any]]], source: str) -> None:
    for item, values in chosen:
        if "train_part" in values and values.get("part") == values["train_part"]:
            raise InputError("--part", f"{item.name} learns from part {values['train_part']!r} and is scored on "
                             f"held-out articles: choose another --part (parts are {sorted(split.parts)})")
        for key in ("part", "train_part"):
            if key in values and values[key] not in split.parts:
                raise InputError(source, f"{item.name}: no split part named {values[key]!r}; parts are {sorted(split.parts)} "
                                 f"(choose with --set {item.name}.{key}=NAME, or leave it out with --only)")


# ---- running -----------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    if args.context_len < 1:
        raise InputError("--context-len", f"expected >= 1, got {args.context_len}")
    store = ArticleStore.open(args.store)
    split = _split(args, store)
    chosen = _selected(args)
    _check_parts(split, chosen, args.split_file or "split")
    out: dict[str, Any] = {
        "schema": SCHEMA,
        "store": store.fingerprint(),
        "split": {"rule": split.rule, "sha256": split.sha256(),
                  "parts": {k: len(v) for k, v in split.parts.items()}},
        "context_len": args.context_len,
        "diagnostics": {},
    }
    print(f"store {store.path}: {store.n_articles} articles, {store.n_chunks} chunks, dim {store.dim}; "
          f"split {_split_line(out['split'])}; context {args.context_len}")
    faults = []
    for item, values in chosen:
        started = time.perf_counter()
        try:
            result = run_diagnostic(item, store, split, context_len=args.context_len, **values)
        except PluginFault as exc:  # named in one line; the other diagnostics still run
            faults.append(str(exc))
            out["diagnostics"][item.name] = {"params": values, "error": str(exc)}
            print(f"error: {exc}", file=sys.stderr)
            continue
        seconds = time.perf_counter() - started
        out["diagnostics"][item.name] = {"params": values, "seconds": round(seconds, 3), "result": result}
        print()
        print(render_text(item.name, item.description, result, seconds))
        sys.stdout.flush()
    summary = headline(out)
    if summary:
        print("\n== summary")
        print("\n".join(f"  {line}" for line in summary))
    if args.json:
        write_json(args.json, out)
        print(f"\nwrote {args.json}")
    if args.report:
        write_text(args.report, render_markdown(out))
        print(f"wrote {args.report}")
    return 1 if faults else 0


def headline(out: dict[str, Any]) -> list[str]:
    """A few lines with the numbers a user looks at first (from the built-in diagnostics, when run)."""
    diags = {name: entry["result"] for name, entry in out["diagnostics"].items() if "result" in entry}
    lines = []
    hyg = diags.get("split_hygiene")
    if hyg:
        shared = sum(p["articles"] for p in hyg["articles_in_two_parts"])
        near = sum(p["near_duplicates"] for p in hyg["near_duplicates_across_parts"])
        lines.append(f"split: {shared} article(s) in two parts, {near} near-duplicate chunk(s) across parts "
                     f"(cos > {hyg['threshold']})")
    prof = diags.get("direction_profile")
    if prof:
        lines.append(f"{prof['part']}: coherence {_fmt(prof['coherence'])}, signal cos(c_last,t) - cos(c_0,t) "
                     f"{_fmt(prof['signal_last_minus_first'])} (similarity decay, not direction)")
    probe = diags.get("pair_order_probe")
    if probe:
        lo, hi = probe["ci95_by_article"]
        lines.append(f"pair-order probe on {probe['part']}: accuracy {_fmt(probe['accuracy'])} "
                     f"[{_fmt(lo)}, {_fmt(hi)} by article], chance 0.5: {probe['verdict']}")
    base = diags.get("baselines")
    if base:
        for name, m in base["baselines"].items():
            lines.append(f"{base['part']} {name:<21} cos {_fmt(m['cos'])}  margin_vs_last {_fmt(m['margin_vs_last'])}  "
                         f"R@1_article {_fmt(m['R@1_article'])} (chance {_fmt(m['chance_R@1_article'])})  "
                         f"R@1_no_context {_fmt(m['R@1_no_context'])} (chance {_fmt(m['chance_R@1_no_context'])})")
    return lines


def _split_line(split: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v} articles" for k, v in split["parts"].items())


# ---- rendering (shared by the console and the Markdown report) ---------------------------

def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list) and all(_is_scalar(x) for x in value):
        text = "[" + ", ".join(_fmt(x) for x in value) + "]"
        return text if len(text) <= 60 else text[:57] + "..."
    if isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:57] + "..."
    return str(value)


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


Table = tuple[str, list[str], list[list[str]]]


def tables_of(result: dict[str, Any], title: str = "") -> tuple[list[Table], list[str]]:
    """Tables and notes of a result dict, whatever its shape, so third-party diagnostics render too.

    Scalars become one key/value table; a dict of dicts a table with one row per key; a list of
    dicts a table with one row per item; a dict of equal-length lists a table with one row per
    index (its scalars and strings go to the notes).
    """
    tables: list[Table] = []
    notes: list[str] = []
    scalars = [[k, _fmt(v)] for k, v in result.items() if _is_scalar(v) and not (isinstance(v, str) and len(v) > 60)]
    scalars += [[k, _fmt(v)] for k, v in result.items() if isinstance(v, list) and all(_is_scalar(x) for x in v)]
    notes += [f"{k}: {v}" for k, v in result.items() if isinstance(v, str) and len(v) > 60]
    if scalars:
        tables.append((title, ["", "value"], scalars))
    for key, v in result.items():
        name = f"{title}.{key}" if title else key
        if isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
            cols = list(dict.fromkeys(c for row in v.values() for c in row if _is_scalar(row[c])))
            tables.append((name, ["", *cols], [[k, *(_fmt(row.get(c)) for c in cols)] for k, row in v.items()]))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            cols = list(dict.fromkeys(c for row in v for c in row))
            tables.append((name, cols, [[_fmt(row.get(c)) for c in cols] for row in v]))
        elif isinstance(v, dict):
            lists = {k: x for k, x in v.items() if isinstance(x, list)}
            lengths = {len(x) for x in lists.values()}
            if lists and len(lengths) == 1:
                n = lengths.pop()
                tables.append((name, list(lists), [[_fmt(lists[k][i]) for k in lists] for i in range(n)]))
                rest = {k: x for k, x in v.items() if k not in lists}
                notes += [f"{name}.{k}: {_fmt(x) if not isinstance(x, str) else x}" for k, x in rest.items()]
            else:
                sub_tables, sub_notes = tables_of(v, name)
                tables += sub_tables
                notes += sub_notes
    return tables, notes


def render_text(name: str, description: str, result: dict[str, Any], seconds: float) -> str:
    lines = [f"== {name} ({seconds:.1f} s): {description}"]
    tables, notes = tables_of(result)
    for title, header, rows in tables:
        if title:
            lines.append(f"-- {title}")
        widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
        for r in [header, *rows]:
            lines.append("  " + "  ".join(str(r[c]).rjust(widths[c]) if c else str(r[c]).ljust(widths[c])
                                          for c in range(len(header))).rstrip())
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)


def render_markdown(out: dict[str, Any]) -> str:
    store, split = out["store"], out["split"]
    lines = [
        "# Data diagnostics",
        "",
        f"- store: `{store['path']}` ({store['n_articles']} articles, {store['n_chunks']} chunks, dim {store['dim']}, "
        f"embedder {store.get('embedder') or '-'})",
        f"- split: {_split_line(split)} (rule `{json.dumps(split['rule'])}`, sha256 `{split['sha256'][:12]}`)",
        f"- context length: {out['context_len']}",
        f"- what each number means: {DOCS}",
    ]
    summary = headline(out)
    if summary:
        lines += ["", "## Summary", "", *[f"- {line}" for line in summary]]
    for name, entry in out["diagnostics"].items():
        if "error" in entry:
            lines += ["", f"## {name}", "", f"**error:** {entry['error']}"]
            continue
        lines += ["", f"## {name}", "", f"params: `{json.dumps(entry['params'])}`; {entry['seconds']:.1f} s", ""]
        tables, notes = tables_of(entry["result"])
        for title, header, rows in tables:
            if title:
                lines += [f"**{title}**", ""]
            lines.append("| " + " | ".join(h or " " for h in header) + " |")
            lines.append("|" + "|".join("---" for _ in header) + "|")
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
            lines.append("")
        lines += [f"> {n}" for n in notes]
    return "\n".join(lines).rstrip() + "\n"
