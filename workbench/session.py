"""Plans and runs: load and validate a TOML plan, write it back, and prepare a run from it.

    plan = load_plan("examples/quickstart.toml")        # every problem reported at once
    setup = prepare_run(plan, host)                       # run directory, stores, model, losses
    result = lvm_core.train.train(setup, sinks, stop_event)

The same calls serve the headless CLI (workbench/headless.py) and the TUI (from a worker thread:
nothing here touches a UI or global state beyond torch's seed and thread count).

Validation gathers every problem before raising lvm_core.errors.InputErrors: unknown keys (with a
"did you mean"), wrong types, values out of range, unknown plugin names (with the known ones),
plugin parameters against their declared Params, missing stores, and metric names that the run
would never log. Each problem names the key path (``loss[1].params.margin``) and, for plans read
from a file, its line.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib.util
import json
import math
import os
import platform
import re
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import tomli
import tomli_w

import lvm_core
from lvm_core import distributed
from lvm_core.curriculum import SampleFilter, build_subsets, epoch_index, filter_from_dict
from lvm_core.device import configure_threads, seed_everything, select_device
from lvm_core.errors import InputError, InputErrors
from lvm_core.evaluation import DEFAULT_GATES, resolve_gates
from lvm_core.metric_names import current_name
from lvm_core.events import CheckpointSaved, EpochEnded, EvalDone, Event, RunEnded, RunStarted
from lvm_core.params import resolve_params
from lvm_core.atomic import remove_temporaries
from lvm_core.checkpointer import Checkpointer
from lvm_core.rundir import METRICS, RunDir, claim_run_dir, finish_interrupted_end, iso_time, new_run_dir
from lvm_core.runlock import RunLock
from lvm_core.schedules import LR_SCHEDULES, WeightSchedule, weight_schedule_from_dict
from lvm_core.store import ArticleStore
from lvm_core.train import EvalConfig, EvalSet, GateOutcome, LossTerm, TrainConfig, TrainSetup, metric_names
from lvm_core.weight_control import controller_from_spec
from lvm_core.tripwires import Tripwire, tripwire_from_dict
from lvm_core.windows import Split, Windows, make_windows, split_by_fractions, split_by_ranges

from .checkpoint_plugins import checkpoint_plugins
from .plugin_guard import check_model, gate_lookup, guard_call, guard_loss, origin
from .plugin_host import PluginHost, load_plugins

DEFAULT_RUNS_ROOT = Path("runs")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# ---- the plan --------------------------------------------------------------------------------

@dataclass
class SplitPlan:
    """[data.split]: seeded fractions, or inclusive article-id ranges with a part for the rest."""

    fractions: dict[str, float] | None = None
    ranges: dict[str, list[list[int]]] | None = None
    rest: str = "train"  # with ranges: the part of articles in no range ("" = drop them)
    seed: int = 0


@dataclass
class DataPlan:
    store: Path
    ood: Path | None = None
    context_len: int = 5
    split: SplitPlan = field(default_factory=lambda: SplitPlan(fractions={"train": 0.8, "val": 0.2}))
    filters: list[SampleFilter] = field(default_factory=list)  # [[data.filter]]: curricula (lvm_core/curriculum.py)


@dataclass
class ModelPlan:
    arch: str
    params: dict[str, Any] = field(default_factory=dict)  # every declared param, defaults filled in


@dataclass
class LossPlan:
    name: str
    weight: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)
    schedule: WeightSchedule | None = None
    control: dict[str, Any] | None = None  # a ShareController spec (lvm_core/weight_control.py)


@dataclass
class GatesPlan:
    every: int = 0  # epochs between battery runs; 0 = only at the end
    samples: int = 1000
    horizon: int = 5
    required: bool = False  # a failing battery makes the headless run exit 3
    thresholds: dict[str, float] = field(default_factory=dict)  # "<gate>.<param>": any declared Param
    use: list[str] = field(default_factory=lambda: list(DEFAULT_GATES))  # registered gate names, run in order


@dataclass
class PluginsPlan:
    modules: list[str] = field(default_factory=list)
    tensorboard: bool = False  # the built-in TensorBoard sink (plugins/tensorboard.py); needs the extra


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
    tripwires: list[Tripwire] = field(default_factory=list)  # [[tripwire]] (lvm_core/tripwires.py)
    seeds: list[int] = field(default_factory=list)  # a seed group: one run per seed (workbench/seed_group.py)
    seed_splits: bool = False  # in a seed group, each seed also seeds the split
    source: str = field(default="plan", compare=False)  # the file it came from, for messages
    text: str | None = field(default=None, compare=False, repr=False)  # the TOML as given
    base_dir: Path = field(default_factory=Path.cwd, compare=False)
    notes: list[str] = field(default_factory=list, compare=False)  # e.g. an old metric name read as its new one


TOP_KEYS = ("name", "seed", "seeds", "seed_splits", "data", "model", "loss", "train", "eval", "gates", "plugins", "tripwire")
DATA_KEYS = ("store", "ood", "context_len", "split", "filter")
SPLIT_KEYS = ("fractions", "ranges", "rest", "seed")
MODEL_KEYS = ("arch", "params")
LOSS_KEYS = ("name", "weight", "params", "schedule", "control")
GATES_KEYS = ("use", "every", "samples", "horizon", "required", "thresholds")
PLUGINS_KEYS = ("modules", "tensorboard")


# ---- where a key is in the file --------------------------------------------------------------

def toml_key_lines(text: str) -> dict[str, int]:
    """Map key paths (``train.lr``, ``loss[1].params.margin``) to the 1-based line that sets them.

    TOML parsers keep no positions, so this scans the text: table headers, array-of-tables
    headers (counted), dotted keys and the keys of inline tables. Multi-line arrays and strings
    are skipped. Good enough to point a person at the right line.
    """
    lines: dict[str, int] = {}
    counts: dict[str, int] = {}
    prefix = ""
    depth = 0  # open [ or { of a value spanning lines
    in_ml_string: str | None = None
    key_re = re.compile(r'\s*((?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\'))*)\s*=')

    def parts(dotted: str) -> list[str]:
        return [p.strip().strip("\"'") for p in re.split(r"\.(?=(?:[^\"']*[\"'][^\"']*[\"'])*[^\"']*$)", dotted)]

    def table_path(names: list[str]) -> str:
        out = ""
        for n in names:
            out = f"{out}.{n}" if out else n
            if out in counts:
                out = f"{out}[{counts[out] - 1}]"
        return out

    for no, raw in enumerate(text.splitlines(), 1):
        line = raw
        if in_ml_string:
            if in_ml_string in line:
                line = line.split(in_ml_string, 1)[1]
                in_ml_string = None
            else:
                continue
        code = _strip_comment(line)
        stripped = code.strip()
        if depth == 0 and stripped.startswith("[["):
            names = parts(stripped[2:stripped.index("]]")])
            base = table_path(names[:-1])
            key = f"{base}.{names[-1]}" if base else names[-1]
            counts[key] = counts.get(key, 0) + 1
            prefix = f"{key}[{counts[key] - 1}]"
            lines.setdefault(key, no)
            lines[prefix] = no
            continue
        if depth == 0 and stripped.startswith("["):
            prefix = table_path(parts(stripped[1:stripped.index("]")]))
            lines.setdefault(prefix, no)
            continue
        if depth == 0:
            m = key_re.match(code)
            if not m:
                continue
            path = ".".join(filter(None, [prefix, *parts(m.group(1))]))
            lines.setdefault(path, no)
            value = code[m.end():]
            for q in ('"""', "'''"):
                if value.count(q) == 1:
                    in_ml_string = q
            _inline_keys(value, path, no, lines, key_re, parts)
            depth = value.count("[") + value.count("{") - value.count("]") - value.count("}")
        else:
            depth += code.count("[") + code.count("{") - code.count("]") - code.count("}")
        depth = max(depth, 0)
    return lines


