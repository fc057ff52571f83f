"""Tests of the example kit: each piece against a hand-computed case, the oracle, copy-last,
zeros, NaN and a constant prediction. Run with `PYTHONPATH=examples/third_party_kit/src pytest
examples/third_party_kit/tests` (scripts/test.sh does)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lvm_core.data.store import write_store
from lvm_core.data.windows import Split
from lvm_core.evaluation.battery import predict_split, draw_samples
from lvm_residual_kit.plugin import BeatsCopyLast, MeanResidual, repeat_rate

LENGTHS = (12, 14, 11, 13)


@pytest.fixture
def basis(tmp_path):
    """Every chunk its own basis vector: cos is 1 for the same chunk and 0 for any other."""
    n = sum(LENGTHS)
    return write_store(tmp_path / "basis.lvmstore", np.eye(n, dtype=np.float32), LENGTHS, [10, 11, 12, 13],
                       dtype="float32")


def _samples(store):
    rows = np.arange(store.n_chunks)
    return draw_samples("val", store, rows, samples=1000, horizon=1, context_len=3, seed=0, legacy=False)


def _win_rate(store, predictor) -> tuple[float, float]:
    s = _samples(store)
    gate = BeatsCopyLast(**{"val.win_rate": 0.5, "ood.win_rate": 0.5})
    metrics = gate.measure(predict_split(predictor, s, ["base"]))
    return metrics["win_rate"], metrics["samples"]


def test_gate_oracle_wins_everywhere_and_copy_last_nowhere(basis):
    assert _win_rate(basis, "oracle") == (1.0, float(len(_samples(basis))))
    assert _win_rate(basis, "copy_last")[0] == 0.0  # never strictly closer than itself


def test_gate_on_zeros_nan_and_a_constant_prediction(basis):
    n, d = len(_samples(basis)), basis.dim
    assert _win_rate(basis, lambda ctx: np.zeros((ctx.shape[0], d), np.float32))[0] == 0.0  # cos 0 ties copy-last
    nan_rate = _win_rate(basis, lambda ctx: np.full((ctx.shape[0], d), np.nan, np.float32))[0]
    assert nan_rate == 0.0  # NaN compares false: a NaN model never wins
    const = np.zeros(d, np.float32)
    const[0] = 1.0  # always predicts chunk 0: wins only where the target is chunk 0, which no sample has
    assert _win_rate(basis, lambda ctx: np.tile(const, (ctx.shape[0], 1)))[0] == 0.0
    assert n > 0


def test_gate_judges_val_and_ood_with_their_own_thresholds():
    gate = BeatsCopyLast(**{"val.win_rate": 0.6, "ood.win_rate": 0.2})
    verdict = gate.judge({"val": {"win_rate": 0.5}, "ood": {"win_rate": 0.3}})
    assert [(c.split, c.threshold, c.passed) for c in verdict.checks] == [("val", 0.6, False), ("ood", 0.2, True)]
    assert gate.judge({"val": {"win_rate": math.nan}}).passed is False


def test_repeat_rate_by_hand(tmp_path):
    # one article of 4 chunks: e0, e0, e1, e1 -> adjacent pairs (e0,e0) (e0,e1) (e1,e1): 2 of 3 repeat
    vecs = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=np.float32)
    store = write_store(tmp_path / "r.lvmstore", vecs, [4], [7], dtype="float32")
    split = Split({"val": np.array([7])}, {"rule": "test"})
    out = repeat_rate(store, split, context_len=5, part="val", threshold=0.95)
    assert out["pairs"] == 3 and out["repeat_rate"] == pytest.approx(2 / 3)
    assert out["mean_adjacent_cos"] == pytest.approx(2 / 3)


def test_mean_residual_starts_as_the_context_mean_and_keeps_unit_rows():
    torch.manual_seed(0)
    model = MeanResidual(8, 5, hidden=4)
    ctx = torch.randn(3, 5, 8)
    out = model(ctx)
    assert out.shape == (3, 8)
    assert torch.allclose(out.norm(dim=-1), torch.ones(3), atol=1e-6)
    assert torch.allclose(out, torch.nn.functional.normalize(ctx.mean(1), dim=-1), atol=1e-6)
