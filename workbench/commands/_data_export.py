"""`lvm-workbench data export STORE --out OUT.npz`: our data in the original NPZ layouts.

By default the store's windows (optionally one part of a split) go out in the VAL/OOD layout
the original 5CAT reads (`contexts`, `targets`, `article_ids`, `target_indices` = chunk index
of the target); with --articles-npz the whole store goes out as an original article NPZ.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lvm_core.data.store import ArticleStore
from lvm_core.data.windows import Split, make_windows
from lvm_core.errors import InputError
from lvm_core.legacy.npz import export_articles_npz, export_windows_npz

NAME = "export"
HELP = "export a store's windows (VAL/OOD layout) or the whole store (article NPZ) for the original tools"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", metavar="STORE", help="article store directory")
    parser.add_argument("--out", required=True, help="the .npz file to write")
    parser.add_argument("--split-file", metavar="SPLIT.json", help="a split written by a run or `data split`")
    parser.add_argument("--part", help="with --split-file: the part to export (e.g. val, ood)")
    parser.add_argument("--context-len", type=int, default=5, help="context length of the windows (default 5)")
    parser.add_argument("--articles-npz", action="store_true", help="export the whole store as an article NPZ")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists (atomically)")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not args.force:
        raise InputError(str(out), "already exists; pass --force to replace it")
    if bool(args.split_file) != bool(args.part):
        raise InputError("--split-file/--part", "give both (the split file and the part to export) or neither")
    if args.articles_npz and args.split_file:
        raise InputError("--articles-npz", "exports the whole store; it takes no --split-file")
    if args.context_len < 1:
        raise InputError("--context-len", f"expected a positive integer, got {args.context_len}")
    store = ArticleStore.open(args.store)
    try:
        if args.articles_npz:
            export_articles_npz(store, out)
            print(f"exported {store.n_chunks} chunks in {store.n_articles} articles to {out}")
            return 0
        positions = Split.load(args.split_file).positions(store, args.part) if args.split_file else None
        windows = make_windows(store, positions, context_len=args.context_len)
        if len(windows) == 0:
            raise InputError(str(args.store), f"no windows of context length {args.context_len} in the chosen articles")
        export_windows_npz(windows, out)
    except OSError as exc:
        raise InputError(str(out), f"could not write ({exc}); nothing was replaced") from None
    what = f"part {args.part!r}" if args.part else "all articles"
    print(f"exported {len(windows)} windows (L={args.context_len}, {what}) to {out}")
    return 0
