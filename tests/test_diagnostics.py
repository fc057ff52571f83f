"""Diagnostics against hand-computed cases on tiny stores, the probe on sequences built so that
order is (or is not) learnable, the `diagnose` command, and one end-to-end run on the demo store."""

import json

import numpy as np
import pytest
import torch

from lvm_core.data.store import write_store
from lvm_core.data.windows import Split, make_windows, split_by_fractions
from lvm_core.evaluation import diagnostics as d
from lvm_core.evaluation.metrics import prediction_metrics, within_article_ranks
from lvm_core.models.baselines import BASELINES, RidgeBaseline
from workbench.cli import main

from .conftest import DEMO_STORE, make_tiny_store

torch.set_num_threads(1)
S5 = np.sqrt(5.0)
E1, E2, E3 = np.eye(3)


def _store(path, articles, ids=None, texts=None):
    """A float32 store from a list of articles, each a list of vectors."""
    vecs = np.array([v for art in articles for v in art], dtype=np.float64)
    ids = ids if ids is not None else list(range(len(articles)))
    return write_store(path, vecs, [len(a) for a in articles], ids, texts=texts, dtype="float32")


@pytest.fixture
def hand_store(tmp_path):
    """val: article 0 = e1, e2, (e1 + 2 e2)/sqrt5, e3 and article 1 = e1, e1, e1; train: article 2."""
    x2 = (E1 + 2 * E2) / S5
    rng = np.random.default_rng(0)
    store = _store(tmp_path / "hand", [[E1, E2, x2, E3], [E1, E1, E1], list(rng.normal(size=(6, 3)))])
    split = Split({"val": np.array([0, 1]), "train": np.array([2])}, {"kind": "hand"})
    return store, split


# ---- helpers -----------------------------------------------------------------------------

def test_wilson_interval_by_hand():
    # p = 0.8, n = 10: centre (0.8 + z^2/20) / (1 + z^2/10) = 0.7167, half-width 0.2266
    lo, hi = d.wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    lo, hi = d.wilson_interval(0, 20)
    assert lo == 0.0 and hi == pytest.approx(0.1611, abs=1e-4)


def test_spread_sample_takes_every_article_before_a_second_chunk():
    groups = np.array([0] * 50 + [1] * 3 + [2] * 2 + [3] * 1)
    pick = d.spread_sample(groups, 6, seed=0)
    assert len(pick) == 6 and len(np.unique(pick)) == 6
    assert sorted(set(groups[pick])) == [0, 1, 2, 3]  # all four articles present
    assert np.sum(groups[pick] == 0) <= 2  # the long article cannot take more than its turn
    np.testing.assert_array_equal(pick, d.spread_sample(groups, 6, seed=0))
    assert not np.array_equal(d.spread_sample(groups, 30, seed=0), d.spread_sample(groups, 30, seed=1))
    np.testing.assert_array_equal(d.spread_sample(groups[:5], 10, seed=0), np.arange(5))


def test_clustered_interval_by_hand():
    # articles all right / all wrong / split: p = 0.5, residual sums +1, -1, 0 -> se = sqrt(2)/6
    lo, hi = d.clustered_interval(np.array([1, 1, 0, 0, 1, 0]), np.array([7, 7, 9, 9, 4, 4]))
    assert lo == pytest.approx(0.5 - d.Z95 * np.sqrt(2) / 6) and hi == pytest.approx(0.5 + d.Z95 * np.sqrt(2) / 6)
    # p = 5/8; residual sums per article: 3 (3/8); 2 (-5/8) + 3/8; 3/8 - 5/8
    c, g = np.array([1, 1, 1, 0, 0, 1, 1, 0]), np.array([1, 1, 1, 2, 2, 2, 3, 3])
    sums = [3 * 3 / 8, 2 * (-5 / 8) + 3 / 8, 3 / 8 - 5 / 8]  # 9/8, -7/8, -2/8
    se = np.sqrt(sum(x * x for x in sums)) / 8
    lo, hi = d.clustered_interval(c, g)
    assert lo == pytest.approx(5 / 8 - d.Z95 * se) and hi == pytest.approx(5 / 8 + d.Z95 * se)
    # one decision per cluster: the usual normal interval, sqrt(p (1 - p) / n)
    lo, hi = d.clustered_interval(np.array([1, 0, 1, 1]), np.arange(4))
    assert lo == pytest.approx(0.75 - d.Z95 * np.sqrt(0.75 * 0.25 / 4))


