"""The shared metrics against hand-computed cases (lvm_core/evaluation/metrics.py)."""

import numpy as np
import pytest

from lvm_core.data.store import write_store
from lvm_core.evaluation.metrics import (cosine_rows, margin_rows, prediction_metrics, rank_summary, unit_predictions,
                              within_article_ranks, within_article_ranks_both)


@pytest.fixture
def line_store(tmp_path):
    """One article of 4 chunks on the unit circle at angles 0, 30, 60, 90 degrees, and a
    second article of 3 chunks. Cosines between chunks are cosines of angle differences."""
    ang = np.deg2rad([0, 30, 60, 90, 0, 45, 90])
    vecs = np.stack([np.cos(ang), np.sin(ang), np.zeros_like(ang)], axis=1)
    return write_store(tmp_path / "s", vecs, [4, 3], [7, 8], dtype="float32")


def test_cosine_and_margin_by_hand():
    a = np.array([[1.0, 0.0], [3.0, 4.0]])
    b = np.array([[0.0, 2.0], [3.0, 4.0]])
    assert np.allclose(cosine_rows(a, b), [0.0, 1.0])
    # pred at 45 degrees, target at 90, last at 0: cos 45 - cos 45 = 0; pred = target: 1 - 0
    p = np.array([[1.0, 1.0], [0.0, 1.0]])
    t = np.array([[0.0, 1.0], [0.0, 1.0]])
    last = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert np.allclose(margin_rows(p, t, last), [0.0, 1.0])


def test_ranks_by_hand(line_store):
    # prediction at 50 degrees, target chunk at 60 (row 2): chunk 60 is nearest (10 degrees off),
    # then 30 (20 off), then 90 (40 off), then 0 (50 off) -> rank 1.
    p50 = np.array([[np.cos(np.deg2rad(50)), np.sin(np.deg2rad(50)), 0.0]])
    ranks, n = within_article_ranks(line_store, p50, np.array([2]))
    assert ranks.tolist() == [1] and n.tolist() == [4]
    # target at 90 (row 3): 60 and 30 are nearer than 90 (40 off) -> rank 3 of 4
    ranks, n = within_article_ranks(line_store, p50, np.array([3]))
    assert ranks.tolist() == [3] and n.tolist() == [4]
    # without the 2 context chunks before the target (rows 1, 2): candidates 0 and 90 -> rank 1 of 2
    ranks, n = within_article_ranks(line_store, p50, np.array([3]), exclude_context=2)
    assert ranks.tolist() == [1] and n.tolist() == [2]


def test_window_near_the_start_removes_only_chunks_that_exist(line_store):
    # target row 5 (45 degrees) is chunk 1 of article 8: only one chunk (row 4) precedes it
    pred = line_store.gather(np.array([4]))  # copy-last: exactly chunk 0 of the article
    both = within_article_ranks_both(line_store, pred, np.array([5]), context_len=3)
    assert both["article"][0].tolist() == [2] and both["article"][1].tolist() == [3]
    assert both["no_context"][0].tolist() == [1] and both["no_context"][1].tolist() == [2]


def test_rank_summary_and_chance_levels_by_hand():
    out = rank_summary(np.array([1, 2, 6]), np.array([4, 4, 10]))
    assert out["R@1"] == pytest.approx(1 / 3)
    assert out["R@5"] == pytest.approx(2 / 3)
    assert out["MRR"] == pytest.approx((1 + 1 / 2 + 1 / 6) / 3)
    assert out["chance_R@1"] == pytest.approx((1 / 4 + 1 / 4 + 1 / 10) / 3)
    assert out["chance_R@5"] == pytest.approx((1 + 1 + 5 / 10) / 3)
    h4 = 1 + 1 / 2 + 1 / 3 + 1 / 4
    h10 = sum(1 / k for k in range(1, 11))
    assert out["chance_MRR"] == pytest.approx((h4 / 4 + h4 / 4 + h10 / 10) / 3)


def test_prediction_metrics_of_copy_last_by_hand(line_store):
    rows = np.array([2, 3])  # targets at 60 and 90 degrees; last chunks at 30 and 60
    out = prediction_metrics(line_store, line_store.gather(rows - 1), rows, context_len=2)
    c30 = np.cos(np.deg2rad(30))
    assert out["cos"] == pytest.approx(c30) and out["cos_last"] == pytest.approx(1.0)
    assert out["margin_vs_last"] == pytest.approx(c30 - 1.0)


