"""Tiny models, losses and setups for the trainer tests (no plugins needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lvm_core.data.store import ArticleStore, write_store
from lvm_core.data.windows import make_windows
from lvm_core.rundir import RunDir
from lvm_core.training.loop import EvalConfig, EvalSet, LossTerm, TrainConfig, TrainSetup

E0, E1, E2, E3 = (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)


def quarter_turn_store(path: Path) -> ArticleStore:
    """Article 7 (rows 0-2) for training, article 8 (rows 3-6) turning a quarter each chunk."""
    vecs = np.array([E1, E1, E3, E0, E1, E2, E3], dtype=np.float32)
    return write_store(path, vecs, [3, 4], [7, 8], dtype="float32")


class ConstantModel(nn.Module):
    """Predicts one learned direction for every context."""

    def __init__(self, direction=(1.0, 0.0)) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(direction, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.p, dim=0).expand(x.shape[0], -1)


class LastLinear(nn.Module):
    """normalize(W c_last + b): a small model that can learn."""

    def __init__(self, dim: int, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.lin = nn.Linear(dim, dim)
        self.drop = nn.Dropout(0.1)  # so resume tests also cover the RNG state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.lin(self.drop(x[:, -1, :])), dim=-1)


def mse_strategy(batch, model):
    return {"mse": F.mse_loss(batch.prediction(model), batch.targets)}


def scripted_loss(values: dict[int, float]) -> Callable[[Any, nn.Module], dict[str, torch.Tensor]]:
    """A loss whose value is `values[epoch]` (its gradient is zero): for early-stop tests."""

    def strategy(batch, model):
        zero = sum(p.sum() for p in model.parameters()) * 0.0
        return {"scripted": zero + values[batch.epoch]}

    return strategy


def setup_for(tmp_path: Path, store: ArticleStore, model: nn.Module, losses: list[LossTerm], *,
              train_articles=None, eval_articles=None, context_len: int = 2, run_name: str = "run",
              **config: Any) -> TrainSetup:
    cfg = TrainConfig(**{"device": "cpu", "warmup_steps": 0, "log_every": 1, **config})
    run = RunDir(tmp_path / run_name)
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_json("run.json", {"name": run_name, "status": "created"})
    tw = make_windows(store, None if train_articles is None else np.asarray(train_articles), context_len)
    ew = make_windows(store, None if eval_articles is None else np.asarray(eval_articles), context_len)
    meta = {"arch": "test", "arch_params": {}, "input_dim": store.dim, "context_len": context_len}
    return TrainSetup(name=run_name, run=run, model=model, losses=losses, train_windows=tw,
                      eval_sets=[EvalSet("val", ew)], config=cfg, eval=EvalConfig(), checkpoint_meta=meta)
