"""`lvm-workbench data info STORE`: what a store holds, where it came from, and how long its parts are."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from lvm_core.data.store import ArticleStore

NAME = "info"
HELP = "describe an article store: manifest, counts, chunks per document, words per chunk"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", help="store directory")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _stats(x: np.ndarray) -> dict[str, float]:
    if len(x) == 0:
        return {}
    return {"min": int(x.min()), "p5": float(np.percentile(x, 5)), "median": float(np.median(x)),
            "mean": round(float(x.mean()), 1), "p95": float(np.percentile(x, 95)), "max": int(x.max())}


def store_info(store: ArticleStore, context_len: int = 5) -> dict[str, Any]:
    """The numbers `data info` prints; windows count targets with a full context inside their article."""
    m = store.manifest
    lengths = np.asarray(store.lengths)
    info: dict[str, Any] = {
        "path": str(store.path),
        "n_articles": store.n_articles,
        "n_chunks": store.n_chunks,
        "dim": store.dim,
        "dtype": str(store.vectors.dtype),
        "windows": int(np.maximum(lengths - context_len, 0).sum()),
        "context_len": context_len,
        "chunks_per_article": _stats(lengths),
        "embedder": m.embedder,
        "corpus": m.corpus,
        "text_sha256": m.text_sha256,
        "created": m.created,
        "format_version": m.format_version,
        "nonfinite_rows": store.nonfinite_record(),  # None: not recorded (a run start scans it)
    }
    texts = store.texts
    if texts is not None:
        info["words_per_chunk"] = _stats(np.array([len(t.split()) for t in texts]))
    if "builder" in m.extra:
        info["build"] = m.extra["builder"].get("config", {})
    return info


def run(args: argparse.Namespace) -> int:
    info = store_info(ArticleStore.open(args.store))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    emb, corpus = info["embedder"], info["corpus"]
    print(f"store      {info['path']}")
    print(f"size       {info['n_articles']} articles, {info['n_chunks']} chunks, {info['dim']}-D {info['dtype']}, "
          f"{info['windows']} windows of context {info['context_len']}")
    if emb:
        sha = str(emb.get("weights_sha256") or "")
        print(f"embedder   {emb.get('name', '?')} ({emb.get('dim', '?')}-D, weights sha256 {sha[:12] or '?'}…)")
        if emb.get("pooling"):
            print(f"pooling    {emb['pooling']}")
    if corpus:
        parts = corpus.get("parts") or [corpus]  # a pooled store lists each source
        what = ", ".join(" ".join(str(p[k]) for k in ("package", "version") if p.get(k)) or str(p.get("source", "?"))
                         for p in parts)
        print(f"corpus     {corpus.get('reader', '?')}: {what}")
    print(f"text hash  {info['text_sha256'] or '(no texts)'}")
    print(f"created    {info['created']}")
    print(f"NaN/Inf    {_nonfinite_line(info['nonfinite_rows'])}")
    s = info["chunks_per_article"]
    if s:
        print(f"chunks per article  min {s['min']}  median {s['median']:g}  mean {s['mean']}  max {s['max']}")
    w = info.get("words_per_chunk")
    if w:
        print(f"words per chunk     p5 {w['p5']:g}  median {w['median']:g}  mean {w['mean']}  p95 {w['p95']:g}  max {w['max']}")
    return 0


def _nonfinite_line(rec: dict[str, Any] | None) -> str:
    if rec is None:
        return "not recorded (a run scans vectors.npy before training; `data validate` lists any)"
    if not rec["count"]:
        return "0 rows (recorded when the store was written)"
    more = ", ..." if rec["count"] > len(rec["rows"]) else ""
    return f"{rec['count']} row(s): {', '.join(map(str, rec['rows']))}{more} (a run refuses this store)"
