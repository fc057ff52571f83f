"""Building a store in shards: `data build --shard I/N` on any number of machines, then `data merge`.

Why: embedding is the slow part of a build (hours for a large corpus on one machine). Every
shard reads and chunks the whole corpus (cheap and deterministic), keeps the I-th of N
contiguous ranges of the kept documents, and embeds only those. Its manifest records the range
and the hash of every chunk text of the whole build, so `merge_shards` can prove that the
joined store holds exactly the rows, texts, articles and ids a single build writes. The vectors
are copied bit for bit (never re-normalised), so the merged store equals the single build.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from .store import ArticleStore, text_hash, write_store

SHARD_RE = re.compile(r"^(\d+)/(\d+)$")
#: manifest fields every shard of one build shares
SAME_FIELDS = ("dim", "dtype", "embedder", "corpus", "normalized")
SAME_EXTRA = ("builder", "counts", "chunk_words")


def parse_shard(text: str, source: str = "--shard") -> tuple[int, int]:
    """'I/N' with 0 <= I < N (I counts from 0, as a Slurm array task id does)."""
    m = SHARD_RE.match(text.strip())
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise InputError(source, f"expected I/N with 0 <= I < N (e.g. 0/4 ... 3/4), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def shard_range(n_documents: int, index: int, count: int) -> tuple[int, int]:
    """Documents [start, stop) of shard `index` of `count`: contiguous, in corpus order, sizes
    differing by at most one; together the shards cover every document once."""
    if count > n_documents:
        raise InputError("--shard", f"{count} shards for {n_documents} documents: every shard needs at least one "
                                    f"(use at most {n_documents} shards)")
    return n_documents * index // count, n_documents * (index + 1) // count


def _shard_info(store: ArticleStore) -> dict:
    info = store.manifest.extra.get("shard")
    if not isinstance(info, dict):
        raise InputError(str(store.path), "not a shard store (built without --shard): nothing to merge")
    return info


def merge_shards(paths: Sequence[str | Path], out: str | Path) -> ArticleStore:
    """Join the shard stores of one build (any order) into the store a single build writes."""
    stores = [ArticleStore.open(p) for p in paths]
    if not stores:
        raise InputError("data merge", "expected at least one shard store")
    infos = [_shard_info(s) for s in stores]
    count = infos[0]["count"]
    by_index: dict[int, ArticleStore] = {}
    for store, info in zip(stores, infos):
        if info["count"] != count:
            raise InputError(str(store.path), f"is shard {info['index']}/{info['count']}, but "
                                              f"{stores[0].path} is of a build in {count} shards")
        if info["index"] in by_index:
            raise InputError(str(store.path), f"shard {info['index']}/{count} is given twice "
                                              f"(also {by_index[info['index']].path})")
        _check_same_build(stores[0], store)
        by_index[info["index"]] = store
    missing = sorted(set(range(count)) - set(by_index))
    if missing:
        raise InputError("data merge", f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing; "
                                       f"a build in {count} shards needs all of them")
    ordered = [by_index[i] for i in range(count)]
    first = infos[0]
    texts = [t for s in ordered for t in (s.texts or [])]
    if text_hash(texts) != first["text_sha256"] or len(texts) != first["total_chunks"]:
        raise InputError("data merge", "the shards' chunk texts do not add up to the build they were cut from "
                                       "(were they built from different corpus versions?)")
    vectors = np.concatenate([np.asarray(s.vectors) for s in ordered], axis=0)
    articles = [a for s in ordered for a in (s.articles or [])]
    lengths = np.concatenate([s.lengths for s in ordered])
    ids = np.concatenate([s.article_ids for s in ordered])
    if not np.array_equal(ids, np.arange(first["total_documents"])):
        raise InputError("data merge", "the shards' article ids do not cover the build's documents once, in order")
    m = ordered[0].manifest
    extra = {k: v for k, v in m.extra.items() if k not in ("shard", "embed_seconds")}
    extra["embed_seconds"] = round(sum(float(s.manifest.extra.get("embed_seconds", 0.0)) for s in ordered), 1)
    extra["merged_from"] = {"shards": count, "paths": [str(s.path) for s in ordered]}
    return write_store(out, vectors, lengths, ids, chunk_index=np.concatenate([s.chunk_index for s in ordered]),
                       texts=texts, articles=articles, embedder=m.embedder, corpus=m.corpus, dtype=m.dtype,
                       extra=extra, unit_length=m.normalized, normalize=False)


def _check_same_build(a: ArticleStore, b: ArticleStore) -> None:
    """Shards of one build share embedder, corpus, builder settings and document counts."""
    for name in SAME_FIELDS:
        if getattr(a.manifest, name) != getattr(b.manifest, name):
            raise InputError(str(b.path), f"manifest {name} differs from {a.path}: not a shard of the same build")
    for name in SAME_EXTRA:
        if a.manifest.extra.get(name) != b.manifest.extra.get(name):
            raise InputError(str(b.path), f"manifest extra.{name} differs from {a.path}: not a shard of the same build")
    ia, ib = _shard_info(a), _shard_info(b)
    for key in ("total_documents", "total_chunks", "text_sha256"):
        if ia[key] != ib[key]:
            raise InputError(str(b.path), f"shard {key} differs from {a.path}: not a shard of the same build")
