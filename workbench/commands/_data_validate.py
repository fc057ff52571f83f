"""`lvm-workbench data validate PATH`: check a store directory or an original-format NPZ.

Each problem is one line naming the file and key. Errors (the data cannot be used as is) make
the exit code 2; warnings (gaps in chunk indices, windows across articles) do not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lvm_core.data.checks import ValidationReport, validate_store
from lvm_core.data.store import ArticleStore
from lvm_core.errors import InputError
from lvm_core.legacy.npz import (ARTICLE_KEYS, SEQUENCE_KEYS, open_npz, read_articles_npz, read_sequences_npz,
                                 validate_legacy_articles, validate_sequences)

from .. import exit_codes

NAME = "validate"
HELP = "check a store or an original-format NPZ: shapes, NaN/zero rows, duplicates, gaps, targets vs store"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="a store directory, an article NPZ or a sequences NPZ")
    parser.add_argument("--store", metavar="STORE", help="for a sequences NPZ: check each target against this store")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="read object arrays (e.g. `metadata`) through a data-only unpickler: str, numbers, lists, dicts; any other object is refused")


def npz_kind(path: Path) -> str:
    """'sequences' if the NPZ has a target key, 'articles' if it has vectors and article ids."""
    with open_npz(path) as z:
        files = set(z.files)
    if files & set(SEQUENCE_KEYS["targets"]):
        return "sequences"
    if files & set(ARTICLE_KEYS["vectors"]) and files & set(ARTICLE_KEYS["article_ids"]):
        return "articles"
    raise InputError(str(path), "neither an article NPZ (vectors + article_indices) nor a sequences NPZ "
                                f"(contexts + targets); the file has {sorted(files)}")


def build_report(args: argparse.Namespace) -> ValidationReport:
    path = Path(args.path)
    if path.is_dir():
        if args.store:
            raise InputError("--store", "only applies to a sequences NPZ")
        return validate_store(path)

    def warn(message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    if npz_kind(path) == "articles":
        if args.store:
            raise InputError("--store", "only applies to a sequences NPZ")
        return validate_legacy_articles(read_articles_npz(path, trust_pickle=args.trust_pickle, warn=warn))
    store = ArticleStore.open(args.store) if args.store else None
    return validate_sequences(read_sequences_npz(path, trust_pickle=args.trust_pickle, warn=warn), store)


def run(args: argparse.Namespace) -> int:
    report = build_report(args)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        for p in report.problems:
            print(p.line())
        stats = ", ".join(f"{k}={v}" for k, v in report.stats.items())
        verdict = "OK" if report.ok else "FAILED"
        print(f"{verdict}: {report.source} ({report.kind}; {stats}): "
              f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    return exit_codes.OK if report.ok else exit_codes.BAD_INPUT
