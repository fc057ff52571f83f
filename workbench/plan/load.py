"""Reading a plan: parse the TOML and check it against the schema, reporting every problem at once.

    plan = load_plan("examples/quickstart.toml")

Validation gathers every problem before raising lvm_core.errors.InputErrors: unknown keys (with a
"did you mean"), wrong types, values out of range or not finite, unknown plugin names (with the
known ones), plugin parameters against their declared Params, missing stores, and metric names
that the run would never log. Each problem names the key path (``loss[1].params.margin``) and,
for plans read from a file, its line.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import tomli

from lvm_core.data.store import ArticleStore
from lvm_core.errors import InputError, problems, raise_all
from lvm_core.evaluation.battery import DEFAULT_GATES, resolve_gates
from lvm_core.evaluation.metric_names import current_name
from lvm_core.params import resolve_params, unknown_keys, value_kind
from lvm_core.rundir import RunDir
from lvm_core.training.curriculum import filter_from_dict
from lvm_core.training.loop import EvalConfig, TrainConfig, metric_names
from lvm_core.training.schedules import weight_schedule_from_dict
from lvm_core.training.tripwires import Tripwire, tripwire_from_dict
from lvm_core.training.weight_control import controller_from_spec

from . import schema
from .locate import toml_key_lines, where
from .plan import DataPlan, GatesPlan, LossPlan, ModelPlan, Plan, PluginsPlan, SplitPlan
from ..plugin_host import PluginHost, load_plugins
from .schema import Section

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class _Checker:
    """Collects problems with their key path and line, and reads tables against the schema."""

    def __init__(self, source: str, lines: Mapping[str, int]) -> None:
        self.source, self.lines = source, lines
        self.errors: list[InputError] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append(InputError(self.source, message, where(path, self.lines)))

    def take(self, errors: list[InputError]) -> None:
        for e in errors:
            self.add(e.where or "", e.message)

    def check(self, ok: bool, path: str, message: str) -> None:
        if not ok:
            self.add(path, message)

    def table(self, obj: Any, path: str, known: tuple[str, ...]) -> dict[str, Any]:
        """`obj` as a table with only `known` keys (unknown ones reported with a suggestion)."""
        if obj is None:
            return {}
        if not isinstance(obj, dict):
            self.add(path, f"expected a table, got {value_kind(obj)}")
            return {}
        self.take(unknown_keys(obj, known, path=path, source=self.source))
        return obj

    def value(self, t: Mapping[str, Any], sec: Section, name: str, path: str | None = None) -> Any:
        """t[name] checked against the schema's declaration (its default when absent or wrong)."""
        key = sec.key(name)
        path = path or ".".join(filter(None, [sec.path, name]))
        if name not in t:
            return schema.fresh(key.default)
        try:
            return key.check(t[name], path, self.source)
        except InputError as exc:
            self.take([exc])
            return schema.fresh(key.default)

    def section(self, obj: Any, sec: Section, path: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the table, every scalar key's checked value) of one schema section."""
        path = sec.path if path is None else path
        t = self.table(obj, path, sec.known)
        return t, {k.name: self.value(t, sec, k.name, ".".join(filter(None, [path, k.name]))) for k in sec.keys}

    def gather(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """fn(...) with its InputError(s) taken as problems (None then)."""
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            self.take(problems(exc))
            return None


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
        at = f"line {exc.lineno}, column {exc.colno}" if getattr(exc, "lineno", None) else None
        raise InputError(source, f"not valid TOML: {getattr(exc, 'msg', str(exc))}", at) from None
    return plan_from_dict(data, base_dir, source=source, text=text, host=host)


def load_run_plan(run_dir: str | Path, host: PluginHost | None = None) -> Plan:
    """The plan a run was started with (its plan.toml, paths resolved as in the original file)."""
    run = RunDir(run_dir)
    info = run.read_json("run.json")
    p = run.path / "plan.toml"
    if not p.is_file():
        raise InputError(str(p), "missing: cannot resume a run without its plan")
    return plan_from_text(p.read_text(encoding="utf-8"), info.get("plan_dir", run.path), source=str(p), host=host)


def plan_from_dict(data: Mapping[str, Any], base_dir: str | Path, *, source: str = "plan", text: str | None = None,
                   host: PluginHost | None = None) -> Plan:
    """Validate a plan given as a dict (as parsed from TOML); raises InputErrors with every problem.

    Plugin names are checked against `host` (default: the built-ins, the installed plugins and
    the plan's own [plugins] modules).
    """
    base_dir = Path(base_dir).resolve()
    c = _Checker(source, toml_key_lines(text) if text else {})
    top, v = c.section(dict(data), schema.TOP)
    plugins, host = _plugins(c, top, base_dir, host)
    name = v["name"] if v["name"] is not None else (Path(source).stem if source != "plan" else "run")
    c.check(bool(NAME_RE.match(name)), "name",
            f"expected letters, digits, '.', '_' or '-' (it names the run directory), got {name!r}")
    seeds = v["seeds"]
    if any(isinstance(x, bool) or not isinstance(x, int) or not 0 <= x <= schema.MAX_SEED for x in seeds) \
            or len(set(seeds)) != len(seeds):
        c.add("seeds", f"expected an array of distinct integer seeds 0 <= seed <= {schema.MAX_SEED}, e.g. [0, 1, 2], "
                       f"got {seeds!r}")
        seeds = []

    data_plan, parts = _data(c, top, base_dir)
    model = _model(c, top, host)
    losses = _losses(c, top, host)
    train = TrainConfig(**c.section(top.get("train"), schema.TRAIN)[1])
    eval_cfg = EvalConfig(**c.section(top.get("eval"), schema.EVAL)[1])
    gates = _gates(c, top, host) if "gates" in top else None

    eval_splits = ["val"] + (["ood"] if data_plan is not None and (data_plan.ood or "ood" in parts) else [])
    loss_names = [lp.name for lp in losses]
    known = metric_names(eval_splits, loss_names, gates=gates is not None)
    notes: list[str] = []
    _check_metrics(c, train, known, loss_names, gates is not None, notes)
    tripwires = _tripwires(c, top, loss_names, known, gates is not None, notes)
    raise_all(source, c.errors)
    assert data_plan is not None and model is not None
    return Plan(name, v["seed"], data_plan, model, losses, train, eval_cfg, gates, plugins,
                tripwires=tripwires, seeds=list(seeds), seed_splits=v["seed_splits"], source=source, text=text,
                base_dir=base_dir, notes=notes)


def _plugins(c: _Checker, top: Mapping[str, Any], base_dir: Path, host: PluginHost | None
             ) -> tuple[PluginsPlan, PluginHost]:
    """[plugins], and the host that knows the plan's plugin names (its modules loaded)."""
    _, v = c.section(top.get("plugins"), schema.PLUGINS)
    modules = v["modules"]
    if v["tensorboard"] and importlib.util.find_spec("tensorboard") is None:
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
    return PluginsPlan(list(modules), v["tensorboard"]), host


def _check_metrics(c: _Checker, train: TrainConfig, known: set[str], losses: list[str], gates: bool,
                   notes: list[str]) -> None:
    """select_metric and early_stop_metric name metrics the run logs, with a mode that fits; an old
    metric name is read as its new one, with a note."""
    for key in ("select_metric", "early_stop_metric"):
        metric = getattr(train, key)
        if metric and current_name(metric) != metric:  # a plan (or a resumed run) from before the rename
            setattr(train, key, current_name(metric))
            notes.append(_renamed_note(f"train.{key}", metric))
            metric = getattr(train, key)
        if metric and not _metric_known(metric, known, losses, gates):
            c.add(f"train.{key}", _not_logged(metric, known))
    for key, mode in (("select_metric", "select_mode"), ("early_stop_metric", "early_stop_mode")):
        metric = getattr(train, key)
        if metric.removeprefix("train/").startswith("loss") and "/stat/" not in metric:  # a loss: lower is better
            c.check(getattr(train, mode) == "min", f"train.{mode}",
                    f"{getattr(train, mode)!r} would keep the highest {metric}; set {mode} = \"min\"")


def _not_logged(metric: str, known: set[str]) -> str:
    close = difflib.get_close_matches(metric, sorted(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return (f"{metric!r} is not a metric this run logs (e.g. val/cos, val/margin_vs_last, val/R@5_no_context, "
            f"loss, train/loss){hint}")


def _renamed_note(where: str, old: str) -> str:
    """The note for a metric named as before the rename (lvm_core/evaluation/metric_names.py)."""
    return (f"{where}: {old!r} is the old name of {current_name(old)!r} (one name per number: "
            f"docs/metrics.md); read as {current_name(old)!r}")


def _tables(c: _Checker, raw: Any, path: str) -> list[Any]:
    """An array of tables ([[x]]); a single table counts as one."""
    if raw is None:
        return []
    if isinstance(raw, dict):
        return [raw]
    if not isinstance(raw, list):
        c.add(path, f"expected one or more [[{path}]] tables")
        return []
    return raw


def _tripwires(c: _Checker, top: Mapping[str, Any], losses: list[str], known: set[str], gates: bool,
               notes: list[str]) -> list[Tripwire]:
    """[[tripwire]] tables; a metric the run can never log is reported now, not at epoch N."""
    out = []
    for i, entry in enumerate(_tables(c, top.get("tripwire"), "tripwire")):
        tw = c.gather(tripwire_from_dict, entry, index=i, source=c.source, loss_names=losses)
        if tw is None:
            continue
        metric = tw.when.metric
        if current_name(metric) != metric:
            notes.append(_renamed_note(f"tripwire[{i}].when", metric))
            tw = replace(tw, when=replace(tw.when, metric=current_name(metric)))
            metric = tw.when.metric
        if not _metric_known(metric, known, losses, gates):
            c.add(f"tripwire[{i}].when", _not_logged(metric, known))
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
    t, v = c.section(top["data"], schema.DATA)
    if "store" not in t:
        c.add("data.store", "missing: the article store directory to train on")
    paths: dict[str, Path | None] = {}
    for key in ("store", "ood"):
        paths[key] = None if v[key] is None else (base_dir / v[key]).resolve()
        if paths[key] is not None:
            _open_store(c, key, paths[key])
    split, parts = _split(c, t.get("split"))
    if v["ood"] is not None and "ood" in parts:
        c.add("data.ood", "the split already has an 'ood' part; give either data.ood or an ood range, not both")
    filters = [f for i, entry in enumerate(_tables(c, t.get("filter"), "data.filter"))
               if (f := c.gather(filter_from_dict, entry, index=i, source=c.source, context_len=v["context_len"]))
               is not None]
    if v["store"] is None:
        return None, parts
    return DataPlan(paths["store"], paths["ood"], v["context_len"], split, filters), parts  # type: ignore[arg-type]


def _open_store(c: _Checker, key: str, path: Path) -> None:
    try:
        ArticleStore.open(path)
    except InputError as exc:
        c.add(f"data.{key}", exc.line())


def _split(c: _Checker, obj: Any) -> tuple[SplitPlan, set[str]]:
    """[data.split]: the rule and the names of its parts."""
    s, v = c.section(obj, schema.SPLIT)
    fractions, ranges, rest = (v["fractions"] if "fractions" in s else None), v["ranges"], v["rest"]
    if "fractions" in s and ranges is not None:
        c.add("data.split", "give either fractions or ranges, not both")
    if fractions is None and ranges is None:
        fractions = schema.default("data.split", "fractions")
    parts: set[str] = set()
    if fractions is not None:
        bad = [k for k, x in fractions.items() if isinstance(x, bool) or not isinstance(x, (int, float))
               or not 0 <= x <= 1]
        for k in bad:
            c.add(f"data.split.fractions.{k}", f"expected a fraction 0 <= f <= 1, got {fractions[k]!r}")
        if not bad:
            fractions = {k: float(x) for k, x in fractions.items()}
            total = sum(fractions.values())
            c.check(abs(total - 1.0) < 1e-6, "data.split.fractions", f"expected fractions that sum to 1, got {total:g}")
        parts = set(fractions)
    if ranges is not None:
        for k, r in ranges.items():
            ok = isinstance(r, list) and all(isinstance(x, list) and len(x) == 2 and all(
                isinstance(n, int) and not isinstance(n, bool) for n in x) and x[0] <= x[1] for x in r)
            c.check(ok, f"data.split.ranges.{k}", f"expected a list of inclusive [first, last] article-id ranges, got {r!r}")
        parts = set(ranges) | ({rest} if rest else set())
        ranges = {k: [list(x) for x in r] if isinstance(r, list) else r for k, r in ranges.items()}
    if parts and not {"train", "val"} <= parts:
        c.add("data.split", f"expected parts 'train' and 'val', got {sorted(parts)}")
    return SplitPlan(fractions=fractions, ranges=ranges, rest=rest, seed=v["seed"]), parts


def _model(c: _Checker, top: Mapping[str, Any], host: PluginHost) -> ModelPlan | None:
    if "model" not in top:
        c.add("model", f"missing table [model] (arch = one of {', '.join(host.names('model'))})")
        return None
    t, v = c.section(top["model"], schema.MODEL)
    if v["arch"] is None:
        if "arch" not in t:
            c.add("model.arch", f"missing (one of {', '.join(host.names('model'))})")
        return None
    try:
        item = host.get("model", v["arch"])
    except InputError as exc:
        c.add("model.arch", exc.message)
        return None
    params, errs = resolve_params(item.params, v["params"], where="model.params", source=c.source)
    c.take(errs)
    return ModelPlan(v["arch"], params)


def _losses(c: _Checker, top: Mapping[str, Any], host: PluginHost) -> list[LossPlan]:
    raw = top.get("loss")
    if raw is None:
        c.add("loss", f"missing: at least one [[loss]] table (name = one of {', '.join(host.names('loss'))})")
        return []
    out, seen = [], set()
    entries = _tables(c, raw, "loss")
    if isinstance(raw, list) and not raw:
        c.add("loss", "expected one or more [[loss]] tables")
    for i, entry in enumerate(entries):
        path = f"loss[{i}]"
        t, v = c.section(entry, schema.LOSS, path)
        name = v["name"]
        if name is None:
            if "name" not in t:
                c.add(f"{path}.name", f"missing (one of {', '.join(host.names('loss'))})")
            continue
        if name in seen:
            c.add(f"{path}.name", f"loss {name!r} appears twice; list each strategy once")
        seen.add(name)
        schedule = c.gather(weight_schedule_from_dict, t["schedule"], source=c.source, where=f"{path}.schedule") \
            if "schedule" in t else None
        control = None
        if "control" in t:
            if schedule is not None:
                c.add(f"{path}.control", "give either a schedule or a control for one loss, not both")
            if c.gather(controller_from_spec, t["control"], plan_weight=v["weight"], where=f"{path}.control",
                        source=c.source) is not None:
                control = dict(t["control"])
        try:
            item = host.get("loss", name)
        except InputError as exc:
            c.add(f"{path}.name", exc.message)
            continue
        params, errs = resolve_params(item.params, v["params"], where=f"{path}.params", source=c.source)
        c.take(errs)
        out.append(LossPlan(name, v["weight"], params, schedule, control))
    return out


def _gates(c: _Checker, top: Mapping[str, Any], host: PluginHost) -> GatesPlan | None:
    _, v = c.section(top["gates"], schema.GATES)
    g = GatesPlan(**v)
    problem = gate_names_problem(g.use)
    if problem:
        c.add("gates.use", problem)
        return g
    try:
        resolve_gates(lambda n: host.get("gate", n, source=c.source), g.use, thresholds=g.thresholds, source=c.source)
    except InputError as exc:
        c.take([InputError(c.source, e.message, _gates_where(e.where)) for e in problems(exc)])
    return g


def _gates_where(at: str | None) -> str:
    """`gates.use` for an unknown gate name, `gates.thresholds.X` for a bad threshold."""
    return f"gates.{at}" if at else "gates.use"


def gate_names_problem(names: Any) -> str | None:
    """Why a `[gates] use` value (or `5cat --gate` list) is not a list of distinct gate names."""
    if not isinstance(names, (list, tuple)) or not names or any(not isinstance(n, str) or not n for n in names):
        return f"expected a non-empty array of gate names, e.g. {list(DEFAULT_GATES)}, got {names!r}"
    dup = sorted({n for n in names if list(names).count(n) > 1})
    return f"gate {dup[0]!r} is named twice" if dup else None
