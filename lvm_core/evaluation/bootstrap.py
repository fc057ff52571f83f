"""Paired bootstrap over whole articles: how sure is "the model beats the baseline"?

Why: a mean cosine gap of +0.006 over the context mean says nothing until its noise is known,
and the noise is mostly between articles (samples of one article are alike), so resampling
samples independently would make the interval far too narrow. Here the *articles* are
resampled with replacement (a cluster bootstrap); every resample keeps all the samples of each
drawn article, and the statistic is the mean per-sample difference over the drawn samples.
The difference is paired: model and baseline are scored on the very same samples, so the
per-sample difference removes what the samples share.

Vectorised: per-article sums and counts are taken once; one (B, G) matrix of draw counts
(B resamples of G articles) times the (G, K) sums gives every resample of K differences at once.

    iv = paired_intervals(model_cos - baseline_cos, article_ids)[0]
    iv.mean, iv.lo, iv.hi          # percentile interval at `level` (default 95 %)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_LEVEL = 0.95
#: cosines of float32 unit vectors are exact to about 1e-7: per-sample differences this small are
#: ties (0), so a copy of a baseline can never "beat" it by rounding
TIE = 1e-6


@dataclass(frozen=True)
class Interval:
    """The observed mean difference and its bootstrap percentile interval.

    NaN everywhere when any difference is not finite: a non-finite prediction must fail every
    check it touches, not disappear from an average."""

    mean: float
    lo: float
    hi: float
    level: float
    n_samples: int
    n_articles: int

    @property
    def above_zero(self) -> bool:
        """The lower end is strictly above 0 (False for NaN): "beats it beyond the noise"."""
        return bool(self.lo > 0.0)

    @property
    def within_noise(self) -> bool:
        """The interval contains 0 (or is NaN): the sign of the difference is not established."""
        return not (self.lo > 0.0 or self.hi < 0.0)

    def to_json(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return None if not math.isfinite(x) else float(x)

        return {"mean": num(self.mean), "lo": num(self.lo), "hi": num(self.hi), "level": self.level,
                "samples": self.n_samples, "articles": self.n_articles}

    def text(self, digits: int = 3) -> str:
        """'[+0.001, +0.012]' (or '[n/a]')."""
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)):
            return "[n/a]"
        return f"[{self.lo:+.{digits}f}, {self.hi:+.{digits}f}]"


def article_draws(n_articles: int, resamples: int, seed: int | np.random.SeedSequence | list[int] = 0) -> np.ndarray:
    """(resamples, n_articles) int counts: how often each article is drawn in each resample
    (each row sums to n_articles). Seeded, so an interval is reproducible."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n_articles, size=(resamples, n_articles))
    flat = picks + (np.arange(resamples) * n_articles)[:, None]
    return np.bincount(flat.ravel(), minlength=resamples * n_articles).reshape(resamples, n_articles)


def paired_intervals(diffs: np.ndarray, articles: np.ndarray, *, resamples: int = DEFAULT_RESAMPLES,
                     level: float = DEFAULT_LEVEL, seed: int | list[int] = 0, tie: float = TIE) -> list[Interval]:
    """One Interval per row of `diffs` (K, S) (or for a single (S,) row), resampling the
    articles given by `articles` (S,). All rows share the same resamples, so intervals of
    the model against several baselines are comparable. Differences within `tie` of 0 count as 0."""
    d = np.asarray(diffs, dtype=np.float64)
    d = d[None, :] if d.ndim == 1 else d
    d = np.where(np.abs(d) <= tie, 0.0, d)
    articles = np.asarray(articles)
    if d.ndim != 2 or articles.shape != (d.shape[1],):
        raise ValueError(f"expected diffs (K, S) and articles (S,), got {d.shape} and {articles.shape}")
    if not 0.0 < level < 1.0 or resamples < 1:
        raise ValueError(f"expected 0 < level < 1 and resamples >= 1, got {level} and {resamples}")
    n = d.shape[1]
    nan = float("nan")
    if d.shape[0] == 0:  # nothing to compare with (a battery run without baselines)
        return []
    if n == 0:
        return [Interval(nan, nan, nan, level, 0, 0) for _ in range(d.shape[0])]
    _, group = np.unique(articles, return_inverse=True)
    g = int(group.max()) + 1
    counts = np.bincount(group, minlength=g).astype(np.float64)  # samples per article
    finite = np.all(np.isfinite(d), axis=1)
    safe = np.where(np.isfinite(d), d, 0.0)
    sums = np.stack([np.bincount(group, weights=row, minlength=g) for row in safe])  # (K, G)
    draws = article_draws(g, resamples, seed).astype(np.float64)  # (B, G)
    means = (draws @ sums.T) / (draws @ counts)[:, None]  # (B, K)
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [tail, 1.0 - tail], axis=0)
    out = []
    for k in range(d.shape[0]):
        if not finite[k]:
            out.append(Interval(nan, nan, nan, level, n, g))
        else:
            out.append(Interval(float(d[k].mean()), float(lo[k]), float(hi[k]), level, n, g))
    return out


def paired_interval(a: np.ndarray, b: np.ndarray, articles: np.ndarray, **kwargs: Any) -> Interval:
    """Interval of mean(a - b) for per-sample scores a and b on the same samples."""
    return paired_intervals(np.asarray(a, np.float64) - np.asarray(b, np.float64), articles, **kwargs)[0]
