"""Sample filters (curricula as data): window scores against hand-computed cases and a per-window
loop on the real demo store, the selection rules with ties, epochs, and the trainer drawing only
the kept windows."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import lvm_core.training.curriculum as cur
from lvm_core.data.store import ArticleStore, write_store
from lvm_core.data.windows import make_windows
from lvm_core.errors import InputError
from lvm_core.events import RunStarted
from lvm_core.training.curriculum import SampleFilter, WindowSubset, build_subsets, epoch_index, window_scores
from lvm_core.training.loop import LossTerm, train
from tests._train_helpers import LastLinear, mse_strategy, setup_for
from tests.conftest import DEMO_STORE, make_tiny_store
from workbench.plugin_host import load_plugins
from workbench.plan import plan_from_text
from workbench.run_prep import prepare_run

torch.set_num_threads(1)


@pytest.fixture
def turn_store(tmp_path):
    # article 10: (1,0) (0,1) (1,0) (.6,.8); article 11: (0,1) (0,1) (.8,.6)
    vecs = np.array([[1, 0], [0, 1], [1, 0], [0.6, 0.8], [0, 1], [0, 1], [0.8, 0.6]], dtype=np.float32)
    return write_store(tmp_path / "t", vecs, [4, 3], [10, 11], dtype="float32")


@pytest.mark.parametrize("chunk", [1, 2, 16384])
def test_window_scores_hand_computed(turn_store, monkeypatch, chunk):
    monkeypatch.setattr(cur, "CHUNK_WINDOWS", chunk)  # the chunked loop must not shift windows
    w = make_windows(turn_store, None, 2)
    assert list(w.target_rows) == [2, 3, 6]
    # target (1,0): cos to c_last (0,1) = 0, to c_1 (1,0) = 1
    # target (.6,.8): cos to c_last (1,0) = .6, to c_1 (0,1) = .8
    # target (.8,.6): cos to c_last (0,1) = .6, to c_1 (0,1) = .6
    assert window_scores(w, "forward_advantage") == pytest.approx([0 - 1, 0.6 - 0.8, 0.6 - 0.6])
    assert window_scores(w, "forward_distinctness") == pytest.approx([1.0, 0.4, 0.4])
    assert window_scores(w, "last_similarity") == pytest.approx([0.0, 0.6, 0.6])


def test_forward_advantage_takes_the_max_over_earlier_chunks(tmp_path):
    vecs = np.array([[0.6, 0.8], [0.8, 0.6], [0, 1], [1, 0]], dtype=np.float32)  # one article, L = 3, target (1,0)
    w = make_windows(write_store(tmp_path / "m", vecs, [4], [1], dtype="float32"), None, 3)
    assert window_scores(w, "forward_advantage") == pytest.approx([0.0 - max(0.6, 0.8)])


def test_scores_match_a_per_window_loop_on_the_demo_store():
    store = ArticleStore.open(DEMO_STORE)
    w = make_windows(store, np.arange(12), 5)
    got = window_scores(w, "forward_advantage")
    for i in range(0, len(w), 7):
        t = store.gather(np.array([w.target_rows[i]]))[0].astype(np.float64)
        cs = [store.gather(np.array([w.target_rows[i] - 5 + j]))[0].astype(np.float64) for j in range(5)]
        cos = [float(c @ t / np.linalg.norm(c) / np.linalg.norm(t)) for c in cs]
        assert got[i] == pytest.approx(cos[4] - max(cos[:4]), abs=1e-6)


SCORES = np.array([3.0, 1.0, 2.0, 2.0, 0.0])


@pytest.mark.parametrize("rule, kept", [
    ({"top": 0.4}, [0, 2]),          # ceil(2.0) = 2; the tie 2.0/2.0 goes to the earlier window
    ({"top": 0.5}, [0, 2, 3]),       # ceil(2.5) = 3
    ({"top": 1.0}, [0, 1, 2, 3, 4]),
    ({"top": 0.01}, [0]),            # at least one
    ({"bottom": 0.4}, [1, 4]),
    ({"min": 2.0}, [0, 2, 3]),       # inclusive
    ({"max": 1.0}, [1, 4]),
    ({"min": 1.0, "max": 2.0}, [1, 2, 3]),
    ({"min": 5.0}, []),
])
def test_selection_rules(rule, kept):
    assert SampleFilter("last_similarity", **rule).select(SCORES).tolist() == kept


def test_active_filters_intersect_per_epoch():
    a = WindowSubset("a", 1, 3, np.array([0, 2, 4, 6]))
    b = WindowSubset("b", 2, 0, np.array([2, 3, 4]))
    assert epoch_index([a, b], 1).tolist() == [0, 2, 4, 6]
    assert epoch_index([a, b], 2).tolist() == [2, 4] == epoch_index([a, b], 3).tolist()
    assert epoch_index([a, b], 4).tolist() == [2, 3, 4]
    assert epoch_index([a], 4) is None  # no filter active: every window


def test_build_subsets_reports_the_cut(turn_store):
    w = make_windows(turn_store, None, 2)
    (s,) = build_subsets(w, [SampleFilter("forward_advantage", top=0.5, until_epoch=2)])
    assert s.index.tolist() == [1, 2] and s.threshold == pytest.approx(-0.2)  # ceil(1.5) = 2 highest: 0, -0.2
    assert s.label == "forward_advantage top 0.5 (epochs 1-2)"


def test_the_trainer_draws_only_the_kept_windows_while_the_filter_is_active(tmp_path):
    store = make_tiny_store(tmp_path / "s", lengths=(8, 7, 9, 6), dim=8)
    seen: dict[int, list[int]] = {}

    def recording(batch, model):
        seen.setdefault(batch.epoch, []).extend(batch.target_rows.tolist())
        return mse_strategy(batch, model)

    setup = setup_for(tmp_path, store, LastLinear(8), [LossTerm("mse", recording)], batch_size=2, epochs=3, log_every=100)
    n = len(setup.train_windows)
    keep = np.array([1, 4, 5, 9, 12, 13])
    setup.train_subsets = [WindowSubset("test", 1, 2, keep)]
    events = []
    train(setup, [events.append])
    rows = setup.train_windows.target_rows
    assert sorted(seen[1]) == sorted(seen[2]) == sorted(rows[keep].tolist())  # 6 windows, 3 steps of 2
    assert len(seen[3]) == n // 2 * 2 and len(set(seen[3])) == len(seen[3])  # epoch 3: the whole split again
    assert set(seen[3]) <= set(rows.tolist()) and set(seen[3]) - set(rows[keep].tolist())
    (started,) = [e for e in events if isinstance(e, RunStarted)]
    assert started.total_steps == 3 + 3 + n // 2


PLAN = """\
name = "curriculum"
seed = 0
[data]
store = "{store}"
context_len = 5
[[data.filter]]
metric = "forward_advantage"
top = {top}
until_epoch = 1
[model]
arch = "mlp"
params = {{ hidden_dim = 16 }}
[[loss]]
name = "cosine"
[train]
epochs = 2
batch_size = 32
device = "cpu"
threads = 1
[eval]
max_samples = 200
"""


def test_a_plan_filter_on_the_demo_store_end_to_end(tmp_path):
    plan = plan_from_text(PLAN.format(store=DEMO_STORE, top=0.3), tmp_path, source="c.toml")
    setup = prepare_run(plan, load_plugins(), run_dir=tmp_path / "run")
    (sub,) = setup.train_subsets
    n = len(setup.train_windows)
    assert len(sub.index) == math.ceil(0.3 * n)
    scores = window_scores(setup.train_windows, "forward_advantage")
    assert scores[sub.index].min() >= np.delete(scores, sub.index).max()  # the top 30% indeed
    result = train(setup)
    assert result.status == "completed"
    alerts = [json.loads(x) for x in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    (info,) = [a for a in alerts if a.get("code") == "curriculum"]
    assert f"{len(sub.index)} of {n} train windows" in info["message"]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["total_steps"] == len(sub.index) // 32 + n // 32


def test_a_filter_that_keeps_less_than_a_step_is_bad_input(tmp_path):
    plan = plan_from_text(PLAN.format(store=DEMO_STORE, top=0.001), tmp_path, source="c.toml")
    with pytest.raises(InputError, match=r"at epoch 1 the data filters keep \d+ of \d+ train windows, fewer than one step"):
        prepare_run(plan, load_plugins(), run_dir=tmp_path / "run")
