"""The degenerate-predictor zoo of docs/5cat.md: predictors that know nothing, or too much,
each with the 5CAT verdict it must get. Used on the bundled stores and on hand-built ones."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from lvm_core.data.store import ArticleStore, l2_normalize

Predictor = Callable[[np.ndarray], np.ndarray]


def zeros(contexts: np.ndarray) -> np.ndarray:
    return np.zeros((contexts.shape[0], contexts.shape[2]), np.float32)


def nans(contexts: np.ndarray) -> np.ndarray:
    return np.full((contexts.shape[0], contexts.shape[2]), np.nan, np.float32)


def constant(dim: int, seed: int = 0) -> Predictor:
    """One fixed random unit vector, whatever the input."""
    v = l2_normalize(np.random.default_rng(seed).normal(size=(1, dim)))[0]
    return lambda contexts: np.repeat(v[None], contexts.shape[0], axis=0)


def global_mean(store: ArticleStore) -> Predictor:
    """The mean of every chunk of the store: what a model collapsed to its data's mean outputs."""
    v = l2_normalize(store.gather(np.arange(store.n_chunks)).mean(axis=0, keepdims=True))[0]
    return lambda contexts: np.repeat(v[None], contexts.shape[0], axis=0)


def random_unit(dim: int, seed: int = 0) -> Predictor:
    """A fresh random unit vector per row (seeded, so a battery is repeatable)."""
    rng = np.random.default_rng(seed)
    return lambda contexts: l2_normalize(rng.normal(size=(contexts.shape[0], dim)))


def copy_last(contexts: np.ndarray) -> np.ndarray:
    return contexts[:, -1, :]


def context_mean(contexts: np.ndarray) -> np.ndarray:
    return contexts.mean(axis=1)


class WrongArticleOracle:
    """The true next chunk, of the wrong article: it finds the store row of its last input frame
    (nearest row of any of `stores`), and returns the chunk at the same position after it in the
    next article of that store (clipped to that article's length). It reads only its input, so
    ablations and rollouts reach it as they would a real model."""

    def __init__(self, stores: Sequence[ArticleStore]) -> None:
        self.stores = list(stores)
        self.units = np.concatenate([l2_normalize(s.gather(np.arange(s.n_chunks))) for s in self.stores])
        self.which = np.concatenate([np.full(s.n_chunks, i) for i, s in enumerate(self.stores)])
        self.local = np.concatenate([np.arange(s.n_chunks) for s in self.stores])

    def __call__(self, contexts: np.ndarray) -> np.ndarray:
        hit = np.argmax(l2_normalize(contexts[:, -1, :]) @ self.units.T, axis=1)
        out = np.empty((len(hit), self.units.shape[1]), np.float32)
        for k, (i, row) in enumerate(zip(self.which[hit], self.local[hit])):
            s = self.stores[i]
            a = int(s.row_article[row])
            pos = row - s.offsets[a] + 1  # the next chunk's position in its own article
            other = (a + 1) % s.n_articles
            out[k] = s.gather(np.array([s.offsets[other] + min(pos, s.lengths[other] - 1)]))[0]
        return out


def zoo(val: ArticleStore, ood: ArticleStore) -> dict[str, Predictor | str]:
    """Name -> predictor (a function, or a baseline name the battery knows: "oracle")."""
    return {
        "zeros": zeros,
        "nan": nans,
        "constant": constant(val.dim),
        "global_mean": global_mean(val),
        "random_unit": random_unit(val.dim),
        "copy_last": copy_last,
        "context_mean": context_mean,
        "oracle": "oracle",
        "wrong_article_oracle": WrongArticleOracle([val, ood]),
    }
