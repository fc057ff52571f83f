"""Metric series from a run's records for the Runs and Train screens: no Textual here, so it is
tested on its own. Listing and reading run folders is lvm_core.run_index (shared with `runs ls`)."""

from __future__ import annotations

import math
from typing import Any


def curves(records: list[dict[str, Any]], *, x_key: str = "step") -> dict[str, tuple[list[float], list[float]]]:
    """metric name -> (x, y) over the records that carry a `metrics` dict (StepLogged, EvalDone...)."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for rec in records:
        metrics = rec.get("metrics")
        x = rec.get(x_key)
        if not isinstance(metrics, dict) or not isinstance(x, (int, float)):
            continue
        for name, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                xs, ys = out.setdefault(name, ([], []))
                xs.append(float(x))
                ys.append(float(value))
    return out


#: record kinds that carry metrics, and the x each is drawn against
METRIC_KINDS = {"EvalDone": "epoch", "StepLogged": "step", "PluginMetrics": "epoch"}


def metric_names(records: list[dict[str, Any]]) -> list[str]:
    """Every numeric metric the records carry (val/..., loss/..., plugin/<plugin>/<name>), sorted
    with the evaluation metrics first, then losses, then plugins' own."""
    names = {k for r in records if r.get("kind") in METRIC_KINDS for k, v in (r.get("metrics") or {}).items()
             if isinstance(v, (int, float)) and not isinstance(v, bool)}
    order = {"val": 0, "ood": 1, "loss": 2, "plugin": 4}
    return sorted(names, key=lambda k: (order.get(k.split("/")[0], 3), k))


def metric_series(records: list[dict[str, Any]], metric: str) -> tuple[str, list[float], list[float]]:
    """(x name, xs, ys) of one metric: by epoch from evaluations and plugin lines (by step when
    a plugin line has no epoch), by step from step lines. Non-finite values are left out."""
    for kind, x_key in METRIC_KINDS.items():
        recs = [r for r in records if r.get("kind") == kind and metric in (r.get("metrics") or {})]
        if not recs:
            continue
        if kind == "PluginMetrics" and any(r.get("epoch") is None for r in recs):
            x_key = "step"
        xs, ys = curves(recs, x_key=x_key).get(metric, ([], []))
        return x_key, xs, ys
    return "epoch", [], []
