"""Diagnostics of a store and its split, before any model is trained.

Each diagnostic returns a JSON-ready dict (numbers, lists, short strings; missing values are
None, never NaN) so `lvm-workbench diagnose`, the run report and the TUI can show the same thing.

- direction_profile: how the context relates to the target (position profile, first-vs-last
  signal, coherence) and the offset profile cos(x_t, x_{t+k}), which is symmetric by
  construction and so can never show direction (lnsp-reference.md 6.2);
- pair_order_probe: the one test here that can detect direction: a logistic classifier of
  (x_t, x_{t+1}) against (x_{t+1}, x_t), trained on train articles, scored on held-out ones;
- baseline_metrics: copy-last, context mean, linear extrapolation and ridge on a split part,
  with the same metrics a model gets (lvm_core.evaluation.metrics.prediction_metrics);
- split_hygiene: articles in two parts, near-duplicate chunks across parts, short articles.

Samples are drawn seeded and spread across articles (round robin over articles in a random
order) with a cap, so a few long articles cannot dominate a number.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..data.store import ArticleStore, l2_normalize
from ..data.windows import Split, Windows, make_windows
from ..errors import InputError
from .metrics import prediction_metrics
from ..models.baselines import BASELINES, RIDGE_ALPHAS, RidgeBaseline
from ..models.ridge_stream import fit_ridge_streamed

Z95 = 1.959963984540054
OFFSET_NOTE = (
    "symmetric by construction: averaged over the same articles, the pairs at offset -k are the pairs at "
    "offset +k read the other way, so cos(-k) equals cos(+k) whatever the direction of the text; this "
    "profile measures similarity decaying with distance, not direction (see pair_order_probe)"
)


# ---- helpers -----------------------------------------------------------------------------

def jsonable(obj: Any) -> Any:
    """numpy scalars and arrays to Python; NaN and Inf to None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else None
    return obj


def spread_sample(groups: np.ndarray, max_n: int, seed: int) -> np.ndarray:
    """Indices of at most `max_n` items, taken round robin over groups (articles) in random order.

    Every article gives its first (random) item before any article gives a second, so the sample
    covers as many articles as it can. Returns sorted indices; all of them when len <= max_n.
    """
    groups = np.asarray(groups)
    n = len(groups)
    if n <= max_n:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    g = groups[perm]
    # turn of each item inside its group, in the permuted order
    order = np.argsort(g, kind="stable")
    sorted_g = g[order]
    starts = np.r_[0, np.nonzero(np.diff(sorted_g))[0] + 1]
    first_of = np.repeat(starts, np.diff(np.r_[starts, n]))
    turn = np.empty(n, dtype=np.int64)
    turn[order] = np.arange(n) - first_of
    group_rank = rng.permutation(int(groups.max()) + 1 if n else 0)[g]  # random order of groups
    pick = np.lexsort((group_rank, turn))[:max_n]
    return np.sort(perm[pick])


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (better than p +- z se near 0 or 1)."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def clustered_interval(correct: np.ndarray, clusters: np.ndarray, z: float = Z95) -> tuple[float, float]:
    """p +- z se with the cluster-robust standard error of a proportion.

    Decisions from one article are not independent; summing residuals inside each article
    before squaring (se = sqrt(sum_a (sum_i in a (c_i - p))^2) / n) widens the interval as much
    as the articles disagree with each other. With one decision per cluster it is the usual
    normal interval.
    """
    correct = np.asarray(correct, dtype=np.float64)
    n = len(correct)
    if n == 0:
        return (float("nan"), float("nan"))
    p = float(correct.mean())
    _, inverse = np.unique(np.asarray(clusters), return_inverse=True)
    per_cluster = np.bincount(inverse, weights=correct - p)
    se = math.sqrt(float(np.sum(per_cluster ** 2))) / n
    return (max(0.0, p - z * se), min(1.0, p + z * se))


def part_windows(store: ArticleStore, split: Split, part: str, context_len: int) -> Windows:
    """Every window of the articles of one split part."""
    return make_windows(store, split.positions(store, part), context_len)


