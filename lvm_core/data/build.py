"""The dataset builder: documents -> clean paragraphs -> chunks -> embeddings -> article store.

Documents with fewer than `min_chunks` chunks are dropped (they give no full context window);
`max_docs` keeps a deterministic, evenly spread subset of the rest; `split_chunks` cuts long
documents into consecutive pseudo-documents. Embeddings go through the embedding cache, so a
rerun or an interrupted build only embeds what is missing, and the store is written atomically.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from .. import __version__
from .corpus import Corpus, Document
from .embedding import Embedder, EmbeddingCache, describe, embed_with_cache
from ..errors import InputError
from ..progress import Progress
from ..progress import Progress
from .store import ArticleStore, text_hash, write_store
from .text import chunk_text, clean_paragraphs


@dataclass(frozen=True)
class BuildConfig:
    """Every knob of a build; it is written into the manifest (extra.build)."""

    chunk_words: int = 120
    min_chunks: int = 10
    max_docs: int | None = None
    max_chunks_per_doc: int | None = None
    split_chunks: int | None = None
    min_words: int = 8
    min_plain: float = 0.6
    dtype: str = "float16"
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.chunk_words < 1 or self.min_chunks < 1:
            raise ValueError("chunk_words and min_chunks must be >= 1")
        if self.split_chunks is not None and self.split_chunks < self.min_chunks:
            raise ValueError("split_chunks must be >= min_chunks")


@dataclass
class ChunkedDocument:
    document: Document
    chunks: list[str]
    part: int = 0  # pseudo-document number when split_chunks cuts a document
    n_parts: int = 1

    @property
    def title(self) -> str:
        title = self.document.title
        return f"{title} (part {self.part + 1} of {self.n_parts})" if self.n_parts > 1 else title


def chunk_corpus(corpus: Corpus, config: BuildConfig) -> tuple[list[ChunkedDocument], dict[str, int]]:
    """Clean and chunk every document, then apply the document limits. Returns (kept, counts)."""
    counts = {"documents_read": len(corpus), "documents_with_prose": 0, "chunks_read": 0,
              "documents_too_short": 0}
    eligible: list[ChunkedDocument] = []
    for doc in corpus:
        paras = clean_paragraphs(doc.paragraphs(), min_words=config.min_words, min_plain=config.min_plain)
        chunks = chunk_text(paras, config.chunk_words)
        if chunks:
            counts["documents_with_prose"] += 1
        counts["chunks_read"] += len(chunks)
        pieces = _split(chunks, config.split_chunks, config.min_chunks)
        for part, piece in enumerate(pieces):
            if len(piece) < config.min_chunks:
                counts["documents_too_short"] += 1
                continue
            if config.max_chunks_per_doc is not None:
                piece = piece[: config.max_chunks_per_doc]
            eligible.append(ChunkedDocument(doc, piece, part, len(pieces)))
    counts["documents_eligible"] = len(eligible)
    kept = select_spread(eligible, config.max_docs)
    counts["documents_kept"] = len(kept)
    counts["chunks_kept"] = sum(len(d.chunks) for d in kept)
    return kept, counts


def _split(chunks: list[str], size: int | None, min_chunks: int) -> list[list[str]]:
    """Consecutive pieces of `size` chunks; a last piece shorter than `min_chunks` joins the one before."""
    if not size or len(chunks) <= size:
        return [chunks]
    pieces = [chunks[i:i + size] for i in range(0, len(chunks), size)]
    if len(pieces) > 1 and len(pieces[-1]) < min_chunks:
        last = pieces.pop()
        pieces[-1] = pieces[-1] + last
    return pieces


def select_spread(items: list[Any], limit: int | None) -> list[Any]:
    """At most `limit` items evenly spread over `items` (first and last included), order kept.

    A subset then covers the whole corpus (every section of a manual) instead of its first part.
    """
    if limit is None or limit >= len(items):
        return list(items)
    if limit <= 0:
        return []
    if limit == 1:
        return [items[0]]
    idx = np.round(np.linspace(0, len(items) - 1, limit)).astype(int)
    return [items[i] for i in idx]


def build_store(
    corpus: Corpus,
    embedder: Embedder,
    out: str | Path,
    *,
    config: BuildConfig = BuildConfig(),
    cache_dir: str | Path | None = None,
    progress_stream: TextIO | None = None,
    quiet: bool = False,
    shard: tuple[int, int] | None = None,
) -> ArticleStore:
    """Build an article store from a corpus. The output appears only when it is complete.

    shard=(i, n) embeds only the i-th of n contiguous, deterministic ranges of the kept documents
    (lvm_core/data/shards.py joins the n shard stores into the store a single build writes)."""
    kept, counts = chunk_corpus(corpus, config)
    if not kept:
        src = str(corpus.provenance.get("source", "corpus"))
        raise InputError(src, f"no document has at least {config.min_chunks} chunks of "
                              f"{config.chunk_words} words after cleaning ({counts['documents_read']} documents read)")
    all_texts = [c for d in kept for c in d.chunks]
    first, shard_info = 0, None
    if shard is not None:
        from .shards import shard_range

        first, stop = shard_range(len(kept), *shard)
        shard_info = {"index": shard[0], "count": shard[1], "documents": [first, stop], "total_documents": len(kept),
                      "total_chunks": len(all_texts), "text_sha256": text_hash(all_texts)}
        kept = kept[first:stop]
    texts = [c for d in kept for c in d.chunks]
    cache = EmbeddingCache(cache_dir, embedder) if cache_dir is not None else None
    progress = None if quiet else Progress(len(texts), f"embedding with {embedder.name}", progress_stream)
    started = time.monotonic()
    vectors = embed_with_cache(embedder, texts, cache, batch_size=config.batch_size, progress=progress)
    if progress is not None:
        progress.close()
    seconds = time.monotonic() - started
    lengths = [len(d.chunks) for d in kept]
    articles = [{"id": first + i, "title": d.title,
                 "source": d.document.source or d.document.id, "doc_id": d.document.id, "part": d.part}
                for i, d in enumerate(kept)]
    extra = {
        "builder": {"version": __version__, "config": asdict(config)},
        "counts": counts,
        "chunk_words": chunk_word_stats(all_texts),
        "embed_seconds": round(seconds, 1),
        **({"shard": shard_info} if shard_info is not None else {}),
    }
    return write_store(out, vectors, lengths, list(range(first, first + len(kept))), texts=texts, articles=articles,
                       embedder=describe(embedder), corpus=dict(corpus.provenance), dtype=config.dtype,
                       extra=extra)


def chunk_word_stats(texts: list[str]) -> dict[str, Any]:
    """Words per chunk (mean, p5, median, p95, max) of a whole build, for the manifest."""
    words = np.array([len(t.split()) for t in texts])
    return {"mean": round(float(words.mean()), 1), "p5": int(np.percentile(words, 5)),
            "median": int(np.median(words)), "p95": int(np.percentile(words, 95)), "max": int(words.max())}
