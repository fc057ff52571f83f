"""Three plugin kinds in one module: a gate, a data diagnostic and a model architecture.

- gate ``CM`` (beats copy-last): on every sample of the shared evaluation, does the model's
  prediction sit closer to the true next chunk than the last context chunk does? Copy-last
  itself scores 0 (never strictly closer), the oracle scores 1 unless a chunk repeats exactly.
- diagnostic ``repeat_rate``: how many adjacent chunk pairs of a split part are near-duplicates
  (a corpus where most are makes copy-last look strong).
- model ``mean_residual``: the context mean plus a small learned residual of the last chunk.

Everything it needs from lvm-workbench is public, from `workbench.api`: Param and hookimpl, and
the Check/Verdict/split_kind vocabulary of the gate protocol.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workbench.api import Check, Param, SplitPredictions, Verdict, hookimpl, make_windows, split_kind

NAN = float("nan")
TIE = 1e-6  # predictions are re-normalised in float32: equal vectors differ by ~1e-7


# ---- gate ------------------------------------------------------------------------------------

class BeatsCopyLast:
    """CM: share of samples where cos(prediction, target) > cos(last context chunk, target)."""

    key = "CM"  # the host sets it to the registered name anyway
    title = "beats copy-last"
    PARAMS = (
        Param("val.win_rate", "float", 0.5, "minimum share of VAL samples won against copy-last", min=0.0, max=1.0),
        Param("ood.win_rate", "float", 0.5, "minimum share of OOD samples won against copy-last", min=0.0, max=1.0),
    )

    def __init__(self, **thresholds: Any) -> None:
        self.thresholds = dict(thresholds)

    def variants(self, context_len: int, horizon: int, legacy: bool) -> list[str]:
        return ["base"]  # only the plain prediction; ablations and rollout are not needed

    def measure(self, preds: SplitPredictions) -> dict[str, float]:
        s = preds.samples
        idx = s.subset(self.key)
        target = s.unit_rows(0)[idx]  # unit vectors of each sample's true next chunk
        last = s.unit_context()[idx, -1]
        model_cos = np.einsum("ij,ij->i", preds["base"][idx], target)
        copy_cos = np.einsum("ij,ij->i", last, target)
        win = model_cos > copy_cos + TIE  # a tie within float rounding is no win
        return {"win_rate": float(win.mean()) if len(idx) else NAN, "samples": float(len(idx))}

    def judge(self, metrics: Mapping[str, Mapping[str, float]]) -> Verdict:
        return Verdict([Check(split, "win_rate", ">=", float(self.thresholds[f"{split_kind(split)}.win_rate"]),
                              values.get("win_rate", NAN)) for split, values in metrics.items()])


# ---- diagnostic ------------------------------------------------------------------------------

def repeat_rate(store, split, *, context_len: int, part: str = "val", threshold: float = 0.95) -> dict[str, Any]:
    """Share of adjacent chunk pairs (inside one article) of `part` with cosine above `threshold`."""
    windows = make_windows(store, split.positions(store, part), 1)  # every chunk with a predecessor
    rows = windows.target_rows
    if len(rows) == 0:
        return {"part": part, "pairs": 0, "repeat_rate": None}
    a = store.gather(rows - 1).astype(np.float64)
    b = store.gather(rows).astype(np.float64)
    cos = np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return {"part": part, "pairs": int(len(rows)), "threshold": threshold,
            "repeat_rate": float(np.mean(cos > threshold)), "mean_adjacent_cos": float(np.mean(cos))}


# ---- model -----------------------------------------------------------------------------------

class MeanResidual(nn.Module):
    """normalize(mean(context) + MLP(last chunk)): starts near the context-mean baseline."""

    def __init__(self, dim: int, context_len: int, hidden: int = 64) -> None:
        super().__init__()
        self.residual = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        nn.init.zeros_(self.residual[2].weight)  # at step 0 the model is the context mean
        nn.init.zeros_(self.residual[2].bias)

    def forward(self, contexts: torch.Tensor) -> torch.Tensor:
        return F.normalize(contexts.mean(dim=1) + self.residual(contexts[:, -1]), dim=-1)


# ---- registration ----------------------------------------------------------------------------

@hookimpl
def register_gates(register):
    register("CM", BeatsCopyLast, description="beats copy-last: share of samples closer to the target than the last chunk",
             params=BeatsCopyLast.PARAMS)


@hookimpl
def register_diagnostics(register):
    register("repeat_rate", repeat_rate, description="share of adjacent chunk pairs that are near-duplicates",
             params=(Param("part", "str", "val", "split part the rate is computed on"),
                     Param("threshold", "float", 0.95, "cosine above which a pair counts as a repeat",
                           min=-1.0, max=1.0)))


@hookimpl
def register_models(register):
    register("mean_residual", MeanResidual, description="context mean plus a learned residual of the last chunk",
             params=(Param("hidden", "int", 64, "width of the residual MLP", min=1),))
