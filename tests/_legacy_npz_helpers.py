"""Small original-format NPZs (reference/lnsp-reference.md section 2), made in tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def random_walk_articles(lengths=(7, 6, 8), dim: int = 12, seed: int = 0) -> np.ndarray:
    """Unnormalised chunk vectors, article after article, neighbours similar."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in lengths:
        x = rng.normal(size=dim)
        for _ in range(n):
            x = x + 0.5 * rng.normal(size=dim)
            rows.append(x * rng.uniform(0.5, 3.0))  # not unit length, as the original export
    return np.asarray(rows, dtype=np.float32)


def write_article_npz(path: Path, lengths=(7, 6, 8), ids=(42, 7, 1500), dim: int = 12, seed: int = 0,
                      shuffle: bool = True, **overrides) -> dict[str, np.ndarray]:
    """An article NPZ like `wikipedia_584k_fresh.npz`; rows shuffled so the import must sort them.

    Returns the arrays in canonical order (article as given in `ids`, chunk ascending)."""
    vecs = random_walk_articles(lengths, dim, seed)
    aids = np.repeat(np.asarray(ids, dtype=np.int32), lengths)
    chunks = np.concatenate([np.arange(n) for n in lengths]).astype(np.int32)
    texts = np.array([f"article {a} chunk {c}" for a, c in zip(aids, chunks)])
    titles = np.array([f"Title {a}" for a in aids])
    cpe = np.array([f"cpe-{i}" for i in range(len(aids))])
    canonical = dict(vectors=vecs, article_indices=aids, chunk_indices=chunks, concept_texts=texts,
                     article_titles=titles, cpe_ids=cpe)
    order = np.random.default_rng(seed + 1).permutation(len(aids)) if shuffle else np.arange(len(aids))
    arrays = {k: v[order] for k, v in canonical.items()}
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return canonical


def windows_of(vectors: np.ndarray, lengths, ids, context_len: int = 5):
    """Within-article windows: (contexts, targets, article ids, target chunk indices)."""
    ctx, tgt, aid, tix = [], [], [], []
    start = 0
    for n, a in zip(lengths, ids):
        for t in range(context_len, n):
            ctx.append(vectors[start + t - context_len:start + t])
            tgt.append(vectors[start + t])
            aid.append(a)
            tix.append(t)
        start += n
    return np.asarray(ctx), np.asarray(tgt), np.asarray(aid, np.int64), np.asarray(tix, np.int64)
