"""The paired article bootstrap (lvm_core/evaluation/bootstrap.py) on cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lvm_core.evaluation.bootstrap import article_draws, paired_interval, paired_intervals


def test_one_article_has_no_spread():
    """A single article: every resample draws it, so the interval is the observed mean."""
    iv = paired_intervals(np.array([0.1, 0.3, 0.2]), np.array([7, 7, 7]))[0]
    assert iv.mean == pytest.approx(0.2)
    assert iv.lo == pytest.approx(0.2) and iv.hi == pytest.approx(0.2)
    assert iv.n_articles == 1 and iv.n_samples == 3 and iv.above_zero


def test_two_articles_by_hand():
    """Articles A (diff +1) and B (diff 0), one sample each: a resample of 2 articles has mean
    0 (BB, p 1/4), 0.5 (AB or BA, p 1/2) or 1 (AA, p 1/4); the 2.5 % and 97.5 % points are 0 and 1."""
    iv = paired_intervals(np.array([1.0, 0.0]), np.array([0, 1]), resamples=4000)[0]
    assert iv.mean == 0.5 and iv.lo == 0.0 and iv.hi == 1.0
    assert not iv.above_zero and iv.within_noise


def test_whole_articles_are_resampled_not_samples():
    """Article A: 3 samples of +1; B: 1 sample of -1. Resample means are (3a - b) / (3a + b)
    with a + b = 2 articles drawn: AA 1, AB 0.5, BB -1. Sample-wise resampling would give
    other values (e.g. 0 from 2 of +1 and 2 of -1)."""
    means = set()
    d = np.array([1.0, 1.0, 1.0, -1.0])
    arts = np.array([5, 5, 5, 9])
    for seed in range(20):
        iv = paired_intervals(d, arts, resamples=50, seed=seed)[0]
        means |= {round(iv.lo, 9), round(iv.hi, 9)}
    assert means <= {1.0, 0.5, -1.0}
    assert paired_intervals(d, arts)[0].mean == pytest.approx(0.5)  # the observed mean is over samples


def test_draw_counts_sum_to_the_number_of_articles_and_are_seeded():
    draws = article_draws(7, 300, seed=3)
    assert draws.shape == (300, 7) and np.all(draws.sum(axis=1) == 7)
    assert np.array_equal(draws, article_draws(7, 300, seed=3))
    assert not np.array_equal(draws, article_draws(7, 300, seed=4))
    assert draws.mean() == pytest.approx(1.0, abs=0.05)  # each article drawn once on average


def test_spread_matches_the_between_article_variance():
    """Equal-sized articles: the resampled mean has sd = sd(article means) / sqrt(G) (ddof 0)."""
    rng = np.random.default_rng(0)
    g, per = 40, 5
    art_means = rng.normal(0.01, 0.02, size=g)
    d = np.repeat(art_means, per) + rng.normal(0, 1e-9, size=g * per)
    arts = np.repeat(np.arange(g), per)
    iv = paired_intervals(d, arts, resamples=20000)[0]
    se = art_means.std() / math.sqrt(g)
    assert (iv.hi - iv.lo) == pytest.approx(2 * 1.959964 * se, rel=0.05)


def test_several_rows_share_the_same_resamples():
    d = np.array([0.3, 0.1, -0.2, 0.4, 0.0])
    arts = np.array([0, 0, 1, 2, 2])
    a, b = paired_intervals(np.stack([d, 2 * d]), arts, resamples=500)
    assert b.lo == pytest.approx(2 * a.lo) and b.hi == pytest.approx(2 * a.hi)


def test_paired_interval_of_identical_scores_is_zero_and_not_above_zero():
    """copy-last against copy-last: the difference is exactly 0, which never counts as beating."""
    s = np.array([0.5, 0.6, 0.7, 0.2])
    iv = paired_interval(s, s, np.array([1, 1, 2, 3]))
    assert (iv.mean, iv.lo, iv.hi) == (0.0, 0.0, 0.0) and not iv.above_zero


def test_non_finite_scores_give_a_nan_interval_that_fails():
    iv = paired_interval(np.array([0.5, np.nan, 0.7]), np.zeros(3), np.array([1, 2, 3]))
    assert math.isnan(iv.lo) and math.isnan(iv.mean) and not iv.above_zero and iv.within_noise
    assert iv.to_json()["lo"] is None and iv.text() == "[n/a]"


def test_no_samples_and_bad_shapes():
    iv = paired_intervals(np.zeros(0), np.zeros(0))[0]
    assert math.isnan(iv.mean) and iv.n_samples == 0
    with pytest.raises(ValueError):
        paired_intervals(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError):
        paired_intervals(np.zeros(3), np.zeros(3), level=1.0)


def test_text_shows_signed_bounds():
    iv = paired_intervals(np.array([0.001, 0.012]), np.array([0, 1]), resamples=2000)[0]
    assert iv.text() == "[+0.001, +0.012]"


def test_rounding_noise_is_a_tie():
    """Differences within 1e-6 (float32 cosine rounding) count as 0, so they never beat anything."""
    iv = paired_intervals(np.array([5e-9, 3e-8, 1e-7]), np.array([0, 1, 2]))[0]
    assert (iv.mean, iv.lo, iv.hi) == (0.0, 0.0, 0.0) and not iv.above_zero


def test_no_baselines_give_no_intervals_and_the_relative_gate_cannot_pass():
    """A battery run without baselines (run_battery(..., baselines=())) has nothing to compare:
    no intervals, no checks, so vs_baselines reports "could not run" (None), never a pass."""
    from lvm_plugins.gates import BeatsBaselines

    assert paired_intervals(np.zeros((0, 4)), np.array([0, 0, 1, 1])) == []
    gate = BeatsBaselines(min_lower=0.0, level=0.95, resamples=50, seed=0)
    verdict = gate.judge({"val": {"cos": 1.0, "samples": 4.0, "articles": 2.0}})
    assert verdict.passed is None