def test_jsonable_turns_nan_into_none():
    assert d.jsonable({"a": np.float32(np.nan), "b": [np.int64(3), np.float64(0.5)], "c": np.bool_(True)}) == \
        {"a": None, "b": [3, 0.5], "c": True}


# ---- direction profile -------------------------------------------------------------------

def test_direction_profile_by_hand(hand_store):
    store, split = hand_store
    r = d.direction_profile(store, split, context_len=2, part="val")
    # windows (context -> target): (e1, e2) -> x2, (e2, x2) -> e3, (e1, e1) -> e1
    # cos(c0, t): 1/sqrt5, 0, 1; cos(c1, t): 2/sqrt5, 0, 1
    assert r["windows"] == 3 and r["articles"] == 2
    pos = r["position_to_target"]["cos"]
    assert pos[0] == pytest.approx((1 / S5 + 1) / 3, abs=1e-6)
    assert pos[1] == pytest.approx((2 / S5 + 1) / 3, abs=1e-6)
    assert r["signal_last_minus_first"] == pytest.approx(1 / (3 * S5), abs=1e-6)
    assert r["monotonic_increasing"] is True
    # cos(c0, c1): 0, 2/sqrt5, 1
    assert r["coherence"] == pytest.approx((2 / S5 + 1) / 3, abs=1e-6)


def test_offset_profile_by_hand_and_never_across_articles(hand_store):
    store, split = hand_store
    prof = d.direction_profile(store, split, context_len=2, part="val")["offset_profile"]
    k = {o: i for i, o in enumerate(prof["offsets"])}
    # offset 1 pairs: article 0: (e1,e2)=0, (e2,x2)=2/sqrt5, (x2,e3)=0; article 1: 1, 1. Five pairs: a pair
    # across the boundary (e3, e1) would make six.
    assert prof["pairs"][k[1]] == 5 and prof["pairs"][k[-1]] == 5
    assert prof["cos"][k[1]] == pytest.approx((2 / S5 + 2) / 5, abs=1e-6)
    # offset 2: (e1,x2)=1/sqrt5, (e2,e3)=0, (e1,e1)=1; offset 3: (e1,e3)=0 only; offset 4: none
    assert prof["cos"][k[2]] == pytest.approx((1 / S5 + 1) / 3, abs=1e-6)
    assert prof["pairs"][k[3]] == 1 and prof["cos"][k[3]] == pytest.approx(0.0, abs=1e-7)
    assert prof["pairs"][k[4]] == 0 and prof["cos"][k[4]] is None
    assert prof["cos"][k[0]] == pytest.approx(1.0) and prof["pairs"][k[0]] == 7
    assert prof["max_asymmetry"] == pytest.approx(0.0, abs=1e-7)


# ---- pair-order probe --------------------------------------------------------------------

def _sequence_store(path, *, directed: bool, n_articles=60, length=16, dim=8, seed=0):
    """Directed: every article drifts along one fixed direction, so order is learnable.
    Undirected: a stationary Gaussian AR(1) process, which is time-reversible: the reversed
    sequence has the same distribution, so no classifier can beat chance."""
    rng = np.random.default_rng(seed)
    drift = np.zeros(dim)
    drift[0] = 1.0
    arts = []
    for _ in range(n_articles):
        if directed:
            start = rng.normal(size=dim)
            arts.append([start + 0.4 * t * drift + 0.15 * rng.normal(size=dim) for t in range(length)])
        else:
            x, seq = rng.normal(size=dim), []
            for _ in range(length):
                x = 0.8 * x + 0.6 * rng.normal(size=dim)
                seq.append(x.copy())
            arts.append(seq)
    store = _store(path, arts)
    return store, split_by_fractions(store, {"train": 0.5, "val": 0.5}, seed=0)


def test_probe_detects_order_where_it_is_learnable_and_the_offset_profile_stays_symmetric(tmp_path):
    store, split = _sequence_store(tmp_path / "dir", directed=True)
    probe = d.pair_order_probe(store, split, context_len=5)
    assert probe["decisions"] == 2 * probe["eval_pairs"] == 2 * 30 * 15
    assert probe["accuracy"] > 0.8 and probe["ci95"][0] > 0.5 and probe["ci95_by_article"][0] > 0.5
    assert probe["eval_articles"] == 30
    assert probe["accuracy"] == pytest.approx(probe["pairwise_accuracy"], abs=0.01)  # the fit is antisymmetric
    assert probe["verdict"].startswith("order is detectable")
    prof = d.direction_profile(store, split, context_len=5)["offset_profile"]
    assert prof["max_asymmetry"] == pytest.approx(0.0, abs=1e-6)  # the offset profile cannot see it


