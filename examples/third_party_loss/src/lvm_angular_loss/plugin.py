"""The angular loss: the mean angle between prediction and target.

1 - cos is nearly flat when the prediction is already close (its slope vanishes as the angle
goes to 0); the angle itself keeps a steady slope there, which is why some researchers prefer
it for the last few points of cosine. This module is everything a loss plugin needs: a factory
that returns a strategy, and a `register_losses` hook that declares it with its parameters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from workbench import Param, hookimpl


def angular(normalize: bool = True, eps: float = 1e-6):
    """Factory: called once per run with the plan's parameters; returns the strategy."""

    def strategy(batch, model) -> dict[str, torch.Tensor]:
        pred = batch.prediction(model)  # shared with the other loss terms of the plan
        cos = (F.normalize(pred.float(), dim=-1) * F.normalize(batch.targets.float(), dim=-1)).sum(-1)
        # clamp: arccos has an infinite slope at +-1
        angle = torch.arccos(cos.clamp(-1.0 + eps, 1.0 - eps))
        if normalize:
            angle = angle / math.pi
        return {"angular": angle.mean()}

    return strategy


@hookimpl
def register_losses(register):
    register("angular", angular, description="mean angle between prediction and target (arc-cosine)",
             params=(
                 Param("normalize", "bool", True, "divide by pi so the loss lies in [0, 1]"),
                 Param("eps", "float", 1e-6, "clamp |cos| below 1 - eps to keep the gradient finite",
                       min=0.0, max=0.1),
             ))
