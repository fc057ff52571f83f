"""The validated plan as dataclasses: what load.py returns and save.py writes back.

Every default here is read from the schema (schema.py), so a default is declared once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lvm_core.training.curriculum import SampleFilter
from lvm_core.training.loop import EvalConfig, TrainConfig
from lvm_core.training.schedules import WeightSchedule
from lvm_core.training.tripwires import Tripwire

from .schema import default


@dataclass
class SplitPlan:
    """[data.split]: seeded fractions, or inclusive article-id ranges with a part for the rest."""

    fractions: dict[str, float] | None = None
    ranges: dict[str, list[list[int]]] | None = None
    rest: str = default("data.split", "rest")  # with ranges: the part of articles in no range ("" = drop them)
    seed: int = default("data.split", "seed")


@dataclass
class DataPlan:
    store: Path
    ood: Path | None = None
    context_len: int = default("data", "context_len")
    split: SplitPlan = field(default_factory=lambda: SplitPlan(fractions=default("data.split", "fractions")))
    filters: list[SampleFilter] = field(default_factory=list)  # [[data.filter]]: curricula (lvm_core/training/curriculum.py)


@dataclass
class ModelPlan:
    arch: str
    params: dict[str, Any] = field(default_factory=dict)  # every declared param, defaults filled in


@dataclass
class LossPlan:
    name: str
    weight: float = default("loss", "weight")
    params: dict[str, Any] = field(default_factory=dict)
    schedule: WeightSchedule | None = None
    control: dict[str, Any] | None = None  # a ShareController spec (lvm_core/training/weight_control.py)


@dataclass
class GatesPlan:
    every: int = default("gates", "every")  # epochs between battery runs; 0 = only at the end
    samples: int = default("gates", "samples")
    horizon: int = default("gates", "horizon")
    required: bool = default("gates", "required")  # a failing battery makes the headless run exit 3
    thresholds: dict[str, float] = field(default_factory=lambda: default("gates", "thresholds"))
    use: list[str] = field(default_factory=lambda: default("gates", "use"))  # registered gate names, in order


@dataclass
class PluginsPlan:
    modules: list[str] = field(default_factory=list)
    tensorboard: bool = default("plugins", "tensorboard")  # the built-in TensorBoard sink; needs the extra


@dataclass
class Plan:
    """A validated plan: every default filled in, paths absolute."""

    name: str
    seed: int
    data: DataPlan
    model: ModelPlan
    losses: list[LossPlan]
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    gates: GatesPlan | None = None
    plugins: PluginsPlan = field(default_factory=PluginsPlan)
    tripwires: list[Tripwire] = field(default_factory=list)  # [[tripwire]] (lvm_core/training/tripwires.py)
    seeds: list[int] = field(default_factory=list)  # a seed group: one run per seed (workbench/seed_group.py)
    seed_splits: bool = False  # in a seed group, each seed also seeds the split
    source: str = field(default="plan", compare=False)  # the file it came from, for messages
    text: str | None = field(default=None, compare=False, repr=False)  # the TOML as given
    base_dir: Path = field(default_factory=Path.cwd, compare=False)
    notes: list[str] = field(default_factory=list, compare=False)  # e.g. an old metric name read as its new one