def test_probe_finds_no_order_in_a_time_reversible_sequence(tmp_path):
    store, split = _sequence_store(tmp_path / "rev", directed=False)
    probe = d.pair_order_probe(store, split, context_len=5)
    lo, hi = probe["ci95"]
    assert lo < 0.5 < hi and abs(probe["accuracy"] - 0.5) < 0.06
    assert probe["ci95_by_article"][0] <= lo  # allowing for articles only widens the interval
    assert probe["verdict"].startswith("no evidence")


def test_probe_refuses_to_score_on_its_training_part(hand_store):
    store, split = hand_store
    with pytest.raises(d.InputError, match="held-out"):
        d.pair_order_probe(store, split, context_len=2, part="train")


# ---- baselines ---------------------------------------------------------------------------

def test_copy_last_baseline_by_hand(tmp_path):
    x2 = (E1 + 2 * E2) / S5
    rng = np.random.default_rng(1)
    store = _store(tmp_path / "one", [[E1, E2, x2, E3], list(rng.normal(size=(8, 3))), list(rng.normal(size=(7, 3)))])
    split = Split({"val": np.array([0]), "train": np.array([1, 2])}, {"kind": "hand"})
    r = d.baseline_metrics(store, split, context_len=2, part="val")
    cl = r["baselines"]["copy_last"]
    # windows: (e1, e2) -> x2 predicts e2: cos 2/sqrt5; (e2, x2) -> e3 predicts x2: cos 0
    assert cl["cos"] == pytest.approx(1 / S5, abs=1e-6)
    assert cl["margin_vs_last"] == pytest.approx((2 / S5 - 1 + 0 - 1) / 2, abs=1e-6)
    # ranks among the 4 chunks: target x2 behind e2 (rank 2); target e3 behind e1, e2, x2 (rank 4)
    assert cl["R@1_article"] == 0.0 and cl["MRR_article"] == pytest.approx((1 / 2 + 1 / 4) / 2)
    assert cl["chance_R@1_article"] == pytest.approx(0.25) and cl["candidates_article"] == 4
    # without the 2 context chunks: x2 among {x2, e3} (e3 scores 0 < 2/sqrt5): rank 1 of 2;
    # e3 among {e1, e3} (cos(x2, e1) = 1/sqrt5 > 0): rank 2 of 2
    assert cl["R@1_no_context"] == 0.5 and cl["MRR_no_context"] == pytest.approx(0.75) and cl["candidates_no_context"] == 2
    # linear extrapolation: 2 e2 - e1 -> cos with x2 = (-1 + 4) / (sqrt5 sqrt5) = 0.6; 2 x2 - e2 vs e3 = 0
    assert r["baselines"]["linear_extrapolation"]["cos"] == pytest.approx(0.3, abs=1e-6)
    assert set(r["baselines"]) == {"copy_last", "context_mean", "linear_extrapolation", "ridge"}
    assert r["ridge"]["fitted_on"] == "train" and r["ridge"]["train_windows"] == 6 + 5
    assert r["ridge"]["alpha"] in d.RIDGE_ALPHAS and len(r["ridge"]["held_out_train_cos"]) == 6


def test_baselines_equal_a_direct_recomputation(tmp_path):
    store = make_tiny_store(tmp_path / "t", lengths=(9, 12, 8, 10, 11, 7), dim=8)
    split = split_by_fractions(store, {"train": 0.5, "val": 0.5}, seed=3)
    r = d.baseline_metrics(store, split, context_len=3, ridge_alpha=0.5)
    assert r["ridge"]["alpha"] == 0.5 and "held_out_train_cos" not in r["ridge"]
    wins = make_windows(store, split.positions(store, "val"), 3)
    ctx, _ = wins.batch()
    train_ctx, train_tgt = make_windows(store, split.positions(store, "train"), 3).batch()
    preds = {n: f(ctx) for n, f in BASELINES.items()}
    preds["ridge"] = RidgeBaseline().fit(train_ctx, train_tgt, alpha=0.5).predict(ctx)
    for name, p in preds.items():
        want = prediction_metrics(store, p, wins.target_rows, context_len=3)
        for key, value in want.items():
            assert r["baselines"][name][key] == pytest.approx(value, abs=1e-6), (name, key)


