"""TrainState: everything resume needs saves and loads in one place (issue 10: the resume state
was packed into a dict in one place and unpacked field by field in another), and the typed
`best` and early-stop records."""

from __future__ import annotations

import dataclasses
import math
import random

import numpy as np
import pytest
import torch
from torch import nn

from lvm_core.training.loop import LossTerm
from lvm_core.training.schedules import LrSchedule
from lvm_core.training.state import Best, EarlyStop, TrainState, improved
from lvm_core.training.tripwires import TripwireBoard, tripwire_from_dict
from lvm_core.training.weight_control import ShareController

from ._train_helpers import mse_strategy

# fields that are not resume state: the weights travel in the safetensors file beside the
# state, and started_t is when *this* process started (elapsed_before carries the past)
NOT_IN_STATE = {"model", "started_t"}


def _state(seed: int = 0) -> TrainState:
    torch.manual_seed(seed)
    model = nn.Linear(3, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = [LossTerm("mse", mse_strategy), LossTerm("aux", mse_strategy, control=ShareController(0.2))]
    board = TripwireBoard([tripwire_from_dict({"when": "val/cos < 0.1", "action": "alert"}, index=0)])
    return TrainState(model, opt, LrSchedule(1e-3, "plateau"), losses, board, Best("val/cos", "max"))


def _advance(s: TrainState) -> None:
    """Change every piece of state the way a run would."""
    s.model(torch.ones(2, 3)).sum().backward()
    s.optimizer.step()
    s.schedule.observe(0.3)
    s.schedule.observe(0.2)
    s.losses[1].control.update(1.0, 3.0)
    s.losses[0].scale = 0.5
    s.tripwires.check(2, {"val/cos": 0.05})
    s.tripwires.remember({"val/cos": 0.05})
    s.best = Best("val/cos", "max", 0.4, 2, 14)
    s.early = EarlyStop(0.4, 1)
    s.step, s.epoch, s.done_in_epoch, s.prev_cos = 17, 3, 3, 0.05
    s.add_train_means({"loss": 0.5, "loss/mse": 0.25}, 4)
    s.last_eval = {"val/cos": 0.05, "val/margin_vs_last": -0.1}
    s.elapsed_before = 12.5


def _comparable(s: TrainState) -> dict:
    out = {}
    for f in dataclasses.fields(TrainState):
        v = getattr(s, f.name)
        if f.name == "optimizer":
            v = repr(v.state_dict())
        elif f.name == "schedule":
            v = v.state_dict()
        elif f.name == "losses":
            v = [(t.name, t.scale, t.control.state_dict() if t.control else None) for t in v]
        elif f.name == "tripwires":
            v = v.state_dict()
        out[f.name] = v
    return out


def test_every_field_of_the_state_survives_a_save_and_load():
    a = _state()
    _advance(a)
    a.started_t -= 3.0  # three seconds trained in this process
    b = _state()
    b.load_state_dict(a.state_dict())
    want, got = _comparable(a), _comparable(b)
    want["elapsed_before"] = pytest.approx(12.5 + 3.0, abs=1.0)  # the past plus this process
    for name in set(want) - NOT_IN_STATE:
        assert got[name] == want[name], name


def test_a_field_the_state_dict_forgets_would_be_caught():
    """Each field left at a fresh state's value must differ after _advance: otherwise the test
    above would not notice a field that state_dict() forgets."""
    fresh, moved = _comparable(_state()), _state()
    _advance(moved)
    moved = _comparable(moved)
    for name in set(fresh) - NOT_IN_STATE:
        assert moved[name] != fresh[name], f"_advance leaves {name} unchanged"


def test_load_restores_the_rngs_of_the_save():
    s = _state()
    st = s.state_dict()
    draws = (random.random(), float(np.random.rand()), float(torch.rand(())))
    _state().load_state_dict(st)
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == draws


def test_a_state_saved_at_an_abort_keeps_the_given_rng():
    s = _state()
    mark = s.state_dict()["rng"]
    torch.rand(5)
    assert torch.equal(s.state_dict(rng=mark)["rng"]["torch"], mark["torch"])


def test_best_and_early_stop_are_typed_records():
    assert Best("val/cos", "max").as_dict() == {"metric": "val/cos", "mode": "max", "value": None,
                                                 "epoch": None, "step": None}
    e = EarlyStop()
    assert [e.observe(v, "max") for v in (0.5, 0.4, math.nan, 0.6, 0.6)] == [0, 1, 2, 0, 1]
    assert e.best == 0.6
    e = EarlyStop()
    assert [e.observe(v, "min") for v in (0.5, 0.4, 0.45)] == [0, 0, 1]


@pytest.mark.parametrize("value,best,mode,want", [
    (1.0, None, "max", True), (math.nan, None, "max", False), (0.5, 0.4, "max", True), (0.4, 0.4, "max", False),
    (0.3, 0.4, "min", True), (0.4, 0.4, "min", False), (0.0, 0.0, "max", False), (-1.0, 0.0, "min", True)])
def test_improved(value, best, mode, want):
    assert improved(value, best, mode) is want


def test_train_means_average_over_the_micro_batches_logged():
    s = _state()
    assert s.train_means() == {}  # zero micro-batches: no division by zero
    s.add_train_means({"loss": 1.0}, 2)
    s.add_train_means({"loss": 4.0}, 1)
    assert s.train_means() == {"loss": pytest.approx(2.0)}
    s.next_epoch()
    assert (s.epoch, s.done_in_epoch, s.sums, s.n_sum) == (2, 0, {}, 0)


class _CountingLinear(nn.Module):
    """LastLinear-like model that counts its forward passes in training mode."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.lin = nn.Linear(dim, dim)
        self.calls = 0

    def forward(self, x):
        if self.training:
            self.calls += 1
        return self.lin(x[:, -1, :])


class _NoPrediction:
    uses_prediction = False

    def __call__(self, batch, model):
        return {"own": model(batch.contexts).pow(2).mean()}  # its own forward, not the shared one


@pytest.mark.parametrize("losses,forwards_per_batch", [
    (lambda: [LossTerm("mse", mse_strategy), LossTerm("again", mse_strategy)], 1),  # shared by both terms
    (lambda: [LossTerm("own", _NoPrediction())], 1),  # no shared forward pass: only the term's own
])
def test_the_loop_runs_one_shared_forward_pass_per_micro_batch(tmp_path, losses, forwards_per_batch):
    from lvm_core.training.loop import train
    from tests.conftest import make_tiny_store

    from ._train_helpers import setup_for

    store = make_tiny_store(tmp_path / "s", lengths=(10,) * 4)
    model = _CountingLinear(store.dim)
    setup = setup_for(tmp_path, store, model, losses(), epochs=1, batch_size=4, grad_accum=2)
    result = train(setup)
    assert result.status == "completed"
    assert model.calls == forwards_per_batch * result.step * 2
