"""The numbers every report uses: cosine to the target, the margin over the last context chunk
(margin_vs_last), and the rank of the target among the chunks of its own article, with and
without the context chunks (R@k_article, R@k_no_context) and with chance levels. The names are
explained once, in lvm_core/evaluation/metric_names.py.

All functions take numpy arrays; predictions and vectors need not be unit-norm (they are
normalised here). They are shared by the trainer's validation, the diagnostics' baselines and
the 5CAT gates, so one definition serves every screen.

A prediction without a direction (a non-finite entry, or zero norm: its normalised form is
0/0) cannot be scored honestly, and NaN comparisons are false, which once made every rank 1.
`unit_predictions` turns such rows into zero vectors and counts them: a zero row has cos 0 to
everything and, with ties counted against the target, ranks last among its candidates. Every
report shows the count ("non-finite predictions: N") and every check that reads such a
prediction fails (lvm_core/evaluation/battery.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.store import ArticleStore, l2_normalize


def unit_predictions(pred: np.ndarray, eps: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """(unit rows float32, mask of rows without a direction). Rows with a non-finite entry or a
    norm <= eps (computed in float64, so huge finite rows do not overflow) become zero rows."""
    x = np.asarray(pred, dtype=np.float32)
    finite = np.all(np.isfinite(x), axis=-1)
    x = np.where(finite[..., None], x, np.float32(0))
    norms = np.linalg.norm(x.astype(np.float64), axis=-1, keepdims=True)
    bad = ~finite | ~(norms[..., 0] > eps) | ~np.isfinite(norms[..., 0])
    unit = (x / np.where(bad[..., None], 1.0, norms)).astype(np.float32)
    unit[bad] = 0.0
    return unit, bad


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two (B, D) arrays -> (B,)."""
    return np.sum(l2_normalize(a) * l2_normalize(b), axis=-1)


def margin_rows(pred: np.ndarray, target: np.ndarray, last: np.ndarray) -> np.ndarray:
    """cos(pred, target) - cos(pred, last context chunk): > 0 means nearer the future than the past."""
    return cosine_rows(pred, target) - cosine_rows(pred, last)


ArticleBlock = tuple[np.ndarray, np.ndarray, np.ndarray]  # (sample positions, target column, unit chunks)


def article_blocks(store: ArticleStore, target_rows: np.ndarray) -> list[ArticleBlock]:
    """Samples grouped by article: for each article, the positions of its samples, each target's
    column in the article, and the article's chunk vectors normalised once. Callers that score
    many predictors on the same samples (5CAT) build these once and pass them in."""
    target_rows = np.asarray(target_rows, dtype=np.int64)
    art = store.row_article[target_rows]
    order = np.argsort(art, kind="stable")
    cuts = np.r_[0, np.nonzero(np.diff(art[order]))[0] + 1, len(order)]
    blocks: list[ArticleBlock] = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        if a == b:
            continue
        members = order[a:b]
        sl = store.rows_of(int(art[members[0]]))
        blocks.append((members, target_rows[members] - sl.start, l2_normalize(store.gather(np.arange(sl.start, sl.stop)))))
    return blocks


def within_article_ranks_both(
    store: ArticleStore,
    pred: np.ndarray,
    target_rows: np.ndarray,
    context_len: int,
    *,
    blocks: list[ArticleBlock] | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Rank of each target among the chunks of its article, and the number of candidates, for
    two candidate sets from one product per article: "article" (every chunk, as the original
    5CAT) and "no_context" (the `context_len` chunks just before the target removed, the
    fairer set: copying the last chunk then cannot hide the target behind its own context).

    rank = #{candidates c : cos(pred, c) >= cos(pred, target)}, the target included: ties count
    AGAINST the target (docs/5cat.md says why), so a prediction that ties everything, such as a
    zero or non-finite one, ranks last rather than first. The target's own similarity is read
    from the same product as the candidates', so it never ties with itself by rounding.
    """
    pred = unit_predictions(pred)[0]
    n = len(target_rows)
    rank_all, rank_open = np.zeros(n, np.int64), np.zeros(n, np.int64)
    n_all, n_open = np.zeros(n, np.int64), np.zeros(n, np.int64)
    for members, local_t, cand in blocks if blocks is not None else article_blocks(store, target_rows):
        sims = pred[members] @ cand.T
        own = sims[np.arange(len(members)), local_t]
        at_least = sims >= own[:, None]  # the target itself counts once
        cols = local_t[:, None] - np.arange(1, context_len + 1)[None, :]
        inside = cols >= 0  # a window near the article start has fewer chunks before it
        ctx_at_least = np.take_along_axis(at_least, np.maximum(cols, 0), axis=1) & inside
        scored = np.isfinite(own)  # defensive: a NaN similarity ranks last
        n_all[members] = cand.shape[0]
        n_open[members] = cand.shape[0] - inside.sum(axis=1)
        rank_all[members] = np.where(scored, at_least.sum(axis=1), cand.shape[0])
        rank_open[members] = np.where(scored, rank_all[members] - ctx_at_least.sum(axis=1), n_open[members])
    return {"article": (rank_all, n_all), "no_context": (rank_open, n_open)}


def within_article_ranks(
    store: ArticleStore,
    pred: np.ndarray,
    target_rows: np.ndarray,
    *,
    exclude_context: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Ranks and candidate counts for one candidate set: the whole article, or with
    `exclude_context = L` the article without the L chunks before the target."""
    both = within_article_ranks_both(store, pred, np.asarray(target_rows, dtype=np.int64), exclude_context)
    return both["no_context" if exclude_context else "article"]


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


def rank_summaries(ranks_both: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """rank_summary of each candidate set under its own name: R@1_article, ..., R@1_no_context,
    chance_R@1_no_context, candidates_no_context (the trainer and gate B use these names)."""
    return {f"{name}_{cset}": value for cset, (ranks, n) in ranks_both.items()
            for name, value in rank_summary(ranks, n).items()}


def prediction_metrics(
    store: ArticleStore, pred: np.ndarray, target_rows: np.ndarray, *, context_len: int,
    blocks: list[ArticleBlock] | None = None,
) -> dict[str, Any]:
    """The standard validation numbers for one set of predictions on windows of `store`:
    cos (to the target), margin_vs_last (over the last context chunk), R@1/R@5/MRR within the
    article for both candidate sets (rank_summaries) with chance levels, and `nonfinite`: the
    number of predictions without a direction (scored cos 0, ranked last; see unit_predictions)."""
    target_rows = np.asarray(target_rows, dtype=np.int64)
    pred, bad = unit_predictions(pred)
    tgt = store.gather(target_rows)
    last = store.gather(target_rows - 1)
    out: dict[str, Any] = {
        "cos": float(np.mean(cosine_rows(pred, tgt))),
        "margin_vs_last": float(np.mean(margin_rows(pred, tgt, last))),
        "cos_last": float(np.mean(cosine_rows(pred, last))),
    }
    out.update(rank_summaries(within_article_ranks_both(store, pred, target_rows, context_len, blocks=blocks)))
    out["nonfinite"] = float(bad.sum())
    return out
