"""`lvm-workbench data build`: read a corpus, chunk it, embed it and write an article store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from lvm_core.data.build import BuildConfig, build_store
from lvm_core.data.corpus import concat_corpora
from lvm_core.data.embedding import default_cache_dir
from lvm_core.data.shards import parse_shard
from lvm_core.errors import InputError, InputErrors
from lvm_core.params import Param, resolve_params

from ..plugin_guard import embedder_from, read_corpus, who
from ..plugin_host import Item, default_host

NAME = "build"
HELP = "build an article store from a corpus (Debian docs, KJV, a folder, JSONL) with an embedder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reader", required=True, help="corpus reader: debian-doc, kjv, text-folder, jsonl, ...")
    parser.add_argument("--source", action="append", default=[],
                        help="what the reader reads: a package name, a .deb, a folder, a file; "
                             "repeat it to pool several sources into one store")
    parser.add_argument("--embedder", default="minilm", help="embedder name (default minilm; potion-base-8m is fast)")
    parser.add_argument("--out", required=True, help="output store directory (written atomically)")
    parser.add_argument("--min-chunks", type=int, default=10, help="drop documents with fewer chunks (default 10)")
    parser.add_argument("--max-docs", type=int, default=None, help="keep at most N documents, evenly spread")
    parser.add_argument("--max-chunks-per-doc", type=int, default=None, help="keep only the first N chunks of a document")
    parser.add_argument("--split-chunks", type=int, default=None,
                        help="cut documents into consecutive pseudo-documents of N chunks (e.g. KJV books)")
    parser.add_argument("--chunk-words", type=int, default=120, help="words per chunk at most (default 120)")
    parser.add_argument("--dtype", choices=("float16", "float32"), default="float16", help="stored vector type")
    parser.add_argument("--cache", default=None,
                        help="cache directory for downloads and embeddings (default ~/.cache/lvm-workbench)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a reader parameter")
    parser.add_argument("--embedder-param", action="append", default=[], metavar="KEY=VALUE",
                        help="an embedder parameter (e.g. batch_size=16, device=cuda)")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="embed only shard I of N (I from 0) of the kept documents; join the N shard "
                             "stores with `data merge` (docs/data.md)")
    parser.add_argument("--force", action="store_true", help="replace an existing store at --out")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def parse_params(pairs: Sequence[str], item: Item, flag: str) -> dict[str, Any]:
    """KEY=VALUE strings coerced to the item's declared parameter types."""
    declared = {p.name: p for p in item.params}
    given: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InputError(flag, f"expected KEY=VALUE, got {pair!r}")
        p = declared.get(key)
        given[key] = _coerce(value, p) if p is not None else value
    values, errors = resolve_params(item.params, given, where=item.name, source=flag)
    if errors:
        raise errors[0] if len(errors) == 1 else InputErrors(flag, errors)
    return values


def _coerce(value: str, p: Param) -> Any:
    try:
        if p.type == "int":
            return int(value)
        if p.type == "float":
            return float(value)
    except ValueError:
        return value  # resolve_params reports the type
    if p.type == "bool":
        return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(value.lower(), value)
    if p.type == "list":
        return value.split(",")
    return value


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not args.force:
        raise InputError(str(out), "already exists (pass --force to replace it; it is replaced only when the build succeeds)")
    try:
        config = BuildConfig(chunk_words=args.chunk_words, min_chunks=args.min_chunks, max_docs=args.max_docs,
                             max_chunks_per_doc=args.max_chunks_per_doc, split_chunks=args.split_chunks,
                             dtype=args.dtype)
    except ValueError as exc:
        raise InputError("data build", str(exc)) from None
    shard = parse_shard(args.shard) if args.shard is not None else None
    host = default_host()
    reader = host.get("corpus_reader", args.reader, source="--reader")
    embedder_item = host.get("embedder", args.embedder, source="--embedder")
    reader_params = parse_params(args.param, reader, "--param")
    embedder_params = parse_params(args.embedder_param, embedder_item, "--embedder-param")
    cache_root = Path(args.cache) if args.cache else default_cache_dir()
    if args.reader == "debian-doc" and not reader_params.get("cache_dir"):
        reader_params["cache_dir"] = str(cache_root / "deb")

    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    corpora = []
    for source in args.source or [""]:
        log(f"reading {args.reader} {source}".rstrip())
        corpora.append(read_corpus(reader, source, reader_params))
    corpus = concat_corpora(corpora)
    log(f"loading embedder {args.embedder}")
    embedder = embedder_from(embedder_item, embedder_params)
    store = build_store(corpus, embedder, out, config=config,
                        cache_dir=None if args.no_cache else cache_root / "embeddings", quiet=args.quiet,
                        shard=shard)
    bad = store.nonfinite_record()
    if bad and bad["count"]:
        print(f"warning: {who(embedder_item)} gave {bad['count']} row(s) with NaN or Inf (rows "
              f"{', '.join(map(str, bad['rows']))}{', ...' if bad['count'] > len(bad['rows']) else ''}; texts.jsonl "
              "has their texts); recorded in manifest.json, and a run refuses this store", file=sys.stderr)
    counts = store.manifest.extra.get("counts", {})
    if shard is not None:
        info = store.manifest.extra["shard"]
        print(f"shard {shard[0]}/{shard[1]}: documents {info['documents'][0]}-{info['documents'][1] - 1} of "
              f"{info['total_documents']} (join the {shard[1]} shards with `lvm-workbench data merge`)")
    print(f"wrote {out}: {store.n_articles} documents, {store.n_chunks} chunks, {store.dim}-D {store.vectors.dtype} "
          f"({counts.get('documents_read', '?')} documents read, {counts.get('documents_eligible', '?')} with "
          f">= {config.min_chunks} chunks)")
    return 0
