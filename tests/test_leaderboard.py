"""benchmarks/leaderboard.py's summary: means over seeds and pooled paired intervals, by hand."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from .conftest import ROOT


def _board():
    spec = importlib.util.spec_from_file_location("leaderboard", ROOT / "benchmarks" / "leaderboard.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _seed(model_gain: float, base: float, ids):
    n = len(ids)
    row = {"article_id": np.asarray(ids), "model": np.full(n, base + model_gain)}
    for b in ("copy_last", "context_mean", "ridge", "frame_weights"):
        row[b] = np.full(n, base)
    return {"val": row}


def test_a_model_better_by_a_constant_beats_every_baseline_beyond_noise():
    lb = _board()
    res = lb.summarise([_seed(0.1, 0.5, [1, 1, 2, 3]), _seed(0.1, 0.6, [2, 4, 5, 5])])["val"]
    assert res["seeds"] == 2 and res["beats_all"]
    assert res["cos"]["model"]["mean"] == pytest.approx(0.65) and res["cos"]["ridge"]["sd"] == pytest.approx(np.std([0.5, 0.6], ddof=1))
    g = res["gain"]["ridge"]
    assert (g["mean"], g["lo"], g["hi"]) == pytest.approx((0.1, 0.1, 0.1)) and not g["within_noise"]


def test_seeds_that_disagree_are_within_noise_and_a_copy_never_beats():
    lb = _board()
    res = lb.summarise([_seed(0.05, 0.5, [1, 2, 3]), _seed(-0.05, 0.5, [4, 5, 6])])["val"]
    assert res["gain"]["context_mean"]["within_noise"] and not res["beats_all"]
    same = lb.summarise([_seed(0.0, 0.5, [1, 2]), _seed(0.0, 0.5, [3, 4])])["val"]
    assert same["gain"]["copy_last"]["lo"] == 0.0 and not same["beats_all"]
