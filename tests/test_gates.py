"""5CAT gates A-E on hand-built stores whose answers are known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lvm_core.data.store import l2_normalize, write_store
from lvm_core.data.windows import make_windows
from lvm_core.errors import InputError
from lvm_core.evaluation.battery import (
    build_variant, draw_samples, predict_split, run_battery, spread_sample, _non_identity_perms,
)
from tests._gates_helpers import basis_store, default_gates, next_of_last, walk_store


@pytest.fixture
def basis(tmp_path):
    return basis_store(tmp_path / "basis")


@pytest.fixture
def walk(tmp_path):
    return walk_store(tmp_path / "walk")


def _splits(store):
    rows = make_windows(store).target_rows
    return {"val": (store, rows), "ood": (store, rows)}


def test_offset_k_counts_from_last_context_chunk(basis):
    """On one-hot chunks cos is 1 only at the predicted row, so the peak offset is exact."""
    res = run_battery(next_of_last(basis), _splits(basis), default_gates(), samples=100, horizon=3)
    a = res.metrics["A"]["val"]
    assert a["model"]["k=+1"] == pytest.approx(1.0) and a["model"]["margin_vs_best_offset"] == pytest.approx(1.0)
    assert all(a["model"][k] == pytest.approx(0.0) for k in ("k=-3", "k=-2", "k=-1", "k=0", "k=+2", "k=+3"))
    # copy-last predicts the last context chunk itself: that is k = 0, never +1
    assert a["copy_last"]["k=0"] == pytest.approx(1.0) and a["copy_last"]["k=+1"] == pytest.approx(0.0)
    assert a["copy_last"]["best_k"] == 0.0 and a["oracle"]["best_k"] == 1.0


def test_oracle_passes_a_b_d_and_copy_last_fails_a(walk):
    res = run_battery(lambda c: c[:, -1, :], _splits(walk), default_gates(), samples=200, horizon=5)
    oracle = res.verdicts["oracle"]
    assert oracle["A"].passed and oracle["B"].passed and oracle["D"].passed
    assert res.metrics["D"]["val"]["oracle"]["avg_cos"] == pytest.approx(1.0)
    assert res.verdicts["copy_last"]["A"].passed is False
    assert res.verdicts["model"]["A"].passed is False  # the model here is copy-last too
    # the oracle's ablation deltas are 0 by definition, so it fails C (C wants big drops)
    assert oracle["C"].passed is False
    assert res.score("oracle") == 4 and not res.passed_for("oracle")


def test_retrieval_ranks_and_candidate_sets(basis):
    res = run_battery(next_of_last(basis), _splits(basis), default_gates(), samples=100, horizon=3)
    b = res.metrics["B"]["val"]
    assert b["model"]["R@1_article"] == 1.0 and b["model"]["MRR_no_context"] == 1.0
    # copy-last's prediction is the last context chunk; on one-hot chunks the target's cos is 0,
    # tied with every chunk but the last, and ties count AGAINST the target: it ranks last in
    # both candidate sets (the case: cos 0 to the target once gave R@1 = 1)
    s0 = draw_samples("val", basis, make_windows(basis).target_rows, samples=100, horizon=3, context_len=5,
                      seed=0, legacy=False)
    n = basis.lengths[basis.row_article[s0.rows]]
    assert b["copy_last"]["R@1_article"] == 0.0 and b["copy_last"]["R@5_article"] == 0.0
    assert b["copy_last"]["MRR_article"] == pytest.approx(np.mean(1 / n))
    assert b["copy_last"]["R@1_no_context"] == 0.0
    assert b["copy_last"]["MRR_no_context"] == pytest.approx(np.mean(1 / (n - 5)))
    s = res.splits["val"]
    assert s["samples"] == b["model"]["samples"]
    # chance: 1/n per sample, n = article length (whole) or length - 5
    lengths = basis.lengths[basis.row_article[draw_samples("val", basis, make_windows(basis).target_rows,
                                                           samples=100, horizon=3, context_len=5, seed=0,
                                                           legacy=False).rows]]
    assert b["model"]["chance_R@1_article"] == pytest.approx(np.mean(1 / lengths))
    assert b["model"]["chance_R@1_no_context"] == pytest.approx(np.mean(1 / (lengths - 5)))
    assert [c.metric for c in res.verdicts["model"]["B"].checks][:3] == ["R@1_no_context", "R@5_no_context",
                                                                        "MRR_no_context"]  # the verdict set by default


def test_ablations_on_a_model_that_reads_only_the_last_frame(basis):
    rows = make_windows(basis).target_rows
    s = draw_samples("val", basis, rows, samples=100, horizon=3, context_len=5, seed=3, legacy=False)
    gates = {g.key: g for g in default_gates()}
    preds = predict_split(next_of_last(basis), s, gates["C"].variants(5, 3, False))
    c = gates["C"].measure(preds)
    assert c["base_cos"] == pytest.approx(1.0)
    assert c["reversed"] == pytest.approx(-1.0)  # last frame becomes c0: predicts t - 4
    assert c["repeat_last"] == pytest.approx(0.0)  # last frame kept
    assert c["cross_article"] == pytest.approx(-1.0)  # another article's chunk: predicts its successor
    assert [c[f"loo_{i}"] for i in range(4)] == [pytest.approx(0.0)] * 4  # padded with the last frame
    assert "loo_4" not in c  # the no-op is not an ablation
    moved = np.mean(s.perms[:, -1] != 4)  # shuffles that move the last frame break the model
    assert c["shuffled"] == pytest.approx(-moved)


def test_shuffle_permutation_is_never_the_identity():
    rng = np.random.default_rng(0)
    for length in (2, 3, 5):
        perms = _non_identity_perms(5000, length, rng)
        assert not np.any(np.all(perms == np.arange(length), axis=1))
        assert np.all(np.sort(perms, axis=1) == np.arange(length))
    assert np.all(_non_identity_perms(50, 2, rng) == [1, 0])
    with pytest.raises(InputError):
        _non_identity_perms(3, 1, rng)


def test_cross_article_swap_takes_a_chunk_of_another_article(walk):
    rows = make_windows(walk).target_rows
    s = draw_samples("val", walk, rows, samples=80, horizon=5, context_len=5, seed=1, legacy=False)
    own = walk.row_article[s.rows]
    assert np.all(walk.row_article[s.cross_rows] != own)
    ctx = s.unit_context()
    x = build_variant("cross_article", ctx, s)
    assert np.allclose(x[:, -1], l2_normalize(walk.gather(s.cross_rows))) and np.array_equal(x[:, :-1], ctx[:, :-1])


def test_variants_are_built_as_specified():
    """Frame i of row 0 is the number i, so every rearrangement is visible."""
    ctx = np.arange(5, dtype=np.float32)[None, :, None].repeat(2, axis=2)

    class S:
        perms = np.array([[4, 0, 1, 2, 3]])
        legacy = True  # cross-article as the original: the first frame

    got = lambda name: build_variant(name, ctx, S)[0, :, 0].tolist()  # noqa: E731
    assert got("reversed") == [4, 3, 2, 1, 0]
    assert got("shuffled") == [4, 0, 1, 2, 3]
    assert got("loo_0") == [1, 2, 3, 4, 4] and got("loo_2") == [0, 1, 3, 4, 4] and got("loo_4") == [0, 1, 2, 3, 4]
    assert got("repeat_last") == [4, 4, 4, 4, 4]
    assert got("cross_article") == [0, 1, 2, 3, 0]


def test_rollout_feeds_predictions_back_and_scores_l_plus_h(basis):
    res = run_battery(next_of_last(basis), _splits(basis), default_gates(), samples=100, horizon=4)
    d = res.metrics["D"]["val"]["model"]
    assert [d[f"cos@h={h}"] for h in range(1, 5)] == [pytest.approx(1.0)] * 4
    # copy-last repeats the last chunk for ever: step h is scored against l + h, always a different row
    assert res.metrics["D"]["val"]["copy_last"]["avg_cos"] == pytest.approx(0.0)
    assert res.verdicts["model"]["D"].passed


def _bins_store(path):
    """Article 0: pairwise cos 0.5 (normal bin); article 1: pairwise cos 0.3 (low bin)."""
    vecs, dim = [], 40
    for share, n in ((0.5, 10), (0.3, 12)):
        for i in range(n):
            v = np.zeros(dim)
            v[0] = np.sqrt(share)
            v[1 + len(vecs)] = np.sqrt(1 - share)
            vecs.append(v)
    return write_store(path, np.array(vecs), [10, 12], [1, 2], dtype="float32")


def test_coherence_bins_on_known_coherence(tmp_path):
    store = _bins_store(tmp_path / "bins")
    res = run_battery(lambda c: c[:, -1, :], _splits(store), default_gates(), samples=100, horizon=1)
    e = res.metrics["E"]["val"]["model"]
    n0, n1 = 10 - 5 - 2, 12 - 5 - 2  # windows with room for A's +3 offset
    assert e["normal_n"] == n0 and e["low_n"] == n1 and e["high_n"] == 0
    assert e["normal_mean"] == pytest.approx(0.5) and e["low_mean"] == pytest.approx(0.3)
    assert e["normal_share"] == pytest.approx(n0 / (n0 + n1))
    assert res.verdicts["model"]["E"].passed  # same store for VAL and OOD: delta 0


def test_coherence_gate_threshold():
    e = {g.key: g for g in default_gates()}["E"]
    ok = e.judge({"val": {"normal_mean": 0.50, "low_mean": 0.4}, "ood": {"normal_mean": 0.54, "low_mean": 0.1}})
    bad = e.judge({"val": {"normal_mean": 0.50, "low_mean": 0.4}, "ood": {"normal_mean": 0.56, "low_mean": 0.4}})
    assert ok.passed and not bad.passed
    assert e.judge({"val": {"normal_mean": 0.5, "low_mean": 0.4}}).passed is None


def test_thresholds_are_params_a_plan_can_override(walk):
    loose = default_gates({"A.val.mean_plus1": 0.0, "A.ood.mean_plus1": 0.0, "A.val.margin": -1.0,
                           "A.ood.margin": -1.0})
    res = run_battery(lambda c: c[:, -1, :], _splits(walk), loose, samples=50)
    assert res.verdicts["model"]["A"].passed
    assert res.to_json()["config"]["thresholds"]["A"]["val.margin_vs_best_offset"] == -1.0
    with pytest.raises(InputError) as err:
        default_gates({"A.val.nope": 1.0, "Z.x": 1})
    assert "nope" in str(err.value.lines()) and "Z.x" in str(err.value.lines())


def test_ood_thresholds_apply_to_the_ood_split():
    a = {g.key: g for g in default_gates()}["A"]
    v = a.judge({"val": {"mean_plus1": 0.49, "margin": 0.2}, "ood": {"mean_plus1": 0.49, "margin": 0.11}})
    assert [(c.split, c.threshold, c.passed) for c in v.checks if c.metric == "mean_plus1"] == [
        ("val", 0.50, False), ("ood", 0.48, True)]


def test_samples_are_seeded_and_spread_across_articles(walk):
    rows = make_windows(walk).target_rows
    pick = spread_sample(walk, rows, 5, seed=0)
    assert len(np.unique(walk.row_article[pick])) == 5  # one per article before any second
    assert np.array_equal(pick, spread_sample(walk, rows, 5, seed=0))
    assert not np.array_equal(spread_sample(walk, rows, 12, seed=0), spread_sample(walk, rows, 12, seed=1))
    counts = np.bincount(walk.row_article[spread_sample(walk, rows, 12, seed=0)], minlength=5)
    assert counts.max() - counts.min() <= 1
    assert not np.array_equal(pick, rows[:5])


def test_every_gate_uses_the_same_samples(walk):
    res = run_battery(lambda c: c.mean(axis=1), _splits(walk), default_gates(), samples=60)
    n = res.splits["val"]["samples"]
    assert set(res.splits["val"]["gate_samples"].values()) == {n}
    for key in "ABCD":
        assert res.metrics[key]["val"]["model"]["samples"] == n


def test_gates_json_is_schema_versioned_and_strict_json(walk):
    res = run_battery(lambda c: c[:, -1, :], {"val": _splits(walk)["val"]}, default_gates(), samples=30)
    doc = json.loads(json.dumps(res.to_json(), allow_nan=False))
    assert doc["schema"] == "lvm-workbench/gates" and doc["schema_version"] == 1
    assert doc["gates"]["E"]["passed"] is None and doc["passed"] is False  # no OOD split: E cannot run
    assert set(doc["baselines"]) == {"copy_last", "context_mean", "oracle"}
    flat = res.flat_metrics()
    assert flat["gates/score"] == res.score() and "gates/A/val/margin_vs_best_offset" in flat
    assert "gates/A/val/oracle/margin_vs_best_offset" in flat


def test_a_model_returning_the_wrong_shape_is_one_clear_error(walk):
    with pytest.raises(InputError, match="expected"):
        run_battery(lambda c: c[:, -1, :3], _splits(walk), default_gates(), samples=10)


def test_a_split_with_no_room_for_the_gates_is_an_input_error(tmp_path):
    store = basis_store(tmp_path / "short", lengths=(7, 8))
    with pytest.raises(InputError, match="no window"):
        run_battery(lambda c: c[:, -1, :], _splits(store), default_gates(), samples=10)


def test_batched_ranks_match_the_shared_metric(walk):
    """Gate B ranks through the per-split cache of article blocks equal the uncached shared metric."""
    from lvm_core.evaluation.metrics import within_article_ranks
    from lvm_plugins.gates import within_article_ranks_both

    s = draw_samples("val", walk, make_windows(walk).target_rows, samples=90, horizon=5, context_len=5, seed=2,
                     legacy=False)
    idx = np.arange(0, len(s), 2)
    pred = l2_normalize(np.random.default_rng(4).normal(size=(len(idx), walk.dim)))
    pred[:5] = walk.gather(s.rows[idx[:5]])  # some exact hits too
    both = within_article_ranks_both(s, idx, pred)
    for label, exclude in (("article", 0), ("no_context", 5)):
        ranks, n = within_article_ranks(walk, pred, s.rows[idx], exclude_context=exclude)
        assert np.array_equal(both[label][0], ranks) and np.array_equal(both[label][1], n)
