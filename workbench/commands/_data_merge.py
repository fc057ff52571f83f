"""`lvm-workbench data merge SHARD... --out DIR`: join the stores of `data build --shard I/N`."""

from __future__ import annotations

import argparse
from pathlib import Path

from lvm_core.data.shards import merge_shards
from lvm_core.errors import InputError

NAME = "merge"
HELP = "join shard stores (data build --shard I/N) into the store a single build writes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shards", nargs="+", help="the shard store directories (any order)")
    parser.add_argument("--out", required=True, help="output store directory (written atomically)")
    parser.add_argument("--force", action="store_true", help="replace an existing store at --out")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not args.force:
        raise InputError(str(out), "already exists (pass --force to replace it; it is replaced only when the merge succeeds)")
    store = merge_shards(args.shards, out)
    print(f"wrote {out}: {store.n_articles} documents, {store.n_chunks} chunks, {store.dim}-D {store.vectors.dtype} "
          f"from {len(args.shards)} shards")
    return 0
