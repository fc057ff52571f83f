"""Writing a plan back: TOML that `--run` accepts unchanged and that loads back to an equal Plan.

Every default is explicit in what is written (None values left out), with the schema's key order
for the fixed tables, so a saved plan says everything the run used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import tomli_w

from . import schema
from .plan import Plan
from .schema import Section


def _table(obj: Any, sec: Section) -> dict[str, Any]:
    """A dataclass table (train, eval, gates) as its schema keys, in the schema's order."""
    values = dataclasses.asdict(obj)
    return {k.name: values[k.name] for k in sec.keys}


def plan_to_dict(plan: Plan, *, relative_to: Path | None = None) -> dict[str, Any]:
    """The plan as TOML-ready data, every default explicit (None values left out).

    Paths are absolute, or relative to `relative_to` when given (where the file will live)."""

    def path_str(p: Path) -> str:
        if relative_to is None:
            return str(p)
        try:
            return str(p.relative_to(Path(relative_to).resolve()))
        except ValueError:
            return os.path.relpath(p, Path(relative_to).resolve())

    split = {k: v for k, v in dataclasses.asdict(plan.data.split).items() if v is not None}
    data = {"store": path_str(plan.data.store), "context_len": plan.data.context_len, "split": split}
    if plan.data.ood is not None:
        data["ood"] = path_str(plan.data.ood)
    if plan.data.filters:
        data["filter"] = [f.to_dict() for f in plan.data.filters]
    losses = []
    for loss in plan.losses:
        entry: dict[str, Any] = {"name": loss.name, "weight": loss.weight, "params": dict(loss.params)}
        if loss.schedule is not None:
            entry["schedule"] = loss.schedule.to_dict()
        if loss.control is not None:
            entry["control"] = dict(loss.control)
        losses.append(entry)
    out: dict[str, Any] = {
        "name": plan.name, "seed": plan.seed, "data": data,
        "model": {"arch": plan.model.arch, "params": dict(plan.model.params)},
        "loss": losses,
        "train": _table(plan.train, schema.TRAIN), "eval": _table(plan.eval, schema.EVAL),
    }
    if plan.gates is not None:
        out["gates"] = dataclasses.asdict(plan.gates)
    out["plugins"] = {"modules": list(plan.plugins.modules), "tensorboard": plan.plugins.tensorboard}
    if plan.tripwires:
        out["tripwire"] = [t.to_dict() for t in plan.tripwires]
    if plan.seeds:
        out["seeds"], out["seed_splits"] = list(plan.seeds), plan.seed_splits
    return _drop_none(out)


def _drop_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_none(v) for v in obj]
    return obj


def plan_to_toml(plan: Plan, *, relative_to: Path | None = None) -> str:
    """A TOML plan that `--run` accepts unchanged and that loads back to an equal Plan."""
    return tomli_w.dumps(plan_to_dict(plan, relative_to=relative_to))


def plan_sha256(plan: Plan) -> str:
    return hashlib.sha256(json.dumps(plan_to_dict(plan), sort_keys=True).encode()).hexdigest()
