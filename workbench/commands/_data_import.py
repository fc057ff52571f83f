"""`lvm-workbench data import SRC.npz --out STORE`: an original-format NPZ into our formats.

An article NPZ becomes an article store. With --sequences, a sequences NPZ (training, VAL/OOD,
P6) is checked (against --store when given) and rewritten in the pickle-free VAL/OOD layout,
L2-normalised, so it never needs --trust-pickle again. Nothing is written unless the input
validates, and an existing output is replaced only with --force, atomically.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lvm_core.data.checks import ValidationReport
from lvm_core.data.store import ArticleStore
from lvm_core.errors import InputError
from lvm_core.legacy.npz import (legacy_articles_to_store, read_articles_npz, read_sequences_npz, save_sequences_npz,
                                 validate_legacy_articles, validate_sequences)

NAME = "import"
HELP = "import an original-format article NPZ as a store (or, with --sequences, a sequences NPZ)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="SRC.npz", help="the original NPZ")
    parser.add_argument("--out", required=True, help="store directory to write (with --sequences: an .npz file)")
    parser.add_argument("--sequences", action="store_true",
                        help="SRC is a sequences NPZ (contexts and targets), not an article NPZ")
    parser.add_argument("--store", metavar="STORE", help="with --sequences: check every target against this store")
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                        help="vector dtype of the new store (default float32, as the original)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="read object arrays (e.g. `metadata`) through a data-only unpickler: str, numbers, lists, dicts; any other object is refused")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists (atomically)")


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def print_warnings(report: ValidationReport) -> None:
    for p in report.warnings:
        print(p.line(), file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not args.force:
        raise InputError(str(out), "already exists; pass --force to replace it")
    if args.store and not args.sequences:
        raise InputError("--store", "only applies with --sequences")
    if args.sequences:
        return _import_sequences(args, out)
    arts = read_articles_npz(args.src, trust_pickle=args.trust_pickle, warn=warn)
    report = validate_legacy_articles(arts)
    print_warnings(report)
    report.raise_for_errors()
    if arts.cpe_ids is not None:
        warn(f"{args.src}: key 'cpe_ids' is not kept (the store has no per-row id field)")
    try:
        store = legacy_articles_to_store(arts, out, dtype=args.dtype)
    except OSError as exc:
        raise InputError(str(out), f"could not write the store ({exc}); nothing was replaced") from None
    print(f"imported {store.n_chunks} chunks in {store.n_articles} articles (D={store.dim}, {args.dtype}) into {out}")
    return 0


def _import_sequences(args: argparse.Namespace, out: Path) -> int:
    seqs = read_sequences_npz(args.src, trust_pickle=args.trust_pickle, warn=warn)
    store = ArticleStore.open(args.store) if args.store else None
    report = validate_sequences(seqs, store)
    print_warnings(report)
    report.raise_for_errors()
    try:
        save_sequences_npz(seqs.normalized(), out)
    except OSError as exc:
        raise InputError(str(out), f"could not write ({exc}); nothing was replaced") from None
    ids = "with article ids" if seqs.article_ids is not None else "without article ids"
    print(f"imported {seqs.n} sequences (L={seqs.context_len}, D={seqs.dim}, {ids}) into {out}")
    return 0
