"""The plan schema: every key of a plan file with its type, default, range, unit and help.

This is the one place a plan key is declared. The loader (load.py) checks a plan against it, the
writer (save.py) writes the tables in its order, the TUI's Setup form builds its fields from it,
and docs/plan.md is generated from it (`lvm-workbench plan-docs`). Keys are `lvm_core.params.Param`
declarations, the same type a plugin uses for its parameters, so a plan key and a plugin parameter
obey one set of rules (types, finiteness, bounds, choices).

Why declarations and not pydantic models: the plan mixes fixed keys with tables whose keys only
plugins know at run time (model and loss params, gate thresholds), every problem must be reported
at once with its TOML line, and the same declaration must drive a form and a reference page. One
small `Param` type does all four; pydantic would add a second type system beside it.

`lvm_core.training.loop.TrainConfig` and `EvalConfig` keep their own defaults (lvm_core cannot import
workbench); tests/test_plan_schema.py fails when they and this schema disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lvm_core.evaluation.battery import DEFAULT_GATES
from lvm_core.params import MAX_EPOCHS, Param
from lvm_core.training.schedules import LR_SCHEDULES, MAX_WEIGHT

MAX_SEED = 2**32 - 1  # numpy's seed range
MAX_STEPS = 10**9
MAX_BATCH = 2**20
MODES = ("max", "min")


@dataclass(frozen=True)
class Section:
    """One table of a plan: its scalar keys and the names of the tables nested in it."""

    path: str  # "train", "data.split", "loss" ("" = the top level)
    title: str  # the heading in docs/plan.md and the Setup form
    help: str
    keys: tuple[Param, ...]
    tables: tuple[str, ...] = ()  # nested tables, checked by their own section or module
    array: bool = False  # [[loss]]: an array of tables

    @property
    def known(self) -> tuple[str, ...]:
        """Every key this table may hold, in the order a plan file writes them."""
        return tuple(k.name for k in self.keys) + self.tables

    def key(self, name: str) -> Param:
        return next(k for k in self.keys if k.name == name)

    def defaults(self) -> dict[str, Any]:
        return {k.name: fresh(k.default) for k in self.keys}


def _int(name: str, default: int, help: str, *, min: int, max: int, unit: str = "") -> Param:
    return Param(name, "int", default, help, min=min, max=max, unit=unit)


def _seed(name: str, help: str) -> Param:
    return _int(name, 0, help, min=0, max=MAX_SEED)


TOP = Section("", "Run", "The top level of the plan: the run's name and seeds.", (
    Param("name", "str", None, "names the run directory (runs/<name>-<UTC time>); letters, digits, '.', '_' "
                               "or '-'; default: the plan file's name"),
    _seed("seed", "seeds torch, numpy and the evaluation samples"),
    Param("seeds", "list", [], "a seed group: one run per seed, each in its own directory (workbench/seed_group.py)"),
    Param("seed_splits", "bool", False, "in a seed group, each seed also seeds the train/val split"),
), tables=("data", "model", "loss", "train", "eval", "gates", "plugins", "tripwire"))

DATA = Section("data", "Data", "The article store to train on, and how windows are made from it.", (
    Param("store", "str", None, "the article store directory (required; relative paths resolve against the plan "
                                "file's folder)"),
    Param("ood", "str", None, "a second store evaluated whole as the 'ood' split (out-of-domain)"),
    _int("context_len", 5, "context chunks before the target chunk", min=1, max=512, unit="chunks"),
), tables=("split", "filter"))

SPLIT = Section("data.split", "Data split", "Splits are by article, made once and written into the run "
                "(split.json). Give seeded fractions, or inclusive article-id ranges.", (
    Param("fractions", "table", {"train": 0.8, "val": 0.2}, "part name -> fraction of articles; they sum to 1, "
                                                              "with at least 'train' and 'val'"),
    Param("ranges", "table", None, "part name -> list of inclusive [first, last] article-id ranges "
                                   "(instead of fractions)"),
    Param("rest", "str", "train", "with ranges: the part that gets the articles in no range (\"\" = drop them)"),
    _seed("seed", "seeds the fractions split"),
))

MODEL = Section("model", "Model", "The network, by the name a plugin registered (`lvm-workbench plugins`).", (
    Param("arch", "str", None, "a registered model architecture (required)"),
    Param("params", "table", {}, "the architecture's declared parameters; the rest keep their defaults"),
))

LOSS = Section("loss", "Losses", "One [[loss]] table per strategy; the trainer sums the weighted terms.", (
    Param("name", "str", None, "a registered loss strategy (required; each at most once)"),
    Param("weight", "float", 1.0, "the term's weight (0 = only log it)", min=0.0, max=MAX_WEIGHT),
    Param("params", "table", {}, "the strategy's declared parameters"),
    Param("schedule", "table", None, "the weight by epoch: { kind = \"step\", epoch = 3, before = 0.0, "
                                     "after = 0.5 } or kind = \"linear\" (docs/strategies.md)"),
    Param("control", "table", None, "a controller that sets the weight to keep a share of the total loss: "
                                    "{ target_share = 0.2, max = 0.05 } (docs/strategies.md)"),
), array=True)

TRAIN = Section("train", "Training", "The optimizer, schedule, checkpoint selection and early stop.", (
    _int("epochs", 6, "passes over the train windows", min=1, max=MAX_EPOCHS, unit="epochs"),
    _int("batch_size", 64, "windows per micro-batch; one optimizer step sees batch_size x grad_accum",
         min=1, max=MAX_BATCH, unit="windows"),
    Param("lr", "float", 5e-4, "peak learning rate (AdamW)", gt=0.0, max=10.0),
    Param("weight_decay", "float", 0.01, "AdamW weight decay", min=0.0, max=10.0),
    Param("lr_schedule", "str", "cosine", "cosine, constant, or plateau (plateau watches select_metric)",
          choices=LR_SCHEDULES),
    _int("warmup_steps", 50, "linear warmup before the schedule", min=0, max=MAX_STEPS, unit="steps"),
    Param("min_lr", "float", 0.0, "the rate the cosine decays to, and the plateau floor", min=0.0, max=10.0),
    Param("plateau_factor", "float", 0.5, "plateau: multiply the rate by this", gt=0.0, lt=1.0),
    _int("plateau_patience", 2, "plateau: evaluations without improvement before lowering", min=0,
         max=MAX_EPOCHS, unit="evaluations"),
    Param("grad_clip", "float", 1.0, "clip the gradient norm to this (0 = off)", min=0.0, max=1e6),
    _int("grad_accum", 1, "micro-batches per optimizer step", min=1, max=65536),
    Param("device", "str", "auto", "auto, cpu, cuda, cuda:N or mps", pattern=r"auto|cpu|mps|cuda(:\d+)?"),
    _int("threads", 0, "torch CPU threads (0 = torch's default)", min=0, max=4096),
    Param("bf16", "bool", False, "bf16 autocast on CUDA"),
    Param("deterministic", "bool", False, "deterministic torch algorithms (slower)"),
    Param("compile", "bool", False, "torch.compile the model and loss terms (for GPUs)"),
    _int("log_every", 20, "steps between logged train metrics", min=1, max=MAX_STEPS, unit="steps"),
    Param("select_metric", "str", "val/cos", "the metric that picks the `best` checkpoint (docs/5cat.md)"),
    Param("select_mode", "str", "max", "keep the highest (max) or lowest (min) select_metric", choices=MODES),
    Param("early_stop_metric", "str", "", "stop when this metric stops improving (\"\" = off)"),
    Param("early_stop_mode", "str", "max", "max or min, as select_mode", choices=MODES),
    _int("early_stop_patience", 3, "evaluations without improvement before stopping", min=1, max=MAX_EPOCHS,
         unit="evaluations"),
    Param("collapse_drop", "float", 0.05, "alert when val/cos falls by more than this in one evaluation (0 = off)",
          min=0.0, max=2.0),
))

EVAL = Section("eval", "Validation", "The validation pass after each epoch.", (
    _int("max_samples", 2000, "windows per split, a seeded sample spread across articles", min=1, max=10**8,
         unit="windows"),
    _int("every", 1, "epochs between evaluations (the last epoch is always evaluated)", min=1, max=MAX_EPOCHS,
         unit="epochs"),
    _int("batch_size", 1024, "windows per forward pass", min=1, max=MAX_BATCH, unit="windows"),
))

GATES = Section("gates", "Gates", "The 5CAT gate battery (docs/5cat.md); without this table no gates run.", (
    Param("use", "list", list(DEFAULT_GATES), "registered gate names, run in this order"),
    _int("every", 0, "epochs between battery runs (0 = only at the end)", min=0, max=MAX_EPOCHS, unit="epochs"),
    _int("samples", 1000, "samples per split the battery draws", min=1, max=10**7, unit="samples"),
    _int("horizon", 5, "rollout steps for the horizon gate", min=1, max=512, unit="steps"),
    Param("required", "bool", False, "a failing battery makes the headless run exit 3"),
    Param("thresholds", "table", {}, "\"<gate>.<param>\" = value: any declared gate parameter"),
))

PLUGINS = Section("plugins", "Plugins", "Local plugin code and optional sinks.", (
    Param("modules", "list", [], "importable module names (the plan's folder is searched) registering plugins"),
    Param("tensorboard", "bool", False, "write TensorBoard event files (needs the tensorboard extra)"),
))

SECTIONS: tuple[Section, ...] = (TOP, DATA, SPLIT, MODEL, LOSS, TRAIN, EVAL, GATES, PLUGINS)

#: tables declared and checked in lvm_core (their keys are listed in docs/plan.md from there)
DELEGATED = {
    "data.filter": ("lvm_core/training/curriculum.py", "docs/guardrails.md", "curricula: keep a fraction of the windows "
                                                                     "by a score, for some epochs"),
    "tripwire": ("lvm_core/training/tripwires.py", "docs/guardrails.md", "a metric rule checked after each evaluation: "
                                                                "alert, stop or roll back"),
}


def section(path: str) -> Section:
    """The section of `path` ("train", "data.split", "" for the top level)."""
    return next(s for s in SECTIONS if s.path == path)


def default(path: str, name: str) -> Any:
    """The declared default of one key (a fresh copy for tables and lists)."""
    return fresh(section(path).key(name).default)


def fresh(value: Any) -> Any:
    """A copy of a default table or list, so no plan shares (and mutates) the declared one."""
    return type(value)(value) if isinstance(value, (dict, list)) else value
