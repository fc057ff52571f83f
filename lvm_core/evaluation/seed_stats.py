"""Numbers across seeds: mean +- sd of each metric over a seed group's runs, and the paired
bootstrap interval over articles of the model's gain over each baseline, pooled over the runs.

Why: one seed's "+0.006 over the context mean" can be the split's luck. A group's runs (a seed
group from `--seeds`, or any runs whose plans differ only in their seeds) are summarised as
mean +- sd across seeds, and each gain gets one interval: every run's per-sample cosines
(eval_samples.npz, lvm_core/evaluation/paired_eval.py) are pooled and whole articles resampled, an article
seen by several runs counting as one cluster. A gain is marked *within noise* when that interval
contains 0 or the seeds disagree on its sign.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .bootstrap import paired_intervals
from .paired_eval import SAMPLES_FILE, load_samples

GROUP_JSON = "group.json"
SCHEMA = "lvm-workbench/seed-group"
#: metrics summarised across seeds (those a run logged)
GROUP_METRICS = ("val/cos", "val/margin_vs_last", "val/R@5_no_context", "ood/cos", "ood/margin_vs_last",
                 "ood/R@5_no_context")
BASELINES = ("copy_last", "context_mean", "ridge", "frame_weights")
#: plan keys that may differ inside a group (flat names, lvm_core.evaluation.compare.flat_plan)
SEED_KEYS = ("name", "seed", "data.split.seed")


def is_group(path: str | Path) -> bool:
    return (Path(path) / GROUP_JSON).is_file()


def group_members(path: str | Path) -> list[Path]:
    """The member run directories of a seed group that exist, in seed order."""
    doc = json.loads((Path(path) / GROUP_JSON).read_text(encoding="utf-8"))
    return [Path(path) / r for r in doc.get("runs", []) if (Path(path) / r / "run.json").is_file()]


def mean_sd(values: Sequence[float]) -> dict[str, Any]:
    """{"mean", "sd" (ddof 1; 0 for one value), "n", "values"} of the finite values."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if len(v) == 0:
        return {"mean": None, "sd": None, "n": 0, "values": []}
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v)),
            "values": [float(x) for x in v]}


def pooled_gain(run_dirs: Sequence[str | Path], split: str, baseline: str, *, seed: int = 0) -> dict[str, Any] | None:
    """The paired interval of mean cos(model) - cos(baseline) over every run's last-evaluation
    samples pooled; None when a run has no eval_samples.npz or lacks the split or baseline."""
    diffs, groups = [], []
    for d in run_dirs:
        p = Path(d) / SAMPLES_FILE
        if not p.is_file():
            return None
        s = load_samples(p).get(split)
        if s is None or baseline not in s:
            return None
        diffs.append(s["model"].astype(np.float64) - s[baseline].astype(np.float64))
        groups.append(s["article_id"])
    iv = paired_intervals(np.concatenate(diffs), np.concatenate(groups), seed=seed)[0]
    return {"mean": iv.mean, "lo": iv.lo, "hi": iv.hi, "samples": iv.n_samples, "articles": iv.n_articles}


def group_stats(name: str, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The statistics of one group of run rows (lvm_core.evaluation.compare.run_row):

    {"group", "runs", "seeds", "metrics": {metric: mean_sd},
     "baselines": {split: {baseline: mean_sd of its cos}},
     "gains": {split: {baseline: {"mean", "sd", "lo", "hi", "samples", "articles", "seeds_above",
                                  "n", "within_noise"}}}}
    """
    paths = [r["path"] for r in rows]
    out: dict[str, Any] = {"group": name, "runs": [r["run"] for r in rows],
                           "seeds": [(r.get("resolved") or {}).get("seed") for r in rows],
                           "metrics": {}, "baselines": {}, "gains": {}}
    for m in GROUP_METRICS:
        if any(r.get(m) is not None for r in rows):
            out["metrics"][m] = mean_sd([r.get(m) for r in rows])
    for split in ("val", "ood"):
        for b in BASELINES:
            per_run = [r.get(f"{split}/gain/{b}") for r in rows]
            if all(v is None for v in per_run) and all(r.get(f"{split}/{b}/cos") is None for r in rows):
                continue
            out["baselines"].setdefault(split, {})[b] = mean_sd([r.get(f"{split}/{b}/cos") for r in rows])
            spread = mean_sd(per_run)
            pooled = pooled_gain(paths, split, b)
            signs = {math.copysign(1.0, v) for v in spread["values"] if v != 0.0}
            g: dict[str, Any] = {"mean": spread["mean"], "sd": spread["sd"], "n": spread["n"],
                                 "seeds_above": sum(1 for v in spread["values"] if v > 0)}
            if pooled is not None:
                g.update(mean=pooled["mean"], lo=pooled["lo"], hi=pooled["hi"], samples=pooled["samples"],
                         articles=pooled["articles"])
            lo, hi = g.get("lo"), g.get("hi")
            no_interval = lo is None or not (math.isfinite(lo) and math.isfinite(hi))
            g["within_noise"] = bool(no_interval or (lo <= 0.0 <= hi) or len(signs) > 1)
            out["gains"].setdefault(split, {})[b] = g
    return out