def sample_windows(windows: Windows, max_samples: int, seed: int) -> Windows:
    """A seeded sample of windows spread across articles (all of them if there are few)."""
    return windows.subset(spread_sample(windows.article_pos, max_samples, seed))


def _require_windows(windows: Windows, store: ArticleStore, part: str, context_len: int) -> None:
    if len(windows) == 0:
        raise InputError(str(store.path), f"split part {part!r} has no window of context length {context_len} "
                         f"(every article has {context_len} chunks or fewer)")


def _mean_cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.sum(l2_normalize(a) * l2_normalize(b), axis=-1))) if len(a) else float("nan")


# ---- direction profile -------------------------------------------------------------------

def offset_profile(store: ArticleStore, rows: np.ndarray, max_offset: int = 5) -> dict[str, Any]:
    """cos(x_t, x_{t+k}) averaged over rows t in `rows` whose t+k lies in the same article.

    Pass whole articles as `rows` and the profile is exactly symmetric (the note says why).
    """
    rows = np.asarray(rows, dtype=np.int64)
    offsets = list(range(-max_offset, max_offset + 1))
    cos, pairs = [], []
    for k in offsets:
        other = rows + k
        ok = (other >= 0) & (other < store.n_chunks)
        ok[ok] = store.row_article[other[ok]] == store.row_article[rows[ok]]
        cos.append(_mean_cos(store.gather(rows[ok]), store.gather(other[ok])))
        pairs.append(int(ok.sum()))
    sym = [abs(cos[max_offset + k] - cos[max_offset - k]) for k in range(1, max_offset + 1)
           if pairs[max_offset + k] > 0]
    return {"offsets": offsets, "cos": cos, "pairs": pairs,
            "max_asymmetry": max(sym) if sym else None, "note": OFFSET_NOTE}


