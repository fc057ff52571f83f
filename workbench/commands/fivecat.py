"""`lvm-workbench 5cat`: the 5CAT gate battery on a checkpoint, an original `.pt`, or a baseline.

Exit 0 when every gate passes, 3 when any fails, 2 on bad input. Definitions and the
differences of --legacy from the original tool: docs/5cat.md.

A checkpoint that knows its split (lvm_core/data/split_guard.py) is scored on its val part by
default, and a VAL or OOD set holding any of its training articles is refused unless
--allow-train-overlap; without a known split the output says `split: unknown`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import dataclasses

import numpy as np

from lvm_core.atomic import write_json, write_text
from lvm_core.data.split_guard import CheckpointSplit, refuse_overlap, resolve_checkpoint_split, training_overlap
from lvm_core.data.store import ArticleStore
from lvm_core.data.windows import Split, make_windows
from lvm_core.errors import InputError
from lvm_core.evaluation.battery import BASELINES, DEFAULT_GATES, resolve_gates, run_battery, torch_predictor
from lvm_core.evaluation.gate_report import console_table, markdown
from lvm_core.training import distributed

from .. import exit_codes
from ..checkpoint_plugins import load_checkpoint_model
from ..plan import gate_names_problem
from ..plugin_guard import gate_lookup
from ..plugin_host import load_plugins, warn_problems

NAME = "5cat"
HELP = "run the 5CAT gate battery (A-E, or the gates chosen with --gate) on a model, beside copy-last, context-mean and the oracle"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="CKPT",
                        help="a .safetensors checkpoint, an original .pt checkpoint, or a baseline: "
                             + ", ".join(BASELINES))
    parser.add_argument("--val", required=True, metavar="STORE_OR_NPZ", help="VAL: a store directory or a sequence NPZ")
    parser.add_argument("--ood", metavar="STORE_OR_NPZ", help="OOD: a store directory or a sequence NPZ (gate E needs it)")
    parser.add_argument("--articles", metavar="ARTICLES", help="article store or article NPZ for sequence NPZ inputs")
    parser.add_argument("--split-file", metavar="F", help="split JSON: evaluate only one part of the VAL store "
                        "(default for a checkpoint in a run folder: the run's split.json)")
    parser.add_argument("--val-part", default="val", help="part of the split to use (default val)")
    parser.add_argument("--allow-train-overlap", action="store_true",
                        help="score a VAL or OOD set that holds articles the checkpoint was trained on")
    parser.add_argument("--samples", type=int, default=5000, help="samples per split (default 5000)")
    parser.add_argument("--horizon", type=int, default=5, help="rollout steps of gate D (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling and ablations (default 0)")
    parser.add_argument("--legacy", action="store_true", help="the original tool's definitions (see docs/5cat.md)")
    parser.add_argument("--gate", action="append", default=[], metavar="NAME",
                        help="run this registered gate (repeatable; default: A-E and vs_baselines); "
                             "`lvm-workbench plugins --kind gate` lists them")
    parser.add_argument("--threshold", action="append", default=[], metavar="GATE.KEY=VALUE",
                        help="override a threshold or parameter of a chosen gate, e.g. A.val.margin_vs_best_offset=0.1 (repeatable)")
    parser.add_argument("--json", metavar="OUT", help="write gates.json (schema-versioned) here")
    parser.add_argument("--report", metavar="OUT.md", help="write a Markdown report here")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto (default cpu)")
    parser.add_argument("--batch-size", type=int, default=2048, help="rows per forward pass (default 2048)")


def _thresholds(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw in pairs:
        key, eq, value = raw.partition("=")
        if not eq or "." not in key:
            raise InputError("--threshold", f"expected GATE.KEY=VALUE, got {raw!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _is_store(path: Path) -> bool:
    return path.is_dir()


def _articles(args: argparse.Namespace, tmp: Path) -> ArticleStore:
    if not args.articles:
        raise InputError("--articles", "sequence NPZ inputs need --articles (a store directory or an article NPZ)")
    path = Path(args.articles)
    if _is_store(path):
        return ArticleStore.open(path)
    from lvm_core.legacy.npz import import_articles_npz

    return import_articles_npz(path, tmp / "articles.lvmstore")


def _split_input(flag: str, value: str, args: argparse.Namespace, tmp: Path, cache: dict[str, ArticleStore],
                 part: str | None, context_len: int, known: CheckpointSplit | None = None,
                 split: Split | None = None, notes: dict[str, Any] | None = None) -> tuple[ArticleStore, np.ndarray]:
    path = Path(value)
    if not path.exists():
        raise InputError(value, f"no such file or directory ({flag} expects a store directory or a sequence NPZ)")
    if _is_store(path):
        store = ArticleStore.open(path)
        positions = None
        if part is not None and split is not None and (known is None or known.trained_on(store) or args.split_file):
            positions = split.positions(store, part)
        if known is not None and known.known:
            overlap = training_overlap(known, store, positions)
            n = store.n_articles if positions is None else len(positions)
            if overlap != 0 and not args.allow_train_overlap:
                raise refuse_overlap(flag, value, known, overlap, n)
            if notes is not None and overlap != 0:
                notes[flag] = f"{'some' if overlap is None else overlap} of {n} articles were trained on " \
                              "(--allow-train-overlap)"
        return store, make_windows(store, positions, context_len=context_len).target_rows
    from lvm_core.legacy.npz import load_sequences_npz, windows_for_sequences

    if "articles" not in cache:
        cache["articles"] = _articles(args, tmp)
    store = cache["articles"]
    seqs = load_sequences_npz(path, store=store)
    mapping = windows_for_sequences(store, seqs)
    rows = mapping.windows().target_rows
    if len(rows) == 0:
        raise InputError(value, f"no sequence matches the article store ({mapping.n_missing} not found, "
                         f"{mapping.n_target_differs} targets differ, {mapping.n_context_differs} contexts differ)")
    if len(rows) < seqs.n:
        print(f"note: {value}: {seqs.n - len(rows)} of {seqs.n} sequences do not match the store and are skipped "
              "(windows that cross articles, or vectors that differ)", file=sys.stderr)
    return store, rows


def _predictor(args: argparse.Namespace, host: Any, ddp: Any) -> tuple[Any, dict[str, Any], int]:
    """(predictor, description, context_len) for --model; under torchrun each rank predicts its
    share of the samples (lvm_core/training/distributed.py)."""
    if args.model in BASELINES:
        return args.model, {"model": f"baseline {args.model}"}, 5
    path = Path(args.model)
    from lvm_core.device import select_device

    device, _why = select_device(args.device, source="--device")
    device = distributed.local_device(ddp, device)
    if path.suffix == ".pt" and path.is_file() and not path.name.endswith(".state.pt"):
        from lvm_core.legacy.checkpoint import legacy_model

        model, meta = legacy_model(path)
    else:
        model = load_checkpoint_model(path, device=device, host=host)
        meta = model.checkpoint_meta  # type: ignore[attr-defined]
    about = {"model": str(path), "architecture": f"{meta['arch']} {json.dumps(meta['arch_params'], sort_keys=True)}"}
    return (distributed.sharded_predictor(ddp, torch_predictor(model, device, args.batch_size)), about,
            int(meta["context_len"]))


def run(args: argparse.Namespace) -> int:
    if args.samples < 1 or args.horizon < 1:
        raise InputError("--samples/--horizon", "expected positive integers")
    if args.split_file and not Path(args.split_file).is_file():
        raise InputError(args.split_file, "no such split file")
    host = load_plugins()
    warn_problems(host)
    names = args.gate or list(DEFAULT_GATES)
    problem = gate_names_problem(names)
    if problem:
        raise InputError("--gate", problem)
    gates = resolve_gates(gate_lookup(host, "--gate"), names, thresholds=_thresholds(args.threshold),
                          source="--threshold")
    known, split, split_about = _resolve_split(args)
    ddp = distributed.init("cuda" if args.device.startswith("cuda") else "cpu")  # torchrun: gloo on CPU, nccl on CUDA
    try:
        predictor, about, context_len = _predictor(args, host, ddp)
        about["split"] = split_about
        result = _battery(args, predictor, gates, context_len, known, split, split_about)
    finally:
        distributed.shutdown(ddp)
    if not ddp.is_main:  # rank 0 alone prints and writes
        return exit_codes.OK if result.passed else exit_codes.GATE_FAILED
    return _report(args, result, about)


def _resolve_split(args: argparse.Namespace) -> tuple[CheckpointSplit | None, Split | None, dict[str, Any]]:
    """(what the checkpoint knows of its split, the split to evaluate, its description for the
    output and gates.json). The description's "status" is own, given, unknown or baseline."""
    given = Split.load(args.split_file) if args.split_file else None
    path = Path(args.model)
    if args.model in BASELINES:
        return None, given, {"status": "baseline (not trained)", "file": args.split_file}
    known = None
    if path.suffix == ".safetensors" or (path.exists() and path.suffix != ".pt"):
        from lvm_core.training.checkpoint import read_checkpoint_meta

        known = resolve_checkpoint_split(path, read_checkpoint_meta(path))
    if known is not None and given is not None and known.split is None and given.sha256() == known.sha256:
        known = dataclasses.replace(known, split=given, path=Path(args.split_file))
    if known is None or not known.known:
        note = "the checkpoint records no split, so its training articles are not known"
        if given is not None:  # scored on the given part, but nothing ties that split to the model
            return known, given, {"status": "given", "part": args.val_part, "file": args.split_file,
                                  "verified": False, "note": note}
        return known, given, {"status": "unknown", "file": args.split_file, "note": note}
    split = given if given is not None else known.split
    return known, split, {"status": "given" if given is not None else "own", "part": args.val_part,
                          "file": str(args.split_file or known.path or ""), "sha256": known.sha256}


