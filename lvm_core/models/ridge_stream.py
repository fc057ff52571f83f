"""Ridge regression from streamed normal equations: sum x x^T and sum x y^T accumulated in float64
over chunks of windows read from the store, then one linear solve per penalty.

Why: the per-run ridge baseline gathered its (up to 20,000) windows whole and solved on the
centred design matrix: at D = 768 that is a 20,000 x 3,840 float64 matrix and its centred copy,
2.14 GiB on top of the run (docs/performance.md). Streamed, the fit holds the P x P sums (P =
L * D: 118 MB at P = 3,840), one chunk of windows and LAPACK's copy for the solve, whatever the
number of windows: about 2.3 P x P at most (tests/test_ridge_stream.py). A solve per penalty (not
one eigendecomposition for all of them) keeps it there; LAPACK's eigh would need about five.

The numbers equal the dense reference (`RidgeBaseline.fit`, `select_ridge_alpha` in
lvm_core/models/baselines.py, which stays as the oracle and for fixed-penalty ridge models) to float
tolerance: tests/test_ridge_stream.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from .baselines import RIDGE_ALPHAS, RidgeBaseline, check_alphas, heldout_articles
from ..data.store import l2_normalize
from ..errors import InputError

#: window indices -> (contexts (n, L, D), targets (n, D)); e.g. `Windows.batch` or `array_reader`
Reader = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
#: windows read at once: 1,024 x 3,840 float64 is 31 MB at D = 768
CHUNK_WINDOWS = 1024


def array_reader(contexts: np.ndarray, targets: np.ndarray) -> Reader:
    """A reader over windows already in memory."""
    contexts, targets = np.asarray(contexts), np.asarray(targets)
    return lambda idx: (contexts[idx], targets[idx])


def chunks(index: np.ndarray, size: int | None = None) -> Iterator[np.ndarray]:
    """`index` in consecutive pieces of at most `size` (default CHUNK_WINDOWS)."""
    size = size or CHUNK_WINDOWS
    for start in range(0, len(index), size):
        yield index[start:start + size]


@dataclass
class NormalEquations:
    """n, sum x, sum y, sum x x^T, sum x y^T over windows, x = flatten(context) - shift.

    `shift` (the first chunk's mean) keeps the sums near the data's centre, so centring them
    afterwards loses no precision to cancellation."""

    shift: np.ndarray  # (P,)
    n: int
    sx: np.ndarray  # (P,)
    sy: np.ndarray  # (D,)
    xtx: np.ndarray  # (P, P)
    xty: np.ndarray  # (P, D)

    @classmethod
    def accumulate(cls, read: Reader, index: np.ndarray, into: "NormalEquations | None" = None,
                   chunk: int | None = None) -> "NormalEquations":
        """The sums over the windows `index`, read `chunk` windows at a time, added to `into`
        (in place) when given."""
        eq = into
        for idx in chunks(np.asarray(index), chunk):
            ctx, tgt = read(idx)
            x = np.asarray(ctx, dtype=np.float64).reshape(len(idx), -1)
            y = np.asarray(tgt, dtype=np.float64)
            if eq is None:
                eq = cls(x.mean(axis=0), 0, np.zeros(x.shape[1]), np.zeros(y.shape[1]), np.zeros((x.shape[1],) * 2),
                         np.zeros((x.shape[1], y.shape[1])))
            x -= eq.shift
            eq.n += len(x)
            eq.sx += x.sum(axis=0)
            eq.sy += y.sum(axis=0)
            eq.xtx += np.dot(x.T, x)  # np.dot sees x.T x and uses BLAS syrk: 3x faster than x.T @ x here
            eq.xty += x.T @ y
        if eq is None:
            raise InputError("ridge", "expected at least one training window")
        return eq

    def solve(self, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """(weights (P, D), bias (D,)) in float64 for penalty `alpha`, intercept unpenalised:
        (Xc^T Xc + alpha I) W = Xc^T Yc on the centred sums. The centring and the penalty are
        applied to `xtx` in place and taken off again afterwards (rounding aside, it is
        unchanged), so the solve holds two P x P matrices: the sums and LAPACK's copy."""
        xm, ym = self.sx / self.n, self.sy / self.n
        diag = np.diag_indices_from(self.xtx)
        self._rank_one(xm, -self.n)
        self.xtx[diag] += alpha
        try:
            w = np.linalg.solve(self.xtx, self.xty - self.n * np.outer(xm, ym))
        finally:
            self.xtx[diag] -= alpha
            self._rank_one(xm, self.n)
        return w, ym - (xm + self.shift) @ w

    def _rank_one(self, v: np.ndarray, scale: float, rows: int = 256) -> None:
        """xtx += scale * v v^T, a block of rows at a time (no P x P temporary)."""
        for start in range(0, len(v), rows):
            self.xtx[start:start + rows] += scale * np.outer(v[start:start + rows], v)


def heldout_cosines(eq: NormalEquations, read: Reader, index: np.ndarray,
                    alphas: Sequence[float]) -> dict[float, float]:
    """Mean cosine to the target of each penalty's fit on the windows `index` (streamed)."""
    scores: dict[float, float] = {}
    for alpha in alphas:
        w, b = eq.solve(alpha)
        total = 0.0
        for idx in chunks(np.asarray(index)):
            ctx, tgt = read(idx)
            pred = l2_normalize(np.asarray(ctx, dtype=np.float64).reshape(len(idx), -1) @ w + b)
            total += float(np.sum(pred * l2_normalize(np.asarray(tgt, dtype=np.float64))))
        scores[float(alpha)] = total / len(index)
    return scores


def fit_ridge_streamed(read: Reader, index: np.ndarray, articles: np.ndarray, *, seed: int = 0,
                       alphas: Sequence[float] = RIDGE_ALPHAS, holdout_fraction: float = 0.2,
                       alpha: float | None = None) -> tuple[RidgeBaseline, dict[float, float]]:
    """Ridge on the windows `index` (read through `read`): the penalty with the best mean cosine
    on held-out articles (the same held-out articles as `select_ridge_alpha`), then the fit on
    every window. `articles`: the article of each window of `index`. A given `alpha` is used as
    it is; with fewer than two articles there is nothing to hold out and alpha is 1. Returns
    the fit and the held-out cosine of each penalty tried."""
    index, articles = np.asarray(index), np.asarray(articles)
    if len(articles) != len(index):
        raise InputError("groups", f"expected one article per window ({len(index)}), got {len(articles)}")
    if len(index) < 1:
        raise InputError("ridge", "expected at least one training window")
    if alpha is not None and not alpha > 0:
        raise InputError("ridge", f"expected alpha > 0, got {alpha!r}")
    check_alphas(alphas)
    scores: dict[float, float] = {}
    if alpha is None and len(np.unique(articles)) >= 2:
        held = heldout_articles(articles, holdout_fraction, seed)
        fit_part = NormalEquations.accumulate(read, index[~held])
        scores = heldout_cosines(fit_part, read, index[held], alphas)
        alpha = max(scores, key=lambda a: scores[a])
        everything = NormalEquations.accumulate(read, index[held], into=fit_part)  # now every window
    else:
        alpha = 1.0 if alpha is None else float(alpha)
        everything = NormalEquations.accumulate(read, index)
    ctx0, _ = read(index[:1])
    w, b = everything.solve(alpha)
    return RidgeBaseline.from_weights(w, b, context_len=ctx0.shape[1], alpha=alpha, form="streamed"), scores