def test_ridge_can_be_left_out(hand_store):
    store, split = hand_store
    r = d.baseline_metrics(store, split, context_len=2, ridge=False)
    assert "ridge" not in r["baselines"] and r["ridge"] is None


# ---- split hygiene -----------------------------------------------------------------------

def test_split_hygiene_finds_a_planted_near_duplicate_and_short_articles(tmp_path):
    rng = np.random.default_rng(5)
    arts = [list(rng.normal(size=(n, 6))) for n in (7, 6, 2, 8)]
    arts[3][4] = arts[0][2] + 0.01 * rng.normal(size=6)  # val article 13 chunk 4 ~ train article 10 chunk 2
    arts[1][3] = arts[1][2] * 1.5  # adjacent near-duplicate (cos 1) inside article 11
    texts = [f"t{i}" for i in range(sum(len(a) for a in arts))]
    store = _store(tmp_path / "h", arts, ids=[10, 11, 12, 13], texts=texts)
    split = Split({"train": np.array([10, 11, 12]), "val": np.array([12, 13])}, {"kind": "hand"})
    for block in (2048, 3):  # blocked and unblocked search agree
        r = d.split_hygiene(store, split, context_len=3, block=block)
        (near,) = r["near_duplicates_across_parts"]
        # val rows: article 12 (shared, 2 rows, exact duplicates of train rows) + article 13 (8 rows)
        assert near["checked_rows"] == 10 and near["near_duplicates"] == 3
        planted = [e for e in r["near_duplicate_examples"] if e["article_b"] == 13]
        assert len(planted) == 1 and planted[0]["article_a"] == 10
        assert (planted[0]["chunk_a"], planted[0]["chunk_b"]) == (2, 4)
        assert planted[0]["text_a"] == "t2" and planted[0]["text_b"] == "t19"
    assert r["articles_in_two_parts"] == [{"parts": ["train", "val"], "articles": 1, "first_ids": [12]}]
    assert r["adjacent_near_duplicates_within_articles"] == 1
    assert r["windows_by_part"]["train"] == {"articles": 3, "chunks": 15, "windows": 7,
                                             "articles_without_windows": 1, "chunks_in_short_articles": 2}
    assert r["windows_by_part"]["val"]["windows"] == 5


def test_blocked_max_cos_matches_brute_force():
    rng = np.random.default_rng(7)
    q, ref = rng.normal(size=(11, 5)), rng.normal(size=(13, 5))
    best, arg = d._max_cos_blocked(q, ref, block=4)
    sims = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (ref / np.linalg.norm(ref, axis=1, keepdims=True)).T
    np.testing.assert_allclose(best, sims.max(axis=1), atol=1e-6)
    np.testing.assert_array_equal(arg, sims.argmax(axis=1))


# ---- the command -------------------------------------------------------------------------

def test_diagnose_writes_json_and_report(tmp_path, capsys):
    store = make_tiny_store(tmp_path / "t", lengths=(9, 12, 8, 10, 11, 7, 9, 10), dim=8)
    out, rep = tmp_path / "d.json", tmp_path / "d.md"
    assert main(["diagnose", str(store.path), "--context-len", "3", "--val-fraction", "0.25",
                 "--set", "baselines.ridge_alpha=2", "--json", str(out), "--report", str(rep)]) == 0
    text = capsys.readouterr().out
    assert "== baselines" in text and "copy_last" in text and "symmetric by construction" in text
    assert "== summary" in text and "pair-order probe on val: accuracy" in text
    data = json.loads(out.read_text())
    assert data["schema"] == "lvm-workbench.diagnostics/1" and data["context_len"] == 3
    assert list(data["diagnostics"]) == ["split_hygiene", "direction_profile", "pair_order_probe", "baselines"]
    assert data["diagnostics"]["baselines"]["params"]["ridge_alpha"] == 2.0
    assert data["split"]["parts"] == {"train": 6, "val": 2}
    md = rep.read_text()
    assert md.startswith("# Data diagnostics") and "## pair_order_probe" in md and "| copy_last |" in md
    assert "## Summary" in md


