"""The numbers every report uses: cosine to the target, the margin over the last context chunk,
and the rank of the target among the chunks of its own article (with chance levels).

All functions take numpy arrays; predictions and vectors need not be unit-norm (they are
normalised here). They are shared by the trainer's validation, the diagnostics' baselines and
the 5CAT gates, so one definition serves every screen.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .store import ArticleStore, l2_normalize


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two (B, D) arrays -> (B,)."""
    return np.sum(l2_normalize(a) * l2_normalize(b), axis=-1)


def margin_rows(pred: np.ndarray, target: np.ndarray, last: np.ndarray) -> np.ndarray:
    """cos(pred, target) - cos(pred, last context chunk): > 0 means nearer the future than the past."""
    return cosine_rows(pred, target) - cosine_rows(pred, last)


def within_article_ranks(
    store: ArticleStore,
    pred: np.ndarray,
    target_rows: np.ndarray,
    *,
    exclude_context: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Rank of each target among the chunks of its article, and the number of candidates.

    rank = 1 + #{candidates c : cos(pred, c) > cos(pred, target)} (ties count in the target's
    favour, as in the original 5CAT). With `exclude_context = L`, the L context chunks just
    before the target are removed from the candidates (the fairer set: copying the last chunk
    then cannot hide the target behind its own context).
    """
    pred = l2_normalize(pred)
    target_rows = np.asarray(target_rows, dtype=np.int64)
    art = store.row_article[target_rows]
    ranks = np.zeros(len(target_rows), dtype=np.int64)
    n_cand = np.zeros(len(target_rows), dtype=np.int64)
    for a in np.unique(art):
        idx = np.nonzero(art == a)[0]
        sl = store.rows_of(int(a))
        cand = store.gather(np.arange(sl.start, sl.stop))  # (n, D)
        sims = pred[idx] @ l2_normalize(cand).T  # (b, n)
        local_t = target_rows[idx] - sl.start
        true = sims[np.arange(len(idx)), local_t]
        keep = np.ones_like(sims, dtype=bool)
        if exclude_context:
            cols = local_t[:, None] - np.arange(1, exclude_context + 1)[None, :]
            valid = cols >= 0
            keep[np.repeat(np.arange(len(idx)), exclude_context)[valid.ravel()], cols[valid]] = False
        ranks[idx] = 1 + np.sum((sims > true[:, None]) & keep, axis=1)
        n_cand[idx] = keep.sum(axis=1)
    return ranks, n_cand


def rank_summary(ranks: np.ndarray, n_candidates: np.ndarray) -> dict[str, float]:
    """R@1, R@5 and MRR with their chance levels (a uniformly random ranking of the same sets).

    Chance for n candidates: P(rank <= k) = min(k, n) / n and E[1 / rank] = H_n / n.
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    n = np.asarray(n_candidates, dtype=np.float64)
    if len(ranks) == 0:
        nan = float("nan")
        return {"R@1": nan, "R@5": nan, "MRR": nan, "chance_R@1": nan, "chance_R@5": nan, "chance_MRR": nan, "candidates": nan}
    harmonic = np.array([np.sum(1.0 / np.arange(1, int(k) + 1)) for k in n])
    return {
        "R@1": float(np.mean(ranks <= 1)),
        "R@5": float(np.mean(ranks <= 5)),
        "MRR": float(np.mean(1.0 / ranks)),
        "chance_R@1": float(np.mean(1.0 / n)),
        "chance_R@5": float(np.mean(np.minimum(5.0, n) / n)),
        "chance_MRR": float(np.mean(harmonic / n)),
        "candidates": float(np.mean(n)),
    }


def prediction_metrics(
    store: ArticleStore, pred: np.ndarray, target_rows: np.ndarray, *, context_len: int
) -> dict[str, Any]:
    """The standard validation numbers for one set of predictions on windows of `store`:
    cos (to the target), margin (over the last context chunk), R@1/R@5/MRR within the article
    (all chunks as candidates, as the original) with chance levels."""
    target_rows = np.asarray(target_rows, dtype=np.int64)
    tgt = store.gather(target_rows)
    last = store.gather(target_rows - 1)
    ranks, n = within_article_ranks(store, pred, target_rows)
    out: dict[str, Any] = {
        "cos": float(np.mean(cosine_rows(pred, tgt))),
        "margin": float(np.mean(margin_rows(pred, tgt, last))),
        "cos_last": float(np.mean(cosine_rows(pred, last))),
    }
    out.update(rank_summary(ranks, n))
    return out
