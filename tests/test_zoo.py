"""The degenerate-predictor zoo (docs/5cat.md, "What each predictor must get"): every predictor
gets exactly the verdicts of the table, gate by gate, on both bundled stores (each as VAL with
the other as OOD) and on hand-built stores. Zero and NaN models score 0/5 everywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lvm_core.data.store import ArticleStore
from lvm_core.data.windows import make_windows
from lvm_core.evaluation.battery import resolve_gates, run_battery
from lvm_core.evaluation.gate_report import console_table
from tests._gates_helpers import basis_store, walk_store
from workbench.plugin_host import load_plugins
from tests._zoo_helpers import zoo

P, F = True, False
# gate verdicts A B C D E; docs/5cat.md prints this very table
BUNDLED = {
    "zeros": (F, F, F, F, F),
    "nan": (F, F, F, F, F),
    "constant": (F, F, F, F, F),
    "global_mean": (F, F, F, F, F),
    "random_unit": (F, F, F, F, P),
    "copy_last": (F, F, F, P, P),
    "context_mean": (F, F, F, P, P),
    "oracle": (P, P, F, P, P),
    "wrong_article_oracle": (F, F, F, F, F),
}
# hand-built random-walk stores (neighbours alike, far chunks not): where data decide, they differ
WALK = {**BUNDLED, "random_unit": (F, F, F, F, F), "copy_last": (F, P, F, F, P), "context_mean": (F, F, F, F, F)}


def five_gates():
    """A-E only: the zoo runs without baselines, and the table is about the absolute gates."""
    host = load_plugins(entry_points=False)
    return resolve_gates(lambda n: host.get("gate", n), names=tuple("ABCDE"))


def _battery(predictor, val, ood, samples):
    splits = {"val": (val, make_windows(val).target_rows), "ood": (ood, make_windows(ood).target_rows)}
    return run_battery(predictor, splits, five_gates(), samples=samples, horizon=5, baselines=())


def _check_table(val, ood, table, samples):
    got = {}
    for name, predictor in zoo(val, ood).items():
        res = _battery(predictor, val, ood, samples)
        got[name] = tuple(bool(res.verdicts["model"][g].passed) for g in "ABCDE")
        degenerate = name in ("zeros", "nan")
        assert (sum(res.nonfinite().values()) > 0) == degenerate, name
        if degenerate:
            assert res.score() == 0
            assert "non-finite predictions: model val" in console_table(res)
    assert got == table


@pytest.mark.parametrize("val_name,ood_name", [("python-docs-minilm", "kjv-minilm"), ("kjv-minilm", "python-docs-minilm")])
def test_zoo_table_on_bundled_stores(val_name, ood_name):
    data = Path(__file__).resolve().parents[1] / "examples" / "data"
    _check_table(ArticleStore.open(data / val_name), ArticleStore.open(data / ood_name), BUNDLED, samples=500)


def test_zoo_table_on_hand_built_stores(tmp_path):
    val = walk_store(tmp_path / "a", seed=0)
    ood = walk_store(tmp_path / "b", seed=1, lengths=(18, 25, 13, 16))
    _check_table(val, ood, WALK, samples=200)


@pytest.mark.parametrize("fill", [0.0, np.nan, np.inf])
def test_zero_and_nan_models_score_nothing_on_one_hot_chunks(tmp_path, fill):
    """On one-hot chunks every wrong candidate ties a zero prediction; it still ranks last."""
    store = basis_store(tmp_path / "basis")
    res = _battery(lambda c: np.full((len(c), c.shape[2]), fill, np.float32), store, store, 100)
    assert res.score() == 0 and all(not c.passed for v in res.verdicts["model"].values() for c in v.checks)
    b = res.metrics["B"]["val"]["model"]
    assert b["R@1_article"] == 0.0 and b["R@5_no_context"] == 0.0 and b["nonfinite"] == res.splits["val"]["samples"]
    assert res.metrics["A"]["val"]["model"]["k=+1"] == 0.0  # a zero row has cos 0 to everything
    doc = res.to_json()
    assert doc["splits"]["val"]["nonfinite"]["model"] == res.splits["val"]["samples"]
    assert doc["gates"]["C"]["checks"][0]["nonfinite"] > 0


def test_one_nan_row_fails_every_check_of_its_split(tmp_path):
    """A single non-finite prediction among 50 copy-last ones fails every check that reads it."""
    val = walk_store(tmp_path / "a", seed=0)

    def copy_last_one_nan(contexts):
        out = contexts[:, -1, :].copy()
        out[0] = np.nan
        return out

    res = run_battery(copy_last_one_nan, {"val": (val, make_windows(val).target_rows)}, five_gates(),
                      samples=50, baselines=())
    assert res.metrics["A"]["val"]["model"]["nonfinite"] == 1.0
    assert res.metrics["B"]["val"]["model"]["nonfinite"] == 1.0
    assert res.verdicts["model"]["B"].passed is False  # copy-last alone passes B on walk stores
    assert all(not c.passed for g in "ABCD" for c in res.verdicts["model"][g].checks)
