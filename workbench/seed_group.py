"""Seed groups: one plan run once per seed into sibling run directories, so every number can be
read with its spread across seeds (`runs compare GROUP`).

    lvm-workbench --run plan.toml --seeds 0,1,2 [--seed-splits]
    # or in the plan:  seeds = [0, 1, 2]   seed_splits = true

Layout: `runs/<name>-<UTC time>/` holds `group.json` and one complete run directory per seed,
`seed0/`, `seed1/`, ... Each member's plan.toml is the plan with that seed (and, with
seed_splits, that split seed) and no `seeds` key, so `--resume GROUP/seed1` continues it alone.

Why both kinds of seed: a model seed moves the initial weights, the batch order and the
evaluation sample; a split seed moves which articles are validated on, and with a few dozen
validation articles that moves the gap between a model and a baseline more than the model
seed does (docs/results.md).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Sequence

from lvm_core.atomic import write_json
from lvm_core.errors import InputError
from lvm_core.evaluation.seed_stats import GROUP_JSON, SCHEMA
from lvm_core.rundir import claim_run_dir, iso_time, new_run_dir

from .plan import Plan, plan_to_dict
from .run_prep import DEFAULT_RUNS_ROOT


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]; bad input is one clear error."""
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError("--seeds", f"expected comma-separated integers like 0,1,2, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise InputError("--seeds", f"expected distinct comma-separated integers like 0,1,2, got {text!r}")
    return seeds


def seed_plan(plan: Plan, seed: int, seed_splits: bool) -> Plan:
    """The plan of one member: its seed (and split seed), named <name>-s<seed>, no seeds key.
    `text` is dropped so the member's plan.toml is written from the plan itself, with its seed."""
    data = plan.data
    if seed_splits:
        data = dataclasses.replace(data, split=dataclasses.replace(data.split, seed=seed))
    return dataclasses.replace(plan, seed=seed, name=f"{plan.name}-s{seed}", data=data, seeds=[], seed_splits=False,
                               text=None)


def member_dirs(group: Path, seeds: Sequence[int]) -> list[Path]:
    return [group / f"seed{s}" for s in seeds]


def new_group(plan: Plan, seeds: Sequence[int], seed_splits: bool, run_dir: str | Path | None,
              runs_root: str | Path | None = None) -> Path:
    """Claim the group directory and write group.json (status "running")."""
    group = claim_run_dir(run_dir) if run_dir else new_run_dir(runs_root or DEFAULT_RUNS_ROOT, plan.name)
    write_group(group, plan, seeds, seed_splits, status="running")
    return group


def write_group(group: Path, plan: Plan, seeds: Sequence[int], seed_splits: bool, status: str,
                results: dict[str, Any] | None = None) -> None:
    write_json(group / GROUP_JSON, {
        "schema": SCHEMA, "schema_version": 1, "name": plan.name, "status": status, "updated": iso_time(time.time()),
        "seeds": list(seeds), "seed_splits": seed_splits,
        "runs": [d.name for d in member_dirs(group, seeds)],
        "results": results or {}, "plan": plan_to_dict(dataclasses.replace(plan, seeds=[], seed_splits=False)),
    })