@pytest.mark.parametrize("extra, message", [
    (["--only", "baseline"], "unknown diagnostic 'baseline'"),
    (["--set", "baselines.ridge_alpha=-1"], "expected >= 0.0"),
    (["--set", "baselines.ridge_alphas=[1, -2]"], "expected a list of alphas > 0"),
    (["--set", "baselines.nope=1"], "unknown parameter"),
    (["--set", "nodot=1"], "expected NAME.KEY=VALUE"),
    (["--part", "test"], "no split part named 'test'"),
    (["--part", "train"], "scored on held-out articles"),
    (["--split-file", "missing.json"], "no such split file"),
    (["--val-fraction", "1.5"], "expected a fraction"),
])
def test_diagnose_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    store = make_tiny_store(tmp_path / "t")
    assert main(["diagnose", str(store.path), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_diagnose_reads_a_split_file(tmp_path, capsys):
    store = make_tiny_store(tmp_path / "t", lengths=(9, 12, 8, 10), dim=8)
    Split({"train": np.array([100, 101]), "test": np.array([102, 103])}, {"kind": "hand"}).save(tmp_path / "s.json")
    assert main(["diagnose", str(store.path), "--split-file", str(tmp_path / "s.json"), "--part", "test",
                 "--only", "direction_profile", "--json", str(tmp_path / "o.json")]) == 0
    res = json.loads((tmp_path / "o.json").read_text())["diagnostics"]["direction_profile"]["result"]
    assert res["part"] == "test" and res["windows"] == (8 - 5) + (10 - 5)


# ---- end to end on the bundled demo store ------------------------------------------------

@pytest.mark.skipif(not (DEMO_STORE / "manifest.json").exists(), reason="bundled demo store not built yet")
def test_diagnose_demo_store_end_to_end(tmp_path, capsys):
    from lvm_core.data.store import ArticleStore

    out, rep = tmp_path / "demo.json", tmp_path / "demo.md"
    assert main(["diagnose", str(DEMO_STORE), "--json", str(out), "--report", str(rep)]) == 0
    data = json.loads(out.read_text())
    diags = data["diagnostics"]
    assert set(diags) >= {"split_hygiene", "direction_profile", "pair_order_probe", "baselines"}
    md = rep.read_text()
    for name in diags:
        assert f"## {name}" in md
    # the baseline numbers equal a direct recomputation on the same split
    store = ArticleStore.open(DEMO_STORE)
    split = split_by_fractions(store, {"train": 0.8, "val": 0.2}, seed=0)
    assert data["split"]["sha256"] == split.sha256()
    base = diags["baselines"]["result"]
    wins = make_windows(store, split.positions(store, "val"), 5)
    assert base["windows"] == len(wins) <= 5000  # the whole val part, no sampling
    ctx, _ = wins.batch()
    t_ctx, t_tgt = make_windows(store, split.positions(store, "train"), 5).batch()
    assert base["ridge"]["train_windows"] == len(t_ctx) <= 20000  # the whole train part
    alpha = base["ridge"]["alpha"]
    assert base["ridge"]["held_out_train_cos"][f"{alpha:g}"] == max(base["ridge"]["held_out_train_cos"].values())
    preds = {n: f(ctx) for n, f in BASELINES.items()}
    preds["ridge"] = RidgeBaseline().fit(t_ctx, t_tgt, alpha=alpha).predict(ctx)
    for name, p in preds.items():
        want = prediction_metrics(store, p, wins.target_rows, context_len=5)
        for key in ("cos", "margin_vs_last", "R@1_article", "MRR_article", "chance_R@1_article"):
            assert base["baselines"][name][key] == pytest.approx(want[key], abs=1e-5), (name, key)
        ranks, n = within_article_ranks(store, p, wins.target_rows, exclude_context=5)
        assert base["baselines"][name]["R@1_no_context"] == pytest.approx(float(np.mean(ranks == 1)))
        assert base["baselines"][name]["candidates_no_context"] == pytest.approx(float(np.mean(n)))
    # real text is coherent, and copy-last sits nearer its own input than the target
    assert base["baselines"]["copy_last"]["margin_vs_last"] < 0
    prof = diags["direction_profile"]["result"]["offset_profile"]
    assert prof["max_asymmetry"] == pytest.approx(0.0, abs=1e-5)
    assert diags["pair_order_probe"]["result"]["decisions"] > 0