def test_both_candidate_sets_under_their_own_names_for_copy_last_by_hand(line_store):
    """prediction_metrics (the trainer's val numbers) gives R@k_article and R@k_no_context, the
    names gate B uses (lvm_core/evaluation/metric_names.py). Copy-last at 30 (target 60) and at 60 (target
    90): among the whole article it ranks 3rd of 4 (its own chunk and a tie beat the target);
    without the 2 context chunks the target is first of 2."""
    rows = np.array([2, 3])
    out = prediction_metrics(line_store, line_store.gather(rows - 1), rows, context_len=2)
    assert out["R@1_article"] == 0.0 and out["MRR_article"] == pytest.approx(1 / 3) and out["candidates_article"] == 4
    assert out["R@1_no_context"] == 1.0 and out["MRR_no_context"] == 1.0 and out["candidates_no_context"] == 2
    assert out["chance_R@1_no_context"] == 0.5 and out["chance_R@1_article"] == 0.25
    assert not {"margin", "R@1", "R@5", "MRR", "chance_R@1", "candidates"} & set(out)  # no ambiguous name left


@pytest.mark.parametrize("kind", ["zeros", "nan", "constant"])
def test_degenerate_predictions_rank_last_without_the_context_too(line_store, kind):
    """Zeros, NaN and a constant vector orthogonal to every chunk (cos 0 to all: a tie with
    every candidate) rank last among the no-context candidates as among the whole article."""
    rows = np.array([2, 3, 5])
    pred = {"zeros": np.zeros((3, 3)), "nan": np.full((3, 3), np.nan), "constant": np.tile([0.0, 0.0, 1.0], (3, 1))}[kind]
    out = prediction_metrics(line_store, pred, rows, context_len=2)
    assert out["R@1_no_context"] == 0.0 and out["MRR_no_context"] == pytest.approx(0.5)  # 2 candidates each
    assert out["R@1_article"] == 0.0 and out["cos"] == 0.0 and out["margin_vs_last"] == 0.0
    assert out["nonfinite"] == (0.0 if kind == "constant" else 3.0)


def test_ties_count_against_the_target(line_store):
    # prediction at 45 degrees, target at 60 (row 2): chunk 30 ties it exactly (both 15 degrees off)
    p45 = np.array([[np.cos(np.deg2rad(45)), np.sin(np.deg2rad(45)), 0.0]])
    ranks, n = within_article_ranks(line_store, p45, np.array([2]))
    assert ranks.tolist() == [2] and n.tolist() == [4]


@pytest.mark.parametrize("fill", [0.0, np.nan, np.inf])
def test_degenerate_predictions_rank_last_with_cos_0(line_store, fill):
    """The trainer's val numbers (prediction_metrics): a zero or non-finite prediction has no
    direction, so it scores cos 0, ranks last in both candidate sets and is counted."""
    rows = np.array([2, 3, 5])
    pred = np.full((3, 3), fill)
    out = prediction_metrics(line_store, pred, rows, context_len=2)
    assert out["cos"] == 0.0 and out["margin_vs_last"] == 0.0 and out["R@1_article"] == 0.0 and out["R@5_article"] == 1.0  # 4 and 3 candidates
    assert out["MRR_article"] == pytest.approx((1 / 4 + 1 / 4 + 1 / 3) / 3) and out["nonfinite"] == 3.0
    both = within_article_ranks_both(line_store, pred, rows, context_len=2)
    assert both["article"][0].tolist() == [4, 4, 3]
    assert both["no_context"][0].tolist() == [2, 2, 2] and both["no_context"][1].tolist() == [2, 2, 2]


def test_unit_predictions_mask():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [np.nan, 1.0], [1e30, 1e30], [1e-20, 0.0]], dtype=np.float32)
    unit, bad = unit_predictions(x)
    assert bad.tolist() == [False, True, True, False, True]
    assert np.allclose(unit[0], [0.6, 0.8]) and np.allclose(unit[3], [2 ** -0.5] * 2) and not unit[1:3].any()
