"""Tests of the example plugin: a hand-computed value, gradients, and registration."""

import math

import pytest
import torch

from lvm_angular_loss.plugin import angular
from lvm_core.training.batch import Batch
from workbench.plugin_host import load_plugins


class Fixed(torch.nn.Module):
    def __init__(self, pred):
        super().__init__()
        self.pred = torch.nn.Parameter(torch.tensor(pred))

    def forward(self, contexts):
        return self.pred * 1.0


def _batch(targets):
    t = torch.tensor(targets)
    n = len(targets)
    return Batch(torch.zeros(n, 1, 2), t, article=torch.zeros(n, dtype=torch.long), target_rows=torch.arange(n))


def test_angle_by_hand():
    model = Fixed([[1.0, 0.0], [1.0, 0.0]])
    batch = _batch([[0.0, 1.0], [0.6, 0.8]])
    # angles: pi/2 and acos(0.6); normalized by pi
    expected = (0.5 + math.acos(0.6) / math.pi) / 2
    assert angular()(batch, model)["angular"].item() == pytest.approx(expected, abs=1e-6)
    assert angular(normalize=False)(batch, model)["angular"].item() == pytest.approx(expected * math.pi, abs=1e-5)


def test_gradient_is_finite_at_a_perfect_prediction():
    model = Fixed([[1.0, 0.0]])
    loss = angular()(_batch([[1.0, 0.0]]), model)["angular"]
    loss.backward()
    assert torch.isfinite(model.pred.grad).all()


def test_the_host_registers_it_with_its_params():
    host = load_plugins(["lvm_angular_loss.plugin"], entry_points=False)
    item = host.get("loss", "angular")
    assert item.param_defaults() == {"normalize": True, "eps": 1e-6}