def _article_rows(store: ArticleStore, positions: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """All rows of a seeded subset of whole articles, adding articles until `max_rows` is reached."""
    positions = np.asarray(positions, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(positions))
    lengths = store.lengths[positions[order]]
    keep = order[: max(1, int(np.searchsorted(np.cumsum(lengths), max_rows, side="right")))]
    chosen = np.sort(positions[keep])
    return np.concatenate([np.arange(store.offsets[p], store.offsets[p + 1]) for p in chosen]) if len(chosen) else np.zeros(0, np.int64)


def direction_profile(
    store: ArticleStore, split: Split, *, context_len: int, part: str = "val",
    max_samples: int = 5000, max_rows: int = 50000, seed: int = 0,
) -> dict[str, Any]:
    """Position profile, first-vs-last signal, coherence and the offset profile of one part."""
    wins = part_windows(store, split, part, context_len)
    _require_windows(wins, store, part, context_len)
    wins = sample_windows(wins, max_samples, seed)
    ctx, tgt = wins.batch()
    position = [_mean_cos(ctx[:, i, :], tgt) for i in range(context_len)]
    adjacent = [_mean_cos(ctx[:, i, :], ctx[:, i + 1, :]) for i in range(context_len - 1)]
    rows = _article_rows(store, split.positions(store, part), max_rows, seed)
    return jsonable({
        "part": part,
        "windows": len(wins),
        "articles": int(len(np.unique(wins.article_pos))),
        "position_to_target": {"positions": list(range(context_len)), "cos": position},
        "signal_last_minus_first": position[-1] - position[0],
        "monotonic_increasing": bool(np.all(np.diff(position) > 0)),
        "adjacent_in_window": adjacent,
        "coherence": float(np.mean(adjacent)) if adjacent else None,
        "offset_profile": {**offset_profile(store, rows), "rows": len(rows)},
    })


# ---- pair-order probe --------------------------------------------------------------------

def pair_features(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[a, b, a*b, a-b]: features in which a linear classifier can express which came first."""
    return np.concatenate([a, b, a * b, a - b], axis=1)


def _adjacent_pairs(store: ArticleStore, positions: np.ndarray, max_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x_t, x_{t+1}, article) for adjacent chunks inside articles, sampled spread across articles."""
    wins = make_windows(store, positions, context_len=1)  # target t, context t-1: one adjacent pair
    wins = sample_windows(wins, max_pairs, seed)
    return store.gather(wins.last_rows), store.gather(wins.target_rows), wins.article_pos


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, max_iter: int) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression, full batch L-BFGS in float64; deterministic (zero init)."""
    import torch

    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    yt = torch.from_numpy(np.asarray(y, dtype=np.float64))
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12, history_size=20)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt) + l2 * (w @ w)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy().copy(), float(b.detach())


def pair_order_probe(
    store: ArticleStore, split: Split, *, context_len: int, part: str = "val", train_part: str = "train",
    max_pairs: int = 20000, l2: float = 1e-2, max_iter: int = 200, seed: int = 0,
) -> dict[str, Any]:
    """Can a linear classifier tell (x_t, x_{t+1}) from (x_{t+1}, x_t) on articles it never saw?

    Accuracy near 0.5 (the interval covers it) means the embedding carries no linear trace of
    order; clearly above 0.5 means direction is there to be learned. Features are standardised
    with the training statistics. `ci95` is the Wilson interval, which treats every decision as
    independent; `ci95_by_article` allows for decisions of one article agreeing with each other,
    and the verdict follows it.
    """
    if part == train_part:
        raise InputError("diagnose", f"the probe is scored on held-out articles: part {part!r} must differ from train part {train_part!r}")
    a_tr, b_tr, _ = _adjacent_pairs(store, split.positions(store, train_part), max_pairs, seed)
    a_ev, b_ev, art_ev = _adjacent_pairs(store, split.positions(store, part), max_pairs, seed + 1)
    if len(a_tr) < 2 or len(a_ev) < 1:
        raise InputError(str(store.path), f"the pair-order probe needs adjacent chunks in parts {train_part!r} and {part!r}")
    x_tr = np.concatenate([pair_features(a_tr, b_tr), pair_features(b_tr, a_tr)])
    y_tr = np.r_[np.ones(len(a_tr)), np.zeros(len(a_tr))]
    mean, std = x_tr.mean(axis=0), x_tr.std(axis=0) + 1e-6
    w, b = _fit_logistic((x_tr - mean) / std, y_tr, l2, max_iter)

    def score(a: np.ndarray, b_: np.ndarray) -> np.ndarray:
        return ((pair_features(a, b_) - mean) / std) @ w + b

    fwd, rev = score(a_ev, b_ev), score(b_ev, a_ev)
    decisions = np.r_[fwd > 0, rev <= 0]
    correct, n = int(decisions.sum()), len(decisions)
    lo, hi = wilson_interval(correct, n)
    alo, ahi = clustered_interval(decisions, np.r_[art_ev, art_ev])
    train_acc = float(np.mean(((np.r_[score(a_tr, b_tr), score(b_tr, a_tr)]) > 0) == (y_tr > 0.5)))
    acc = correct / n
    if alo > 0.5:
        verdict = "order is detectable (interval by article above chance)"
    elif lo > 0.5:
        verdict = "weak: above chance only if pairs were independent (the interval by article covers 0.5)"
    elif ahi < 0.5:
        verdict = "below chance (the held-out part reads in the opposite order to train?)"
    else:
        verdict = "no evidence of order (interval covers chance)"
    return jsonable({
        "train_part": train_part,
        "part": part,
        "train_pairs": len(a_tr),
        "eval_pairs": len(a_ev),
        "decisions": n,
        "accuracy": acc,
        "ci95": [lo, hi],
        "ci95_by_article": [alo, ahi],
        "eval_articles": int(len(np.unique(art_ev))),
        "chance": 0.5,
        "pairwise_accuracy": float(np.mean(fwd > rev)),
        "train_accuracy": train_acc,
        "features": "[a, b, a*b, a-b], standardised",
        "verdict": verdict,
    })


# ---- baselines ---------------------------------------------------------------------------

def fit_ridge_on_part(
    store: ArticleStore, split: Split, *, context_len: int, train_part: str = "train", ridge_alpha: float = 0.0,
    ridge_alphas: Sequence[float] = RIDGE_ALPHAS, ridge_max_train: int = 20000, seed: int = 0,
) -> tuple[RidgeBaseline, dict[str, Any]]:
    """Ridge fitted on (a spread sample of) the windows of `train_part`.

    ridge_alpha > 0 uses that penalty; 0 picks one from `ridge_alphas` on held-out train articles
    (never on the part being evaluated). Returns the fit and a record of how it was made.
    """
    train = part_windows(store, split, train_part, context_len)
    _require_windows(train, store, train_part, context_len)
    train = sample_windows(train, ridge_max_train, seed)
    record: dict[str, Any] = {"fitted_on": train_part, "train_windows": len(train)}
    fit, scores = fit_ridge_streamed(train.batch, np.arange(len(train)), train.article_pos, seed=seed,
                                     alphas=ridge_alphas, alpha=ridge_alpha if ridge_alpha > 0 else None)
    if scores:
        record["held_out_train_cos"] = {f"{a:g}": c for a, c in scores.items()}
    record["alpha"] = fit.alpha
    record["form"] = fit.form
    return fit, record


def baseline_metrics(
    store: ArticleStore, split: Split, *, context_len: int, part: str = "val", train_part: str = "train",
    max_samples: int = 5000, ridge: bool = True, ridge_alpha: float = 0.0,
    ridge_alphas: Sequence[float] = RIDGE_ALPHAS, ridge_max_train: int = 20000, seed: int = 0,
) -> dict[str, Any]:
    """cos, margin_vs_last, and within-article rank (with chance) of each baseline on a part,
    under the names a model's validation logs (lvm_core/evaluation/metric_names.py).

    Ranks come twice: among all chunks of the article (R@k_article, as the original), and without
    the L context chunks among the candidates (R@k_no_context), where copying c_last can no
    longer hide the target behind the context it copied.
    """
    if part == train_part:
        raise InputError("diagnose", f"baselines are scored on held-out articles: part {part!r} must differ from train part {train_part!r}")
    wins = part_windows(store, split, part, context_len)
    _require_windows(wins, store, part, context_len)
    wins = sample_windows(wins, max_samples, seed)
    ctx, _ = wins.batch()
    preds = {name: fn(ctx) for name, fn in BASELINES.items() if context_len >= 2 or name != "linear_extrapolation"}
    record = None
    if ridge:
        fit, record = fit_ridge_on_part(store, split, context_len=context_len, train_part=train_part,
                                        ridge_alpha=ridge_alpha, ridge_alphas=ridge_alphas,
                                        ridge_max_train=ridge_max_train, seed=seed)
        preds["ridge"] = fit.predict(ctx)
    table = {name: prediction_metrics(store, p, wins.target_rows, context_len=context_len) for name, p in preds.items()}
    return jsonable({
        "part": part,
        "windows": len(wins),
        "articles": int(len(np.unique(wins.article_pos))),
        "ridge": record,
        "baselines": table,
    })


# ---- split hygiene -----------------------------------------------------------------------

def _max_cos_blocked(query: np.ndarray, ref: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the best cosine over `ref` rows and its index, in blocks of both."""
    best = np.full(len(query), -np.inf, dtype=np.float32)
    arg = np.zeros(len(query), dtype=np.int64)
    for qs in range(0, len(query), block):
        q = l2_normalize(query[qs:qs + block])
        for rs in range(0, len(ref), block):
            sims = q @ l2_normalize(ref[rs:rs + block]).T
            j = np.argmax(sims, axis=1)
            s = sims[np.arange(len(q)), j]
            better = s > best[qs:qs + block]
            best[qs:qs + block][better] = s[better]
            arg[qs:qs + block][better] = rs + j[better]
    return best, arg


def _part_rows(store: ArticleStore, positions: np.ndarray) -> np.ndarray:
    if len(positions) == 0:
        return np.zeros(0, np.int64)
    return np.concatenate([np.arange(store.offsets[p], store.offsets[p + 1]) for p in np.sort(positions)])


def _describe_row(store: ArticleStore, row: int, texts: list[str] | None, part: str, side: str) -> dict[str, Any]:
    """One side of a near-duplicate pair as flat keys (part_a, article_a, chunk_a, text_a)."""
    out = {f"part_{side}": part, f"article_{side}": int(store.article_ids[store.row_article[row]]),
           f"chunk_{side}": int(store.chunk_index[row])}
    if texts is not None:
        out[f"text_{side}"] = texts[row][:60]
    return out


def split_hygiene(
    store: ArticleStore, split: Split, *, context_len: int, threshold: float = 0.98,
    max_rows: int = 20000, block: int = 2048, examples: int = 5, seed: int = 0,
) -> dict[str, Any]:
    """Leaks and losses of a split: shared articles, near-duplicate chunks across parts, short articles."""
    names = list(split.parts)
    positions = {name: split.positions(store, name) for name in names}
    shared = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            both = np.intersect1d(split.parts[a], split.parts[b])
            if len(both):
                shared.append({"parts": [a, b], "articles": len(both), "first_ids": both[:5].tolist()})
    assigned = np.unique(np.concatenate([split.parts[n] for n in names])) if names else np.zeros(0, np.int64)
    texts = store.texts
    near: list[dict[str, Any]] = []
    near_examples: list[dict[str, Any]] = []
    for i, a in enumerate(names):
        ref_rows = _part_rows(store, positions[a])
        for b in names[i + 1:]:
            rows_b = _part_rows(store, positions[b])
            query = rows_b[spread_sample(store.row_article[rows_b], max_rows, seed)] if len(rows_b) else rows_b
            if len(query) == 0 or len(ref_rows) == 0:
                near.append({"parts": [a, b], "checked_rows": 0, "sampled": False, "near_duplicates": 0, "fraction": None})
                continue
            best, arg = _max_cos_blocked(store.gather(query), store.gather(ref_rows), block)
            hit = np.nonzero(best > threshold)[0]
            top = hit[np.argsort(-best[hit], kind="stable")][:examples]
            near.append({
                "parts": [a, b],
                "checked_rows": len(query),
                "sampled": len(query) < len(rows_b),
                "near_duplicates": len(hit),
                "fraction": len(hit) / len(query),
            })
            near_examples += [{"cos": float(best[h]),
                               **_describe_row(store, int(ref_rows[arg[h]]), texts, a, "a"),
                               **_describe_row(store, int(query[h]), texts, b, "b")} for h in top]
    per_part = {}
    for name in names:
        lengths = store.lengths[positions[name]]
        short = lengths <= context_len
        per_part[name] = {
            "articles": len(lengths),
            "chunks": int(lengths.sum()),
            "windows": int(np.maximum(lengths - context_len, 0).sum()),
            "articles_without_windows": int(short.sum()),
            "chunks_in_short_articles": int(lengths[short].sum()),
        }
    v = store.vectors
    adjacent_dups = 0
    for s in range(0, store.n_chunks - 1, 65536):
        e = min(s + 65537, store.n_chunks)
        c = np.sum(l2_normalize(v[s:e - 1]) * l2_normalize(v[s + 1:e]), axis=1)
        same = store.row_article[s:e - 1] == store.row_article[s + 1:e]
        adjacent_dups += int(np.sum((c > threshold) & same))
    return jsonable({
        "threshold": threshold,
        "articles_in_two_parts": shared,
        "articles_in_no_part": int(len(np.setdiff1d(store.article_ids, assigned))),
        "near_duplicates_across_parts": near,
        "near_duplicate_examples": near_examples,
        "adjacent_near_duplicates_within_articles": adjacent_dups,
        "windows_by_part": per_part,
        "context_len": context_len,
    })
