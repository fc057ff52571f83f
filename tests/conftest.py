"""Shared fixtures. Tiny synthetic stores are for unit tests only; end-to-end tests use the
bundled real data in examples/data/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lvm_core.data.store import ArticleStore, write_store

ROOT = Path(__file__).resolve().parents[1]
DEMO_STORE = ROOT / "examples" / "data" / "python-docs-minilm"
OOD_STORE = ROOT / "examples" / "data" / "kjv-minilm"


def make_tiny_store(path: Path, lengths=(8, 7, 9, 6), dim: int = 16, seed: int = 0, ids=None) -> ArticleStore:
    """Articles whose chunks drift smoothly (a random walk), so neighbours are similar."""
    rng = np.random.default_rng(seed)
    vecs = []
    for n in lengths:
        x = rng.normal(size=dim)
        for _ in range(n):
            x = x + 0.5 * rng.normal(size=dim)
            vecs.append(x.copy())
    ids = list(ids) if ids is not None else [100 + i for i in range(len(lengths))]
    texts = [f"chunk {i}" for i in range(sum(lengths))]
    return write_store(path, np.array(vecs), lengths, ids, texts=texts,
                       articles=[{"id": a, "title": f"Article {a}", "source": "synthetic"} for a in ids],
                       embedder={"name": "synthetic", "dim": dim}, corpus={"source": "synthetic"}, dtype="float32")


@pytest.fixture
def tiny_store(tmp_path) -> ArticleStore:
    return make_tiny_store(tmp_path / "tiny.lvmstore")
