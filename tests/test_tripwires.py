"""Tripwires in the trainer, on scripted metric sequences: a fake evaluation returns the numbers
each test chooses, so every action is checked at exactly the epoch it must fire."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import lvm_core.training.loop as train_mod
from lvm_core.events import CheckpointSaved, EvalDone, StepLogged
from lvm_core.training.checkpoint import load_state, load_weights
from lvm_core.training.checkpointer import Checkpointer
from lvm_core.training.loop import LossTerm, train
from lvm_core.training.tripwires import Condition, Lower, Tripwire, TripwireBoard
from tests._train_helpers import LastLinear, mse_strategy, setup_for
from tests.conftest import make_tiny_store

torch.set_num_threads(1)


def cosine_strategy(batch, model):
    return {"guard": 1 - F.cosine_similarity(batch.prediction(model), batch.targets, dim=-1).mean()}


@pytest.fixture
def store(tmp_path):
    return make_tiny_store(tmp_path / "s", lengths=(8, 7, 9, 6), dim=8)


def script(monkeypatch, per_epoch: list[dict[str, float]]) -> list[int]:
    """Replace the trainer's evaluation: call i returns per_epoch[i]. Returns the call log."""
    calls: list[int] = []

    def fake_evaluate(model, eval_sets, device, batch_size=1024, dist=None, preds_out=None):
        calls.append(len(calls))
        return dict(per_epoch[len(calls) - 1])

    monkeypatch.setattr(train_mod, "evaluate", fake_evaluate)
    return calls


def _setup(tmp_path, store, tripwires, **cfg):
    s = setup_for(tmp_path, store, LastLinear(8), [LossTerm("mse", mse_strategy), LossTerm("guard", cosine_strategy, 0.4)],
                  train_articles=[0, 1, 2], eval_articles=[3], batch_size=4, log_every=100, collapse_drop=0.0,
                  **{"epochs": 4, **cfg})
    s.tripwires = tripwires
    return s


def _alerts(run_dir, code="tripwire"):
    lines = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    return [a for a in lines if a["kind"] == "Alert" and a["code"] == code]


def test_alert_fires_only_at_the_scripted_epochs(tmp_path, store, monkeypatch):
    script(monkeypatch, [{"val/cos": 0.5, "val/margin": -0.1}, {"val/cos": 0.6, "val/margin": -0.1},
                         {"val/cos": 0.5, "val/margin": 0.1}, {"val/cos": 0.46, "val/margin": -0.2}])
    setup = _setup(tmp_path, store, [Tripwire(Condition.parse("val/cos drop > 0.05")),
                                      Tripwire(Condition.parse("val/margin < 0"), from_epoch=2),
                                      Tripwire(Condition.parse("val/margin < 0"), from_epoch=2, once=True, name="once")])
    result = train(setup)
    assert result.status == "completed" and result.epoch == 4
    fired = [(a["epoch"], a["message"].split("'")[1]) for a in _alerts(setup.run.path)]
    # drop 0.1 at epoch 3 only (epoch 2 rises, epoch 4 drops 0.04); margin < 0 at epochs 2 and 4, once: 2
    assert fired == [(2, "val/margin < 0.0"), (2, "once"), (3, "val/cos drop > 0.05"), (4, "val/margin < 0.0")]
    assert "val/cos went from 0.6000 to 0.5000 (drop 0.1000); action alert" in _alerts(setup.run.path)[2]["message"]


def test_stop_ends_the_run_after_the_firing_epoch(tmp_path, store, monkeypatch):
    calls = script(monkeypatch, [{"val/margin": -0.3}, {"val/margin": -0.05}, {"val/margin": 0.2}, {"val/margin": 0.2}])
    setup = _setup(tmp_path, store, [Tripwire(Condition.parse("val/margin < 0"), "stop", from_epoch=2)])
    result = train(setup)
    assert result.status == "stopped" and result.epoch == 2 and len(calls) == 2  # epoch 1 was not armed
    info = json.loads((setup.run.path / "run.json").read_text())
    assert info["status"] == "stopped" and "val/margin = -0.0500; action stop" in info["error"]
    assert Checkpointer(setup.run.checkpoints).pick("last").state()["epoch"] == 2
    assert [a["epoch"] for a in _alerts(setup.run.path)] == [2]


