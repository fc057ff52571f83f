"""The relative verdict (gate vs_baselines): beats every baseline in cosine with the lower end of a
95 % paired article-bootstrap interval above 0, per split. No degenerate predictor may pass it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lvm_core.data.store import ArticleStore, l2_normalize
from lvm_core.data.windows import make_windows
from lvm_core.evaluation.battery import draw_samples, run_battery
from lvm_core.evaluation.bootstrap import paired_intervals
from lvm_core.evaluation.gate_report import console_table, markdown, relative_text, summary_line
from tests._gates_helpers import default_gates, walk_store
from tests.conftest import DEMO_STORE, OOD_STORE


def _splits(val, ood):
    return {"val": (val, make_windows(val).target_rows), "ood": (ood, make_windows(ood).target_rows)}


def _battery(predictor, val, ood, samples=400, **kw):
    return run_battery(predictor, _splits(val, ood), default_gates(), samples=samples, horizon=3, **kw)


def _zoo(dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    const = l2_normalize(rng.normal(size=(1, dim)))[0]
    return {
        "zeros": lambda c: np.zeros((c.shape[0], c.shape[2]), np.float32),
        "nan": lambda c: np.full((c.shape[0], c.shape[2]), np.nan, np.float32),
        "constant": lambda c: np.tile(const, (c.shape[0], 1)),
        "copy_last": lambda c: c[:, -1, :],
        "context_mean": lambda c: c.mean(axis=1),
        "random": lambda c: np.random.default_rng(1).normal(size=(c.shape[0], c.shape[2])).astype(np.float32),
    }


bundled = pytest.mark.skipif(not (DEMO_STORE.exists() and OOD_STORE.exists()), reason="bundled data missing")


@bundled
@pytest.mark.parametrize("first", [DEMO_STORE, OOD_STORE], ids=["python-docs", "kjv"])
def test_no_degenerate_predictor_passes_on_the_bundled_stores(first):
    """zeros, NaN, a constant vector, random vectors and both baselines themselves all fail on
    both splits; the oracle passes (it beats both baselines on real text)."""
    val = ArticleStore.open(first)
    ood = ArticleStore.open(OOD_STORE if first == DEMO_STORE else DEMO_STORE)
    for name, fn in _zoo(val.dim).items():
        res = _battery(fn, val, ood)
        verdict = res.verdicts["model"]["vs_baselines"]
        assert verdict.passed is False, name
        summary = res.relative_summary()
        assert summary["passed"] is False and not any(s["passed"] for s in summary["splits"].values()), name
    res = _battery(_zoo(val.dim)["copy_last"], val, ood)
    assert res.verdicts["oracle"]["vs_baselines"].passed is True
    assert res.verdicts["copy_last"]["vs_baselines"].passed is False  # never beats itself
    assert res.verdicts["context_mean"]["vs_baselines"].passed is False


def test_the_gate_matches_a_hand_made_bootstrap(tmp_path):
    """gain/<b> and its bounds are exactly paired_intervals of the per-sample cosine
    differences over the samples' articles, with the gate's resamples and seed."""
    store = walk_store(tmp_path / "w", lengths=(30, 25, 40, 35, 28, 33))
    mix = lambda c: 0.7 * c[:, -1, :] + 0.3 * c[:, -2, :]  # noqa: E731
    res = _battery(mix, store, store, samples=200)
    m = res.metrics["vs_baselines"]["val"]["model"]
    s = draw_samples("val", store, make_windows(store).target_rows, samples=200, horizon=3, context_len=5, seed=0,
                     legacy=False)
    rows = s.rows
    ctx = l2_normalize(store.gather(rows[:, None] + np.arange(-5, 0)[None, :]))
    tgt = l2_normalize(store.gather(rows))
    cos = lambda p: np.sum(l2_normalize(p) * tgt, axis=1).astype(np.float64)  # noqa: E731
    model, last, mean = cos(mix(ctx)), cos(ctx[:, -1]), cos(ctx.mean(axis=1))
    ivs = paired_intervals(np.stack([model - last, model - mean]), store.row_article[rows], resamples=2000, seed=0)
    assert m["gain/copy_last"] == pytest.approx(ivs[0].mean, abs=1e-6)
    assert m["gain/copy_last/lo"] == pytest.approx(ivs[0].lo, abs=1e-6)
    assert m["gain/context_mean/hi"] == pytest.approx(ivs[1].hi, abs=1e-6)
    assert m["cos"] == pytest.approx(model.mean(), abs=1e-6) and m["articles"] == 6.0


def test_not_counted_in_the_score_and_shown_in_the_score_line(tmp_path):
    """A-E stays the score (max 5); the relative verdict is reported beside it."""
    store = walk_store(tmp_path / "w")
    res = _battery(lambda c: c[:, -1, :], store, store, samples=100)
    assert res.max_score == 5 and res.score("oracle") == 4
    doc = json.loads(json.dumps(res.to_json()))
    assert doc["max_score"] == 5 and doc["gates"]["vs_baselines"]["relative"] is True
    bb = doc["beats_baselines"]
    assert bb["gate"] == "vs_baselines" and bb["passed"] is False and set(bb["splits"]) == {"val", "ood"}
    val = bb["splits"]["val"]
    assert val["vs"] == "copy_last" and val["lo"] == 0.0 and val["hi"] == 0.0 and val["passed"] is False
    assert set(val["against"]) == {"copy_last", "context_mean"}
    line = summary_line(res)
    assert "A-E 2/5 (pass needs all 5); beats baselines: val no [+0.000, +0.000] vs copy_last, ood no" in line
    assert "vs_baselines beats the baselines" in console_table(res)
    assert "beats baselines: val no" in markdown(res)
    assert "gates/vs_baselines/val/gain/context_mean/lo" in res.flat_metrics()


def test_relative_text_of_a_pass_and_of_a_nan():
    doc = {"splits": {"val": {"passed": True, "vs": "context_mean", "lo": 0.001, "hi": 0.012},
                      "ood": {"passed": False, "vs": "copy_last", "lo": None, "hi": None}}}
    assert relative_text(doc) == "beats baselines: val yes [+0.001, +0.012] vs context_mean, ood no [n/a] vs copy_last"
    assert relative_text(None) == ""


def test_legacy_mode_has_no_relative_gate(tmp_path):
    store = walk_store(tmp_path / "w")
    res = _battery(lambda c: c[:, -1, :], store, store, samples=100, legacy=True)
    assert [g.key for g in res.gates] == ["A", "B", "C", "D", "E"] and res.relative_summary() is None
    assert "beats baselines" not in summary_line(res)


def test_a_nan_model_reports_nan_bounds_and_fails(tmp_path):
    store = walk_store(tmp_path / "w")
    res = _battery(lambda c: np.full((c.shape[0], c.shape[2]), np.nan, np.float32), store, store, samples=100)
    m = res.metrics["vs_baselines"]["val"]["model"]
    # a NaN prediction is scored cos 0 (lvm_core.evaluation.metrics.unit_predictions) and counted: every check fails
    n = res.splits["val"]["samples"]
    assert m["nonfinite"] == n and m["gain/copy_last/lo"] < 0
    assert res.verdicts["model"]["vs_baselines"].passed is False
    assert all(c.nonfinite == n for c in res.verdicts["model"]["vs_baselines"].checks)