def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def _inline_keys(value: str, path: str, no: int, lines: dict[str, int], key_re: re.Pattern[str], parts: Any) -> None:
    """Keys inside `{ ... }` on one line, nested ones included."""
    stack = [path]
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "{":
            m = key_re.match(value, i + 1)
            if m:
                stack.append(".".join([stack[-1], *parts(m.group(1))]))
                lines.setdefault(stack[-1], no)
                i = m.end()
                continue
        elif ch == "," and len(stack) > 1:
            m = key_re.match(value, i + 1)
            if m:
                stack[-1] = ".".join([stack[-2], *parts(m.group(1))])
                lines.setdefault(stack[-1], no)
                i = m.end()
                continue
        elif ch == "}" and len(stack) > 1:
            stack.pop()
        i += 1


# ---- validation ------------------------------------------------------------------------------

class _Checker:
    """Collects problems with their key path and line."""

    def __init__(self, source: str, lines: Mapping[str, int]) -> None:
        self.source, self.lines = source, lines
        self.errors: list[InputError] = []

    def where(self, path: str) -> str:
        """'line N: path' with the line of the key, or of its nearest enclosing table."""
        probe = path
        while probe:
            if probe in self.lines:
                return f"line {self.lines[probe]}: {path}"
            probe = probe[:probe.rindex("[")] if probe.endswith("]") else probe.rpartition(".")[0]
        return path

    def add(self, path: str, message: str) -> None:
        self.errors.append(InputError(self.source, message, self.where(path)))

    def take(self, errors: list[InputError]) -> None:
        for e in errors:
            self.add(e.where or "", e.message)

    def table(self, obj: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        """`obj` as a table with only `allowed` keys (unknown ones reported with a suggestion)."""
        if obj is None:
            return {}
        if not isinstance(obj, dict):
            self.add(path, f"expected a table, got {_kind(obj)}")
            return {}
        for key in obj:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self.add(f"{path}.{key}" if path else key, f"unknown key (known: {', '.join(allowed)}){hint}")
        return obj

    def typed(self, obj: Mapping[str, Any], key: str, path: str, kind: type | tuple[type, ...], default: Any) -> Any:
        """obj[key] checked against `kind` (ints are accepted as floats, booleans never as numbers)."""
        if key not in obj:
            return default
        v = obj[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(v, kinds) and not (isinstance(v, bool) and bool not in kinds)
        if not ok and float in kinds and isinstance(v, int) and not isinstance(v, bool):
            return float(v)
        if not ok:
            self.add(path, f"expected {_type_name(kinds)}, got {_kind(v)}")
            return default
        return float(v) if kinds == (float,) else v

    def check(self, ok: bool, path: str, message: str) -> None:
        if not ok:
            self.add(path, message)


def _kind(v: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array", dict: "a table"}
    return f"{names.get(type(v), type(v).__name__)} {v!r}" if not isinstance(v, (dict, list)) else names[type(v)]


def _type_name(kinds: tuple[type, ...]) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "an array",
             dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


_FIELD_TYPES = {"int": int, "float": float, "str": str, "bool": bool}

#: (check, message) per [train] / [eval] field; checked only when the type is right
_TRAIN_RULES: dict[str, tuple[Any, str]] = {
    "epochs": (lambda v: v >= 1, "expected >= 1"),
    "batch_size": (lambda v: v >= 1, "expected >= 1"),
    "lr": (lambda v: v > 0, "expected > 0"),
    "weight_decay": (lambda v: v >= 0, "expected >= 0"),
    "lr_schedule": (lambda v: v in LR_SCHEDULES, f"expected one of {list(LR_SCHEDULES)}"),
    "warmup_steps": (lambda v: v >= 0, "expected >= 0"),
    "min_lr": (lambda v: v >= 0, "expected >= 0"),
    "plateau_factor": (lambda v: 0 < v < 1, "expected 0 < plateau_factor < 1"),
    "plateau_patience": (lambda v: v >= 0, "expected >= 0"),
    "grad_clip": (lambda v: v >= 0, "expected >= 0 (0 = off)"),
    "grad_accum": (lambda v: v >= 1, "expected >= 1"),
    "device": (lambda v: re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v) is not None, "expected auto, cpu, cuda, cuda:N or mps"),
    "threads": (lambda v: v >= 0, "expected >= 0 (0 = torch's default)"),
    "log_every": (lambda v: v >= 1, "expected >= 1"),
    "select_mode": (lambda v: v in ("max", "min"), "expected 'max' or 'min'"),
    "early_stop_mode": (lambda v: v in ("max", "min"), "expected 'max' or 'min'"),
    "early_stop_patience": (lambda v: v >= 1, "expected >= 1"),
    "collapse_drop": (lambda v: v >= 0, "expected >= 0 (0 = off)"),
}
_EVAL_RULES: dict[str, tuple[Any, str]] = {
    "max_samples": (lambda v: v >= 1, "expected >= 1"),
    "every": (lambda v: v >= 1, "expected >= 1"),
    "batch_size": (lambda v: v >= 1, "expected >= 1"),
}


def _dataclass_table(c: _Checker, obj: Any, path: str, cls: type, rules: Mapping[str, tuple[Any, str]]) -> Any:
    """A config dataclass from a table: unknown keys, types and rules checked field by field."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    table = c.table(obj, path, tuple(fields))
    values = {}
    for name, f in fields.items():
        n_errors = len(c.errors)
        v = c.typed(table, name, f"{path}.{name}", _FIELD_TYPES[str(f.type)], f.default)
        rule = rules.get(name)
        if name in table and len(c.errors) == n_errors and rule and not rule[0](v):
            c.add(f"{path}.{name}", f"{rule[1]}, got {v!r}")
            v = f.default
        values[name] = v
    return cls(**values)


def load_plan(path: str | Path, *, host: PluginHost | None = None) -> Plan:
    """Read and validate a plan file; relative paths in it resolve against its folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(str(path), "plan file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"cannot read the plan ({exc})") from None
    return plan_from_text(text, path.resolve().parent, source=str(path), host=host)


def plan_from_text(text: str, base_dir: str | Path, *, source: str = "plan", host: PluginHost | None = None) -> Plan:
    try:
        data = tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}" if getattr(exc, "lineno", None) else None
        raise InputError(source, f"not valid TOML: {getattr(exc, 'msg', str(exc))}", where) from None
    return plan_from_dict(data, base_dir, source=source, text=text, host=host)


def plan_from_dict(data: Mapping[str, Any], base_dir: str | Path, *, source: str = "plan", text: str | None = None,
                   host: PluginHost | None = None) -> Plan:
    """Validate a plan given as a dict (as parsed from TOML); raises InputErrors with every problem.

    Plugin names are checked against `host` (default: the built-ins, the installed plugins and
    the plan's own [plugins] modules).
    """
    base_dir = Path(base_dir).resolve()
    c = _Checker(source, toml_key_lines(text) if text else {})
    top = c.table(dict(data), "", TOP_KEYS)

    plugins_t = c.table(top.get("plugins"), "plugins", PLUGINS_KEYS)
    modules = c.typed(plugins_t, "modules", "plugins.modules", list, [])
    tensorboard = c.typed(plugins_t, "tensorboard", "plugins.tensorboard", bool, False)
    if tensorboard and importlib.util.find_spec("tensorboard") is None:
        c.add("plugins.tensorboard", "the TensorBoard sink needs the tensorboard package; install it with: "
                                     "pip install 'lvm-workbench[tensorboard]'")
    if any(not isinstance(m, str) for m in modules):
        c.add("plugins.modules", "expected an array of module names (strings)")
        modules = []
    if host is None:
        try:
            host = load_plugins(modules, plugin_paths=[base_dir])
        except InputError as exc:
            c.add("plugins.modules", exc.line())
            host = load_plugins()

    name = c.typed(top, "name", "name", str, Path(source).stem if source != "plan" else "run")
    if not NAME_RE.match(name):
        c.add("name", f"expected letters, digits, '.', '_' or '-' (it names the run directory), got {name!r}")
    seed = c.typed(top, "seed", "seed", int, 0)
    seeds = c.typed(top, "seeds", "seeds", list, [])
    if any(isinstance(x, bool) or not isinstance(x, int) for x in seeds) or len(set(seeds)) != len(seeds):
        c.add("seeds", f"expected an array of distinct integer seeds, e.g. [0, 1, 2], got {seeds!r}")
        seeds = []
    seed_splits = c.typed(top, "seed_splits", "seed_splits", bool, False)

    data_plan, parts = _data(c, top, base_dir)
    model = _model(c, top, host)
    losses = _losses(c, top, host)
    train = _dataclass_table(c, top.get("train"), "train", TrainConfig, _TRAIN_RULES)
    eval_cfg = _dataclass_table(c, top.get("eval"), "eval", EvalConfig, _EVAL_RULES)
    gates = _gates(c, top, host) if "gates" in top else None

    eval_splits = ["val"] + (["ood"] if data_plan is not None and (data_plan.ood or "ood" in parts) else [])
    known = metric_names(eval_splits, [l.name for l in losses], gates=gates is not None)
    notes: list[str] = []
    for key in ("select_metric", "early_stop_metric"):
        metric = getattr(train, key)
        if metric and current_name(metric) != metric:  # a plan (or a resumed run) from before the rename
            setattr(train, key, current_name(metric))
            notes.append(_renamed_note(f"train.{key}", metric))
            metric = getattr(train, key)
        if metric and not _metric_known(metric, known, [l.name for l in losses], gates is not None):
            close = difflib.get_close_matches(metric, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            c.add(f"train.{key}", f"{metric!r} is not a metric this run logs (e.g. val/cos, val/margin_vs_last, "
                                  f"val/R@5_no_context, loss, train/loss){hint}")
    for key, mode in (("select_metric", "select_mode"), ("early_stop_metric", "early_stop_mode")):
        metric = getattr(train, key)
        if metric.removeprefix("train/").startswith("loss") and "/stat/" not in metric:  # a loss: lower is better
            c.check(getattr(train, mode) == "min", f"train.{mode}",
                    f"{getattr(train, mode)!r} would keep the highest {metric}; set {mode} = \"min\"")
    tripwires = _tripwires(c, top, [l.name for l in losses], known, gates is not None, notes)
    if c.errors:
        raise c.errors[0] if len(c.errors) == 1 else InputErrors(source, c.errors)
    assert data_plan is not None and model is not None
    return Plan(name, seed, data_plan, model, losses, train, eval_cfg, gates, PluginsPlan(list(modules), tensorboard),
                tripwires=tripwires, seeds=list(seeds), seed_splits=seed_splits, source=source, text=text,
                base_dir=base_dir, notes=notes)


def _renamed_note(where: str, old: str) -> str:
    """The note for a metric named as before the rename (lvm_core/metric_names.py)."""
    return (f"{where}: {old!r} is the old name of {current_name(old)!r} (one name per number: "
            f"docs/metrics.md); read as {current_name(old)!r}")


def _tripwires(c: _Checker, top: Mapping[str, Any], losses: list[str], known: set[str], gates: bool,
               notes: list[str]) -> list[Tripwire]:
    """[[tripwire]] tables; a metric the run can never log is reported now, not at epoch N."""
    raw = top.get("tripwire")
    if raw is None:
        return []
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        c.add("tripwire", "expected one or more [[tripwire]] tables")
        return []
    out = []
    for i, entry in enumerate(raw):
        try:
            tw = tripwire_from_dict(entry, index=i, source=c.source, loss_names=losses)
        except InputErrors as exc:
            c.take(exc.errors)
            continue
        except InputError as exc:
            c.take([exc])
            continue
        metric = tw.when.metric
        if current_name(metric) != metric:
            notes.append(_renamed_note(f"tripwire[{i}].when", metric))
            tw = replace(tw, when=replace(tw.when, metric=current_name(metric)))
            metric = tw.when.metric
        if not _metric_known(metric, known, losses, gates):
            close = difflib.get_close_matches(metric, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            c.add(f"tripwire[{i}].when", f"{metric!r} is not a metric this run logs (e.g. val/cos, val/margin_vs_last, "
                                         f"val/R@5_no_context, loss, train/loss){hint}")
        out.append(tw)
    return out


def _metric_known(metric: str, known: set[str], losses: list[str], gates: bool) -> bool:
    name = metric[len("train/"):] if metric.startswith("train/") else metric
    if name in known or metric in known:
        return True
    if any(name.startswith(f"loss/{n}/") for n in losses):
        return True
    return gates and metric.startswith("gates/")


def _data(c: _Checker, top: Mapping[str, Any], base_dir: Path) -> tuple[DataPlan | None, set[str]]:
    if "data" not in top:
        c.add("data", "missing table [data] (at least: store = \"path/to/store\")")
        return None, set()
    t = c.table(top["data"], "data", DATA_KEYS)
    store = c.typed(t, "store", "data.store", str, None)
    if "store" not in t:
        c.add("data.store", "missing: the article store directory to train on")
    ood = c.typed(t, "ood", "data.ood", str, None)
    context_len = c.typed(t, "context_len", "data.context_len", int, 5)
    c.check(context_len >= 1, "data.context_len", f"expected >= 1, got {context_len}")
    paths: dict[str, Path | None] = {}
    for key, raw in (("store", store), ("ood", ood)):
        if raw is None:
            paths[key] = None
            continue
        p = (base_dir / raw).resolve()
        paths[key] = p
        try:
            ArticleStore.open(p)
        except InputError as exc:
            c.add(f"data.{key}", exc.line())
    s = c.table(t.get("split"), "data.split", SPLIT_KEYS)
    fractions = c.typed(s, "fractions", "data.split.fractions", dict, None)
    ranges = c.typed(s, "ranges", "data.split.ranges", dict, None)
    rest = c.typed(s, "rest", "data.split.rest", str, "train")
    split_seed = c.typed(s, "seed", "data.split.seed", int, 0)
    if fractions is not None and ranges is not None:
        c.add("data.split", "give either fractions or ranges, not both")
    if fractions is None and ranges is None:
        fractions = {"train": 0.8, "val": 0.2}
    parts: set[str] = set()
    if fractions is not None:
        bad = [k for k, v in fractions.items() if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0]
        for k in bad:
            c.add(f"data.split.fractions.{k}", f"expected a fraction >= 0, got {fractions[k]!r}")
        if not bad:
            fractions = {k: float(v) for k, v in fractions.items()}
            total = sum(fractions.values())
            c.check(abs(total - 1.0) < 1e-6, "data.split.fractions", f"expected fractions that sum to 1, got {total:g}")
        parts = set(fractions)
    if ranges is not None:
        for k, v in ranges.items():
            ok = isinstance(v, list) and all(isinstance(r, list) and len(r) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in r)
                                             and r[0] <= r[1] for r in v)
            c.check(ok, f"data.split.ranges.{k}", f"expected a list of inclusive [first, last] article-id ranges, got {v!r}")
        parts = set(ranges) | ({rest} if rest else set())
        ranges = {k: [list(r) for r in v] for k, v in ranges.items()}
    if parts and not {"train", "val"} <= parts:
        c.add("data.split", f"expected parts 'train' and 'val', got {sorted(parts)}")
    if ood is not None and "ood" in parts:
        c.add("data.ood", "the split already has an 'ood' part; give either data.ood or an ood range, not both")
    filters = []
    raw_filters = t.get("filter", [])
    if isinstance(raw_filters, dict):
        raw_filters = [raw_filters]
    if not isinstance(raw_filters, list):
        c.add("data.filter", "expected one or more [[data.filter]] tables")
        raw_filters = []
    for i, entry in enumerate(raw_filters):
        try:
            filters.append(filter_from_dict(entry, index=i, source=c.source, context_len=context_len))
        except InputErrors as exc:
            c.take(exc.errors)
        except InputError as exc:
            c.take([exc])
    if store is None:
        return None, parts
    split = SplitPlan(fractions=fractions, ranges=ranges, rest=rest, seed=split_seed)
    return DataPlan(paths["store"], paths["ood"], context_len, split, filters), parts  # type: ignore[arg-type]


def _model(c: _Checker, top: Mapping[str, Any], host: PluginHost) -> ModelPlan | None:
    if "model" not in top:
        c.add("model", f"missing table [model] (arch = one of {', '.join(host.names('model'))})")
        return None
    t = c.table(top["model"], "model", MODEL_KEYS)
    arch = c.typed(t, "arch", "model.arch", str, None)
    if arch is None:
        if "arch" not in t:
            c.add("model.arch", f"missing (one of {', '.join(host.names('model'))})")
        return None
    try:
        item = host.get("model", arch)
    except InputError as exc:
        c.add("model.arch", exc.message)
        return None
    params, errs = resolve_params(item.params, c.typed(t, "params", "model.params", dict, {}), where="model.params", source=c.source)
    c.take(errs)
    return ModelPlan(arch, params)


def _losses(c: _Checker, top: Mapping[str, Any], host: PluginHost) -> list[LossPlan]:
    raw = top.get("loss")
    if raw is None:
        c.add("loss", f"missing: at least one [[loss]] table (name = one of {', '.join(host.names('loss'))})")
        return []
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        c.add("loss", "expected one or more [[loss]] tables")
        return []
    out, seen = [], set()
    for i, entry in enumerate(raw):
        path = f"loss[{i}]"
        t = c.table(entry, path, LOSS_KEYS)
        name = c.typed(t, "name", f"{path}.name", str, None)
        if name is None:
            if "name" not in t:
                c.add(f"{path}.name", f"missing (one of {', '.join(host.names('loss'))})")
            continue
        if name in seen:
            c.add(f"{path}.name", f"loss {name!r} appears twice; list each strategy once")
        seen.add(name)
        weight = c.typed(t, "weight", f"{path}.weight", float, 1.0)
        schedule = None
        if "schedule" in t:
            try:
                schedule = weight_schedule_from_dict(t["schedule"], source=c.source, where=f"{path}.schedule")
            except InputErrors as exc:
                c.take(exc.errors)
            except InputError as exc:
                c.take([exc])
        control = None
        if "control" in t:
            if schedule is not None:
                c.add(f"{path}.control", "give either a schedule or a control for one loss, not both")
            try:
                controller_from_spec(t["control"], plan_weight=weight, where=f"{path}.control", source=c.source)
                control = dict(t["control"])
            except InputErrors as exc:
                c.take(exc.errors)
            except InputError as exc:
                c.take([exc])
        try:
            item = host.get("loss", name)
        except InputError as exc:
            c.add(f"{path}.name", exc.message)
            continue
        params, errs = resolve_params(item.params, c.typed(t, "params", f"{path}.params", dict, {}),
                                      where=f"{path}.params", source=c.source)
        c.take(errs)
        out.append(LossPlan(name, weight, params, schedule, control))
    return out


def _gates(c: _Checker, top: Mapping[str, Any], host: PluginHost) -> GatesPlan | None:
    t = c.table(top["gates"], "gates", GATES_KEYS)
    g = GatesPlan(every=c.typed(t, "every", "gates.every", int, 0),
                  samples=c.typed(t, "samples", "gates.samples", int, 1000),
                  horizon=c.typed(t, "horizon", "gates.horizon", int, 5),
                  required=c.typed(t, "required", "gates.required", bool, False),
                  thresholds=c.typed(t, "thresholds", "gates.thresholds", dict, {}),
                  use=c.typed(t, "use", "gates.use", list, list(DEFAULT_GATES)))
    c.check(g.every >= 0, "gates.every", f"expected >= 0 (0 = only at the end), got {g.every}")
    c.check(g.samples >= 1, "gates.samples", f"expected >= 1, got {g.samples}")
    c.check(g.horizon >= 1, "gates.horizon", f"expected >= 1, got {g.horizon}")
    problem = gate_names_problem(g.use)
    if problem:
        c.add("gates.use", problem)
        return g
    try:
        resolve_gates(lambda n: host.get("gate", n, source=c.source), g.use, thresholds=g.thresholds, source=c.source)
    except InputErrors as exc:
        c.take([InputError(c.source, e.message, _gates_where(e.where)) for e in exc.errors])
    except InputError as exc:
        c.add(_gates_where(exc.where), exc.message)
    return g


def _gates_where(where: str | None) -> str:
    """`gates.use` for an unknown gate name, `gates.thresholds.X` for a bad threshold."""
    return f"gates.{where}" if where else "gates.use"


def gate_names_problem(names: Any) -> str | None:
    """Why a `[gates] use` value (or `5cat --gate` list) is not a list of distinct gate names."""
    if not isinstance(names, (list, tuple)) or not names or any(not isinstance(n, str) or not n for n in names):
        return f"expected a non-empty array of gate names, e.g. {list(DEFAULT_GATES)}, got {names!r}"
    dup = sorted({n for n in names if list(names).count(n) > 1})
    return f"gate {dup[0]!r} is named twice" if dup else None


# ---- writing a plan back ---------------------------------------------------------------------

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
        "train": dataclasses.asdict(plan.train), "eval": dataclasses.asdict(plan.eval),
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


# ---- preparing a run -------------------------------------------------------------------------

@dataclass
class RunInfo:
    """What event hooks receive as `run`: the run directory, the plan's name, the resolved plan."""

    path: Path
    name: str
    plan: dict[str, Any]


class PluginHookError(Exception):
    """Event hooks that raised; the trainer turns this into an Alert naming the plugins."""

    code = "plugin_error"


class PluginEventSink:
    """Calls the plugins' event hooks for trainer events, each plugin isolated from the others."""

    def __init__(self, host: PluginHost, run: RunInfo) -> None:
        self.host, self.run = host, run

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            hook, kwargs = "on_run_start", {"plan": self.run.plan}
        elif isinstance(event, EpochEnded):
            hook, kwargs = "on_epoch_end", {"epoch": event.epoch, "step": event.step, "metrics": event.metrics}
        elif isinstance(event, EvalDone):
            hook, kwargs = "on_eval_end", {"epoch": event.epoch, "step": event.step, "metrics": event.metrics}
        elif isinstance(event, CheckpointSaved):
            hook, kwargs = "on_checkpoint", {"path": event.path, "tag": event.tag,
                                             "metrics": {event.metric: event.value} if event.metric else {}}
        elif isinstance(event, RunEnded):
            hook, kwargs = "on_run_end", {"status": event.status}
        else:
            return
        logged: dict[str, dict[str, float]] = {}
        failures = self.host.emit(hook, log_for=lambda plugin: _plugin_logger(plugin, logged), run=self.run, **kwargs)
        for plugin, values in logged.items():
            line = {"kind": "PluginMetrics", "t": time.time(), "plugin": plugin, "hook": hook,
                    "epoch": getattr(event, "epoch", None), "step": getattr(event, "step", None), "metrics": values}
            RunDir(self.run.path).append(METRICS, json.dumps(line, allow_nan=False))
        if failures:
            at = f" at step {event.step}" if getattr(event, "step", None) is not None else ""
            raise PluginHookError("; ".join(f"{self.host.origin(f.plugin)} raised in {f.stage}{at}: {f.error}"
                                            for f in failures))


def _plugin_logger(plugin: str, logged: dict[str, dict[str, float]]) -> Any:
    """The `log(name, value)` callback an event hook receives: finite numbers only, namespaced
    `plugin/<plugin>/<name>`."""

    def log(name: str, value: float) -> None:
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"log({name!r}, {value!r}): expected a finite number")
        logged.setdefault(plugin, {})[f"plugin/{plugin}/{name}"] = v

    return log


def make_split(plan: Plan, store: ArticleStore) -> Split:
    s = plan.data.split
    if s.ranges is not None:
        return split_by_ranges(store, s.ranges, rest=s.rest or None)
    return split_by_fractions(store, s.fractions or {}, seed=s.seed)


def _windows(store: ArticleStore, split: Split | None, part: str | None, context_len: int, source: str) -> Any:
    pos = split.positions(store, part) if split is not None and part is not None else None
    w = make_windows(store, pos, context_len)
    if len(w) == 0:
        what = f"split part {part!r}" if part else "the store"
        raise InputError(source, f"{what} has no window of {context_len} context chunks plus a target "
                                 f"(articles too short or too few)")
    return w


def versions() -> dict[str, str]:
    import torch

    return {"lvm-workbench": lvm_core.__version__, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "platform": platform.platform()}


def prepare_run(plan: Plan, host: PluginHost, *, run_dir: str | Path | None = None, device: str | None = None,
                resume: str | Path | None = None, runs_root: str | Path | None = None,
                resume_from: str = "last") -> TrainSetup:
    """Everything `lvm_core.train.train` needs: stores, split, windows, model, losses, run directory.

    resume: a run directory to continue from its `last` checkpoint (its split.json is reused,
    never recomputed). run_dir: where a new run goes (must be new or empty); default
    `runs_root/<name>-<UTC time>` with runs_root defaulting to ./runs. device overrides the plan.
    """
    from lvm_core.evaluation import spread_sample

    cfg = plan.train
    dev, reason = select_device(device or cfg.device, source="--device" if device else f"{plan.source}: train.device")
    ddp = distributed.init(dev.type)  # torchrun: join the job (SINGLE otherwise)
    dev = distributed.local_device(ddp, dev)
    distributed.check_batch(ddp, cfg.batch_size, plan.source)
    configure_threads(cfg.threads)
    seed_everything(plan.seed, cfg.deterministic)
    store = ArticleStore.open(plan.data.store)
    ood_store = ArticleStore.open(plan.data.ood) if plan.data.ood else None
    for s_ in (store, ood_store):  # NaN rows are refused at the door, not found by a diverged run
        if s_ is not None:
            s_.refuse_nonfinite()

    run: RunDir | None = None
    state = None
    lock: RunLock | None = None
    if resume is not None:
        run = RunDir(resume)
        if run.read_json("run.json").get("status") == "completed":
            tidied = finish_interrupted_end(run)  # killed writing its report: finished here
            raise InputError(str(run.path), "this run already completed; there is nothing to resume"
                             + (f" ({tidied})" if tidied else ""))
        split = Split.load(run.path / "split.json")  # the run's split, never recomputed
        _check_world_size(run, ddp)
        lock = RunLock(run.path).acquire() if ddp.is_main else None
        generation = Checkpointer(run.checkpoints).pick(resume_from)  # None: killed before its first checkpoint
        state = generation.state() if generation is not None else None
    else:
        split = make_split(plan, store)

    L = plan.data.context_len
    train_w = _windows(store, split, "train", L, f"{plan.source}: data.split")
    eval_sets = [EvalSet("val", _windows(store, split, "val", L, f"{plan.source}: data.split"))]
    if "ood" in split.parts:
        eval_sets.append(EvalSet("ood", _windows(store, split, "ood", L, f"{plan.source}: data.split")))
    elif ood_store is not None:
        eval_sets.append(EvalSet("ood", _windows(ood_store, None, None, L, f"{plan.source}: data.ood")))
    # the gate battery draws its own samples from every window; validation uses a fixed sample
    gate_splits = {es.name: (es.windows.store, es.windows.target_rows) for es in eval_sets}
    for es in eval_sets:
        keep = spread_sample(es.windows.store, es.windows.target_rows, plan.eval.max_samples, plan.seed)
        es.windows = Windows(es.windows.store, keep, es.windows.context_len)  # keep: a sorted subset of the rows

    item = host.get("model", plan.model.arch, source=plan.source, where="model.arch")
    model = guard_call("its factory", item, item.obj, store.dim, L, **plan.model.params)
    check_model(item, model, store.dim, L)  # a wrong output shape or dtype is named before step 0
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if n_params and len(train_w) < cfg.batch_size * cfg.grad_accum:
        raise InputError(plan.source, f"the train split has {len(train_w)} windows, fewer than one step "
                                      f"(batch_size {cfg.batch_size} x grad_accum {cfg.grad_accum})", "train.batch_size")
    subsets = _train_subsets(plan, train_w, n_params > 0)
    losses = []
    for lp in plan.losses:
        li = host.get("loss", lp.name, source=plan.source)
        control = controller_from_spec(lp.control, plan_weight=lp.weight, source=plan.source) if lp.control else None
        strategy = guard_call("its factory", li, li.obj, **lp.params)
        losses.append(LossTerm(lp.name, guard_loss(li, strategy), lp.weight, lp.schedule or WeightSchedule(), control,
                               origin=origin(li)))

    resolved = plan_to_dict(plan)
    fingerprints = {"store": store.fingerprint(), **({"ood": ood_store.fingerprint()} if ood_store else {})}
    meta = {"plugins": checkpoint_plugins(host, plan.model.arch, [lp.name for lp in plan.losses]),
            "arch": plan.model.arch, "arch_params": plan.model.params, "input_dim": store.dim, "context_len": L,
            "plan_sha256": plan_sha256(plan), "data": fingerprints["store"],
            "embedder": store.manifest.embedder.get("name"), "split_sha256": split.sha256(), "name": plan.name}
    fitted_holder: list[TrainSetup] = []  # the gates read the fitted baselines the trainer makes
    gate_runner = (_gate_runner(plan, host, gate_splits, dev, ddp, lambda: fitted_holder[0].fitted_baselines)
                   if plan.gates is not None else None)
    if run is not None:  # resuming: the weights of `last`, the logs cut back to its step
        if generation is not None:
            model.load_state_dict(generation.weights())
        if ddp.is_main:
            Checkpointer(run.checkpoints).rewind(generation)
            remove_temporaries(run.path, recursive=True)
            dropped = run.cut_logs(int(state["step"]) if state is not None else -1)
            run.update_run(device=str(dev), device_reason=reason, resume_cut=dropped,
                           resume_from=generation.name if generation is not None else "step 0 (no checkpoint yet)")
    elif not ddp.is_main:  # torchrun: rank 0 creates the run directory and tells the others
        run = RunDir(distributed.broadcast_json(ddp, None))
    else:
        run = RunDir(claim_run_dir(run_dir) if run_dir else new_run_dir(runs_root or DEFAULT_RUNS_ROOT, plan.name))
        lock = RunLock(run.path).acquire()
        run.write_text("plan.toml", plan.text if plan.text is not None else plan_to_toml(plan))
        split.save(run.path / "split.json")
        plugins = sorted({(i.plugin, i.dist, i.version) for i in host.all_items()})
        run.write_json("plan.resolved.json", {**resolved, "data_fingerprints": fingerprints,
                                              "split": {"sha256": split.sha256(), "rule": split.rule,
                                                        "sizes": {k: len(v) for k, v in split.parts.items()}},
                                              "plugins": [{"plugin": p, "distribution": d, "version": v} for p, d, v in plugins]})
        run.write_json("run.json", {"name": plan.name, "status": "created", "created": iso_time(time.time()),
                                    "seed": plan.seed, "split_sha256": split.sha256(), "device": str(dev),
                                    "device_reason": reason, "model": plan.model.arch, "n_params": n_params,
                                    "plan_source": plan.source, "plan_dir": str(plan.base_dir),
                                    "data": fingerprints, "versions": versions(), "argv": sys.argv,
                                    "world_size": ddp.world_size})
        distributed.broadcast_json(ddp, str(run.path))

    setup = TrainSetup(name=plan.name, run=run, model=model, losses=losses, train_windows=train_w,
                       eval_sets=eval_sets, config=cfg, eval=plan.eval, device=dev, device_reason=reason,
                       seed=plan.seed, checkpoint_meta=meta, gates=gate_runner,
                       gates_every=plan.gates.every if plan.gates else 0, resume_state=state, lock=lock,
                       tripwires=list(plan.tripwires), train_subsets=subsets, dist=ddp)
    setup.sinks.append(PluginEventSink(host, RunInfo(run.path, plan.name, resolved)))
    fitted_holder.append(setup)
    return setup


def _train_subsets(plan: Plan, train_w: Any, trainable: bool) -> list[Any]:
    """The [[data.filter]] curricula applied to the train windows (scored once, vectorised);
    an epoch whose filters leave less than one optimizer step is bad input."""
    if not plan.data.filters:
        return []
    subsets = build_subsets(train_w, plan.data.filters)
    per_step = plan.train.batch_size * plan.train.grad_accum
    for epoch in range(1, plan.train.epochs + 1):
        idx = epoch_index(subsets, epoch)
        if idx is not None and trainable and len(idx) < per_step:
            raise InputError(plan.source, f"at epoch {epoch} the data filters keep {len(idx)} of {len(train_w)} train "
                                          f"windows, fewer than one step (batch_size {plan.train.batch_size} x "
                                          f"grad_accum {plan.train.grad_accum})", "data.filter")
    return subsets


def _check_world_size(run: RunDir, ddp: distributed.Dist) -> None:
    """A run resumes with the world size it started with: the global batch, the per-rank slices
    and the optimizer state all assume it."""
    started = int(run.read_json("run.json").get("world_size", 1))
    if started != ddp.world_size:
        raise InputError(str(run.path), f"this run was started with {started} process(es); resume it with "
                                        f"torchrun --nproc-per-node {started} (got {ddp.world_size})")


def _gate_runner(plan: Plan, host: PluginHost, splits: dict[str, tuple[ArticleStore, np.ndarray]], dev: Any,
                 ddp: distributed.Dist = distributed.SINGLE, fitted: Any = lambda: None) -> Any:
    """The 5CAT battery at the seam the trainer leaves for it (lvm_core.evaluation.run_battery);
    `splits` holds every window of each eval split (the battery draws its own samples). In a
    torchrun job each rank predicts its share of the samples. `fitted()` returns the run's
    fitted baselines (ridge, frame weights), judged beside copy-last."""
    from lvm_core.evaluation import run_battery, torch_predictor

    g = plan.gates
    assert g is not None
    gates = resolve_gates(gate_lookup(host, plan.source), g.use, thresholds=g.thresholds,
                          source=plan.source)

    def run(model: Any, epoch: int, step: int) -> GateOutcome:
        fit = fitted()
        result = run_battery(distributed.sharded_predictor(ddp, torch_predictor(model, dev)), splits, gates, samples=g.samples, horizon=g.horizon,
                             context_len=plan.data.context_len, seed=plan.seed,
                             extra_baselines=fit.predictors if fit is not None else None)
        return GateOutcome(result.score(), result.passed, result.to_json(), result.flat_metrics(), result)

    return run


def load_run_plan(run_dir: str | Path, host: PluginHost | None = None) -> Plan:
    """The plan a run was started with (its plan.toml, paths resolved as in the original file)."""
    run = RunDir(run_dir)
    info = run.read_json("run.json")
    p = run.path / "plan.toml"
    if not p.is_file():
        raise InputError(str(p), "missing: cannot resume a run without its plan")
    return plan_from_text(p.read_text(encoding="utf-8"), info.get("plan_dir", run.path), source=str(p), host=host)
