"""The trainer's relative numbers: per eval split, the model's cosine gain over each baseline on
the same samples, with a paired bootstrap interval over articles (lvm_core/evaluation/bootstrap.py).

Logged in metrics.jsonl as `<split>/gain/<baseline>` (mean of cos(model) - cos(baseline)) with
`.../lo` and `.../hi` (95 % bounds), and `<split>/beats_baselines` (1 when every lower bound is
above 0). The per-sample cosines of the last evaluation go to the run's `eval_samples.npz`, so
`runs compare` can pool several seeds' samples into one interval.

eval_samples.npz (load with allow_pickle=False): `epoch` (); per split `<split>/article_id` (S,)
int64, `<split>/row` (S,) int64, `<split>/model` (S,) float32 and `<split>/<baseline>` (S,)
float32 (per-sample cos to the target).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..atomic import atomic_path
from .bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES, paired_intervals
from ..data.store import l2_normalize

SAMPLES_FILE = "eval_samples.npz"


def per_sample_cos(pred: np.ndarray, target_unit: np.ndarray) -> np.ndarray:
    """cos(pred, target) per row, float64 (a zero prediction scores 0, NaN stays NaN)."""
    return np.sum(l2_normalize(pred).astype(np.float64) * target_unit, axis=1)


def gain_metrics(split: str, model: np.ndarray, baselines: Mapping[str, np.ndarray], articles: np.ndarray, *,
                 resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL, seed: int = 0) -> dict[str, float]:
    """Flat metrics `<split>/gain/<b>`, `.../lo`, `.../hi` and `<split>/beats_baselines`."""
    names = list(baselines)
    if not names:
        return {}
    ivs = paired_intervals(np.stack([model - baselines[b] for b in names]), articles, resamples=resamples,
                           level=level, seed=seed)
    out: dict[str, float] = {}
    for b, iv in zip(names, ivs):
        out[f"{split}/gain/{b}"], out[f"{split}/gain/{b}/lo"], out[f"{split}/gain/{b}/hi"] = iv.mean, iv.lo, iv.hi
    out[f"{split}/beats_baselines"] = float(all(iv.above_zero for iv in ivs))
    return out


class PairedEval:
    """Baseline per-sample cosines of every eval split, computed once; `metrics(preds)` adds the
    model's gains at each evaluation and `save(path, epoch)` writes the last one's samples."""

    def __init__(self, eval_sets: Any, baseline_preds: Mapping[str, Mapping[str, np.ndarray]], *, seed: int = 0) -> None:
        self.seed = seed
        self.splits: dict[str, dict[str, Any]] = {}
        for es in eval_sets:
            w = es.windows
            target = l2_normalize(w.store.gather(w.target_rows)).astype(np.float64)
            self.splits[es.name] = {
                "target": target,
                "row": np.asarray(w.target_rows, np.int64),
                "article_id": np.asarray(w.store.article_ids, np.int64)[w.store.row_article[w.target_rows]],
                "baselines": {b: per_sample_cos(p[es.name], target) for b, p in baseline_preds.items()},
            }
        self.last: dict[str, np.ndarray] = {}

    def metrics(self, model_preds: Mapping[str, np.ndarray]) -> dict[str, float]:
        out: dict[str, float] = {}
        for split, pred in model_preds.items():
            s = self.splits[split]
            cos = per_sample_cos(pred, s["target"])
            self.last[split] = cos
            out.update(gain_metrics(split, cos, s["baselines"], s["article_id"], seed=self.seed))
        return out

    def arrays(self, epoch: int) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {"epoch": np.asarray(epoch, np.int64)}
        for split, s in self.splits.items():
            if split not in self.last:
                continue
            out[f"{split}/article_id"], out[f"{split}/row"] = s["article_id"], s["row"]
            out[f"{split}/model"] = self.last[split].astype(np.float32)
            for b, cos in s["baselines"].items():
                out[f"{split}/{b}"] = cos.astype(np.float32)
        return out

    def save(self, path: str | Path, epoch: int) -> None:
        buf = io.BytesIO()
        np.savez(buf, **self.arrays(epoch))
        with atomic_path(path) as tmp:
            tmp.write_bytes(buf.getvalue())


def load_samples(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """{split: {"article_id", "row", "model", <baseline>...}} from an eval_samples.npz."""
    out: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path, allow_pickle=False) as z:
        for key in z.files:
            if "/" in key:
                split, name = key.split("/", 1)
                out.setdefault(split, {})[name] = z[key]
    return out
