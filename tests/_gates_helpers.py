"""Hand-built stores for the 5CAT tests, where every gate's answer can be worked out by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lvm_core.data.store import ArticleStore, write_store
from lvm_core.evaluation.battery import resolve_gates
from workbench.plugin_host import load_plugins


def basis_store(path: Path, lengths=(12, 14, 11, 13)) -> ArticleStore:
    """Every chunk is its own basis vector (one-hot): cos is 1 for the same row, 0 otherwise."""
    n = int(sum(lengths))
    return write_store(path, np.eye(n, dtype=np.float32), lengths, [10 + i for i in range(len(lengths))],
                       dtype="float32")


def walk_store(path: Path, lengths=(15, 20, 12, 30, 14), dim: int = 64, rho: float = 0.6, seed: int = 0) -> ArticleStore:
    """Articles as unit random walks with adjacent cosine about `rho` (neighbours similar, far chunks not)."""
    rng = np.random.default_rng(seed)
    vecs = []
    for n in lengths:
        x = rng.normal(size=dim)
        for _ in range(n):
            x = rho * x / np.linalg.norm(x) + np.sqrt(1 - rho ** 2) * rng.normal(size=dim) / np.sqrt(dim)
            vecs.append(x.copy())
    return write_store(path, np.array(vecs), lengths, list(range(len(lengths))), dtype="float32")


def next_of_last(store: ArticleStore):
    """A perfect 'next chunk' model for a basis store: it finds which row the last frame is and
    returns the row after it. It reads only its input, so rollouts and ablations behave as a
    real model's would."""
    def predict(contexts: np.ndarray) -> np.ndarray:
        last = np.argmax(contexts[:, -1, :], axis=1)
        nxt = np.minimum(last + 1, store.n_chunks - 1)
        return np.eye(store.n_chunks, dtype=np.float32)[nxt]
    return predict


def default_gates(thresholds=None):
    host = load_plugins(entry_points=False)
    return resolve_gates(lambda n: host.get("gate", n), thresholds=thresholds)