def _battery(args: argparse.Namespace, predictor: Any, gates: Any, context_len: int,
             known: CheckpointSplit | None = None, split: Split | None = None,
             split_about: dict[str, Any] | None = None) -> Any:
    notes: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="lvm-5cat-") as tmpdir:
        cache: dict[str, ArticleStore] = {}
        splits = {"val": _split_input("--val", args.val, args, Path(tmpdir), cache,
                                      args.val_part if split is not None else None, context_len, known, split, notes)}
        if args.ood:
            splits["ood"] = _split_input("--ood", args.ood, args, Path(tmpdir), cache, None, context_len, known,
                                         None, notes)
        if split_about is not None and notes:
            split_about["overlap_allowed"] = notes
        return run_battery(predictor, splits, gates, samples=args.samples, horizon=args.horizon,
                           context_len=context_len, seed=args.seed, legacy=args.legacy)


def split_line(split_about: dict[str, Any]) -> str:
    """"split: own, part val of runs/q/split.json" / "split: unknown" for the console."""
    status = split_about.get("status", "unknown")
    if status == "own" and not split_about.get("file"):
        line = f"split: the checkpoint's (sha256 {str(split_about.get('sha256'))[:12]}; split.json not found)"
    elif status in ("own", "given"):
        where = f"part {split_about.get('part', 'val')} of {split_about.get('file')}"
        line = f"split: {'the checkpoint' + chr(39) + 's own' if status == 'own' else 'given'}, {where}"
        if split_about.get("verified") is False:
            line += " (not verified: the checkpoint records no split)"
    else:
        line = f"split: {status}"
    if split_about.get("overlap_allowed"):
        line += "; TRAINING ARTICLES INCLUDED: " + "; ".join(f"{k} {v}" for k, v in split_about["overlap_allowed"].items())
    return line


def _report(args: argparse.Namespace, result: Any, about: dict[str, Any]) -> int:
    print(console_table(result, color=sys.stdout.isatty()))
    print(split_line(about["split"]))
    if about["split"].get("status") == "unknown":
        print("warning: split: unknown: the model's training articles are not known, so these numbers may "
              "include them (a checkpoint of a run folder knows its split)", file=sys.stderr)
    elif about["split"].get("verified") is False:
        print(f"warning: split: given but not verified: the checkpoint records no split, so {about['split']['file']} "
              "cannot be checked against its training articles (these numbers may include them)", file=sys.stderr)
    if not args.ood and any(g.key == "E" for g in result.gates):
        print("note: no --ood split, so gate E cannot run and the battery cannot pass", file=sys.stderr)
    if args.json:
        doc = result.to_json()
        doc["model"] = {k: v for k, v in about.items() if k != "split"}
        doc["split"] = about["split"]
        write_json(args.json, doc)
    if args.report:
        shown = {k: v for k, v in about.items() if k != "split"}
        write_text(args.report, markdown(result, about={**shown, "split": split_line(about["split"])[len("split: "):]}))
    return exit_codes.OK if result.passed else exit_codes.GATE_FAILED
