"""The two fitted baselines every run reports beside copy-last and the context mean: ridge and
frame weights, both fitted in closed form on the run's own training part (seconds).

Why: docs/results.md found that five learned frame weights beat every trained network, and on
unseen Debian packages ridge beats the recommended recipe; a model's number means little until
it stands beside the strongest simple predictor, measured on the very same samples.

- ridge: `RidgeBaseline` (flattened context -> target), its penalty chosen on held-out training
  articles, then refitted on every training window used; solved from normal equations
  streamed over chunks of windows (lvm_core/models/ridge_stream.py), so no design matrix is held.
- frame_weights: p = normalize(sum_i w_i c_i) over the unit context frames, w the least-squares
  solution of sum_i w_i c_i ~ target (an L x L system); a re-weighting of the context with no
  direction of its own, so it transfers to other domains.

Both are numpy-only Predictors (contexts (N, L, D) -> unit rows (N, D)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .baselines import RidgeBaseline
from ..data.store import l2_normalize
from ..errors import InputError
from .ridge_stream import Reader, array_reader, chunks, fit_ridge_streamed

Predictor = Callable[[np.ndarray], np.ndarray]
FITTED_BASELINES = ("ridge", "frame_weights")
#: training windows used for the fits at most (a seeded subset beyond it keeps the fit to seconds)
MAX_FIT_WINDOWS = 20000


def frame_weights_fit(contexts: np.ndarray, targets: np.ndarray, jitter: float = 1e-6) -> np.ndarray:
    """w (L,) minimising mean ||sum_i w_i c_i - t||^2 over unit frames c_i and unit targets t:
    the normal equations G w = b with G_ij = mean(c_i . c_j), b_i = mean(c_i . t)."""
    c, t = np.asarray(contexts), np.asarray(targets)
    if c.ndim != 3 or t.shape != (c.shape[0], c.shape[2]) or c.shape[0] < 1:
        raise InputError("frame_weights", f"expected contexts (N, L, D) and targets (N, D), got {c.shape} and {t.shape}")
    return frame_weights_streamed(array_reader(c, t), np.arange(len(c)), jitter)


def frame_weights_streamed(read: Reader, index: np.ndarray, jitter: float = 1e-6) -> np.ndarray:
    """`frame_weights_fit` on the windows `index`, read a chunk at a time (float64 sums)."""
    gram: np.ndarray | None = None
    rhs: np.ndarray | None = None
    for idx in chunks(np.asarray(index)):
        ctx, tgt = read(idx)
        c = l2_normalize(np.asarray(ctx, np.float32)).astype(np.float64)
        t = l2_normalize(np.asarray(tgt, np.float32)).astype(np.float64)
        g, r = np.einsum("nid,njd->ij", c, c), np.einsum("nid,nd->i", c, t)
        gram, rhs = (g, r) if gram is None or rhs is None else (gram + g, rhs + r)
    if gram is None or rhs is None:
        raise InputError("frame_weights", "expected at least one training window")
    gram, rhs = gram / len(index), rhs / len(index)
    gram[np.diag_indices_from(gram)] += jitter * max(np.trace(gram) / len(gram), 1e-12)
    return np.linalg.solve(gram, rhs)


@dataclass
class FrameWeights:
    """normalize(sum_i w_i unit(c_i)): the predictor of `frame_weights_fit`."""

    weights: np.ndarray  # (L,)

    def __call__(self, contexts: np.ndarray) -> np.ndarray:
        c = l2_normalize(np.asarray(contexts, np.float32))
        return l2_normalize(np.einsum("l,nld->nd", self.weights.astype(np.float32), c))


@dataclass
class FittedBaselines:
    """The fitted predictors by name, and what was fitted (alpha, weights, windows) for the record."""

    predictors: dict[str, Predictor]
    record: dict[str, Any]


def fit_rows(n: int, seed: int = 0, max_windows: int = MAX_FIT_WINDOWS) -> np.ndarray | None:
    """The seeded subset of n training windows the fits use (sorted), None for all of them.
    The trainer gathers only these from the store: a seed-scale train part is gigabytes."""
    if n <= max_windows:
        return None
    return np.sort(np.random.default_rng([seed, 7]).choice(n, max_windows, replace=False))


def capped(contexts: np.ndarray, targets: np.ndarray, articles: np.ndarray, *, seed: int = 0,
           max_windows: int = MAX_FIT_WINDOWS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At most `max_windows` training windows (`fit_rows`' seeded subset, in order)."""
    contexts, targets, articles = np.asarray(contexts), np.asarray(targets), np.asarray(articles)
    keep = fit_rows(len(contexts), seed, max_windows)
    if keep is not None:
        contexts, targets, articles = contexts[keep], targets[keep], articles[keep]
    return contexts, targets, articles


def fit_ridge(contexts: np.ndarray, targets: np.ndarray, articles: np.ndarray, *, seed: int = 0,
              max_windows: int = MAX_FIT_WINDOWS) -> tuple[RidgeBaseline, dict[float, float]]:
    """The ridge baseline: penalty chosen on held-out training articles, then fitted on all the
    (capped) training windows. Returns the fit and the held-out cosine of each penalty tried.
    The residual-on-ridge model starts from exactly this fit."""
    keep = _kept(len(articles), seed, max_windows)
    return fit_ridge_streamed(array_reader(contexts, targets), keep, np.asarray(articles)[keep], seed=seed)


def fit_baselines(contexts: np.ndarray, targets: np.ndarray, articles: np.ndarray, *, seed: int = 0,
                  max_windows: int = MAX_FIT_WINDOWS) -> FittedBaselines:
    """Fit ridge and frame weights on training windows in memory (contexts (N, L, D), targets
    (N, D), the article of each window for choosing ridge's penalty on held-out articles)."""
    return fit_baselines_streamed(array_reader(contexts, targets), articles, seed=seed, max_windows=max_windows)


def fit_baselines_streamed(read: Reader, articles: np.ndarray, *, seed: int = 0,
                           max_windows: int = MAX_FIT_WINDOWS) -> FittedBaselines:
    """Fit ridge and frame weights on the training windows behind `read` (window i -> its
    context and target; `Windows.batch` reads them from the store's memory map), `articles`
    holding each window's article. Only `fit_rows`' subset is read, a chunk at a time."""
    n = len(articles)
    keep = _kept(n, seed, max_windows)
    w = frame_weights_streamed(read, keep)
    ridge, scores = fit_ridge_streamed(read, keep, np.asarray(articles)[keep], seed=seed)
    record = {"windows": int(len(keep)), "of_windows": int(n),
              "ridge": {"alpha": ridge.alpha, "heldout_cos": {str(k): round(v, 6) for k, v in scores.items()},
                        "form": ridge.form},
              "frame_weights": {"weights": [round(float(x), 6) for x in w]}}
    return FittedBaselines({"ridge": ridge.predict, "frame_weights": FrameWeights(w)}, record)


def _kept(n: int, seed: int, max_windows: int) -> np.ndarray:
    keep = fit_rows(n, seed, max_windows)
    return np.arange(n) if keep is None else keep