def test_rollback_restores_the_best_weights_and_lowers_the_weight_afterwards(tmp_path, store, monkeypatch):
    script(monkeypatch, [{"val/cos": 0.6, "val/margin": 0.3},   # best (select on val/cos, the default)
                         {"val/cos": 0.4, "val/margin": 0.1},   # drop 0.2: roll back to epoch 1, guard x0.5
                         {"val/cos": 0.52, "val/margin": 0.1}])  # drop 0.08 from the *restored* 0.6: fires again
    setup = _setup(tmp_path, store, [Tripwire(Condition.parse("val/cos drop > 0.05"), "rollback",
                                              lower=Lower("guard", 0.5))], epochs=3)
    seen: dict = {"w": {}}

    def sink(event):
        if isinstance(event, EvalDone) and event.epoch == 2:  # the model before the rollback
            seen["before"] = {k: v.clone() for k, v in setup.model.state_dict().items()}
        if isinstance(event, CheckpointSaved) and event.tag == "last" and event.epoch == 2:
            seen["after"] = load_weights(event.path)
            seen["opt_after"] = load_state(event.path)["optimizer"]
        if isinstance(event, StepLogged):
            seen["w"].setdefault(event.epoch, set()).add(event.metrics["w/guard"])

    result = train(setup, [sink])
    assert result.status == "completed"
    best_w = load_weights(setup.run.checkpoint("best"))
    best_state = Checkpointer(setup.run.checkpoints).pick("best").state()
    best_opt = best_state["optimizer"]
    assert best_state["epoch"] == 1
    assert any(not torch.equal(seen["before"][k], best_w[k]) for k in best_w)  # epoch 2 had trained on
    assert all(torch.equal(seen["after"][k], best_w[k]) for k in best_w)  # ... and was rolled back
    for pid, st in best_opt["state"].items():  # AdamW moments and step count restored too
        assert all(torch.equal(st[k], seen["opt_after"]["state"][pid][k]) for k in st)
    assert {e: sorted(round(w, 9) for w in ws) for e, ws in seen["w"].items()} == {1: [0.4], 2: [0.4], 3: [0.2]}
    alerts = _alerts(setup.run.path)
    assert [a["epoch"] for a in alerts] == [2, 3]
    assert "restored the best checkpoint (epoch 1, val/cos = 0.6000); weight of guard x0.5 (now 0.2 at epoch 3)" \
        in alerts[0]["message"]
    assert "went from 0.6000 to 0.5200" in alerts[1]["message"]
    assert setup.losses[1].scale == pytest.approx(0.25)


def test_rollback_before_any_best_checkpoint_only_lowers(tmp_path, store, monkeypatch):
    script(monkeypatch, [{"val/cos": 0.2, "val/margin": float("nan")}, {"val/cos": 0.1, "val/margin": float("nan")}])
    setup = _setup(tmp_path, store, [Tripwire(Condition.parse("val/cos < 0.3"), "rollback", lower=Lower("mse", 0.1),
                                              once=True)], epochs=2, select_metric="val/margin")  # NaN: no best
    train(setup)
    (alert,) = _alerts(setup.run.path)
    assert alert["epoch"] == 1 and "no best checkpoint yet, weights kept; weight of mse x0.1" in alert["message"]


def test_a_metric_the_run_does_not_log_is_one_alert_and_the_wire_is_off(tmp_path, store, monkeypatch):
    script(monkeypatch, [{"val/cos": 0.5}] * 3)
    setup = _setup(tmp_path, store, [Tripwire(Condition.parse("loss/guard/stat/gap < 1"))], epochs=3)
    assert train(setup).status == "completed"
    (problem,) = _alerts(setup.run.path, "tripwire_metric")
    assert problem["epoch"] == 1 and "'loss/guard/stat/gap' is not a metric this run logs" in problem["message"]
    assert _alerts(setup.run.path) == []


def test_train_losses_answer_with_and_without_the_train_prefix():
    board = TripwireBoard([Tripwire(Condition.parse("loss/mse > 1")), Tripwire(Condition.parse("train/loss rise > 0.5"))])
    assert [f.index for f in board.check(1, {"train/loss/mse": 2.0, "train/loss": 1.0})[0]] == [0]
    board.remember({"train/loss/mse": 2.0, "train/loss": 1.0})
    assert [f.index for f in board.check(2, {"train/loss/mse": 0.5, "train/loss": 1.6})[0]] == [1]
    st = board.state_dict()
    again = TripwireBoard(board.tripwires)
    again.load_state_dict(json.loads(json.dumps(st)))
    assert again.fired == [1, 1] and again.previous == board.previous
