"""Run preparation: from a validated plan to everything `lvm_core.training.loop.train` needs.

    plan = load_plan("examples/quickstart.toml")          # workbench/plan/
    setup = prepare_run(plan, host)                         # run directory, stores, model, losses
    result = lvm_core.training.loop.train(setup, sinks, stop_event)

The same call serves the headless CLI (workbench/headless.py) and the TUI (from a worker thread:
nothing here touches a UI or global state beyond torch's seed and thread count). It opens the
stores, makes or reuses the split, builds the model and the guarded loss strategies, creates (or
reopens, to resume) the run directory, and wires the gate battery and the plugin event sink.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import lvm_core
from lvm_core.atomic import remove_temporaries
from lvm_core.data.store import ArticleStore
from lvm_core.data.windows import Split, Windows, make_windows, split_by_fractions, split_by_ranges
from lvm_core.device import configure_threads, seed_everything, select_device
from lvm_core.errors import InputError
from lvm_core.evaluation.battery import resolve_gates
from lvm_core.rundir import RunDir, claim_run_dir, finish_interrupted_end, iso_time, new_run_dir
from lvm_core.runlock import RunLock
from lvm_core.training import distributed
from lvm_core.training.checkpointer import Checkpointer
from lvm_core.training.curriculum import build_subsets, epoch_index
from lvm_core.training.loop import EvalSet, GateOutcome, LossTerm, TrainSetup
from lvm_core.training.schedules import WeightSchedule
from lvm_core.training.weight_control import controller_from_spec

from .checkpoint_plugins import checkpoint_plugins
from .plan import Plan, plan_sha256, plan_to_dict, plan_to_toml
from .plugin_events import PluginEventSink, RunInfo
from .plugin_guard import check_model, gate_lookup, guard_call, guard_loss, origin
from .plugin_host import PluginHost

DEFAULT_RUNS_ROOT = Path("runs")


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
    """Everything `lvm_core.training.loop.train` needs: stores, split, windows, model, losses, run directory.

    resume: a run directory to continue from its `last` checkpoint (its split.json is reused,
    never recomputed). run_dir: where a new run goes (must be new or empty); default
    `runs_root/<name>-<UTC time>` with runs_root defaulting to ./runs. device overrides the plan.
    """
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
    state = generation = lock = None
    if resume is not None:
        run, split, lock, generation = _resume_point(RunDir(resume), ddp, resume_from)
        state = generation.state() if generation is not None else None
    else:
        split = make_split(plan, store)

    L = plan.data.context_len
    train_w = _windows(store, split, "train", L, f"{plan.source}: data.split")
    eval_sets, gate_splits = _eval_sets(plan, store, ood_store, split)

    item = host.get("model", plan.model.arch, source=plan.source, where="model.arch")
    model = guard_call("its factory", item, item.obj, store.dim, L, **plan.model.params)
    check_model(item, model, store.dim, L)  # a wrong output shape or dtype is named before step 0
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if n_params and len(train_w) < cfg.batch_size * cfg.grad_accum:
        raise InputError(plan.source, f"the train split has {len(train_w)} windows, fewer than one step "
                                      f"(batch_size {cfg.batch_size} x grad_accum {cfg.grad_accum})", "train.batch_size")
    subsets = _train_subsets(plan, train_w, n_params > 0)
    losses = _loss_terms(plan, host)

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
        _write_new_run(run, plan, host, split, resolved, fingerprints,
                       {"device": str(dev), "device_reason": reason, "n_params": n_params, "world_size": ddp.world_size})
        distributed.broadcast_json(ddp, str(run.path))

    setup = TrainSetup(name=plan.name, run=run, model=model, losses=losses, train_windows=train_w,
                       eval_sets=eval_sets, config=cfg, eval=plan.eval, device=dev, device_reason=reason,
                       seed=plan.seed, checkpoint_meta=meta, gates=gate_runner,
                       gates_every=plan.gates.every if plan.gates else 0, resume_state=state, lock=lock,
                       tripwires=list(plan.tripwires), train_subsets=subsets, dist=ddp)
    setup.sinks.append(PluginEventSink(host, RunInfo(run.path, plan.name, resolved)))
    fitted_holder.append(setup)
    return setup


def _resume_point(run: RunDir, ddp: distributed.Dist, resume_from: str) -> tuple[RunDir, Split, RunLock | None, Any]:
    """A run to resume: its own split (never recomputed), its lock, and the checkpoint generation
    to continue from (None: killed before its first checkpoint)."""
    if run.read_json("run.json").get("status") == "completed":
        tidied = finish_interrupted_end(run)  # killed writing its report: finished here
        raise InputError(str(run.path), "this run already completed; there is nothing to resume"
                         + (f" ({tidied})" if tidied else ""))
    split = Split.load(run.path / "split.json")
    _check_world_size(run, ddp)
    lock = RunLock(run.path).acquire() if ddp.is_main else None
    return run, split, lock, Checkpointer(run.checkpoints).pick(resume_from)


def _eval_sets(plan: Plan, store: ArticleStore, ood_store: ArticleStore | None, split: Split
               ) -> tuple[list[EvalSet], dict[str, tuple[ArticleStore, np.ndarray]]]:
    """The validation sets (a fixed, seeded sample of each split's windows) and, for the gate
    battery, every window of each split (it draws its own samples)."""
    from lvm_core.evaluation.battery import spread_sample

    L, at = plan.data.context_len, f"{plan.source}: data.split"
    eval_sets = [EvalSet("val", _windows(store, split, "val", L, at))]
    if "ood" in split.parts:
        eval_sets.append(EvalSet("ood", _windows(store, split, "ood", L, at)))
    elif ood_store is not None:
        eval_sets.append(EvalSet("ood", _windows(ood_store, None, None, L, f"{plan.source}: data.ood")))
    gate_splits = {es.name: (es.windows.store, es.windows.target_rows) for es in eval_sets}
    for es in eval_sets:
        keep = spread_sample(es.windows.store, es.windows.target_rows, plan.eval.max_samples, plan.seed)
        es.windows = Windows(es.windows.store, keep, es.windows.context_len)  # keep: a sorted subset of the rows
    return eval_sets, gate_splits


def _loss_terms(plan: Plan, host: PluginHost) -> list[LossTerm]:
    """Each [[loss]] as a guarded strategy with its weight, schedule or controller."""
    losses = []
    for lp in plan.losses:
        li = host.get("loss", lp.name, source=plan.source)
        control = controller_from_spec(lp.control, plan_weight=lp.weight, source=plan.source) if lp.control else None
        strategy = guard_call("its factory", li, li.obj, **lp.params)
        losses.append(LossTerm(lp.name, guard_loss(li, strategy), lp.weight, lp.schedule or WeightSchedule(), control,
                               origin=origin(li)))
    return losses


def _write_new_run(run: RunDir, plan: Plan, host: PluginHost, split: Split, resolved: dict[str, Any],
                   fingerprints: dict[str, Any], facts: dict[str, Any]) -> None:
    """A new run directory's first files: the plan as given, the split, the resolved plan and run.json."""
    run.write_text("plan.toml", plan.text if plan.text is not None else plan_to_toml(plan))
    split.save(run.path / "split.json")
    plugins = sorted({(i.plugin, i.dist, i.version) for i in host.all_items()})
    run.write_json("plan.resolved.json", {**resolved, "data_fingerprints": fingerprints,
                                          "split": {"sha256": split.sha256(), "rule": split.rule,
                                                    "sizes": {k: len(v) for k, v in split.parts.items()}},
                                          "plugins": [{"plugin": p, "distribution": d, "version": v} for p, d, v in plugins]})
    run.write_json("run.json", {"name": plan.name, "status": "created", "created": iso_time(time.time()),
                                "seed": plan.seed, "split_sha256": split.sha256(), "device": facts["device"],
                                "device_reason": facts["device_reason"], "model": plan.model.arch,
                                "n_params": facts["n_params"], "plan_source": plan.source,
                                "plan_dir": str(plan.base_dir), "data": fingerprints, "versions": versions(),
                                "argv": sys.argv, "world_size": facts["world_size"]})


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
    """The 5CAT battery at the seam the trainer leaves for it (lvm_core.evaluation.battery.run_battery);
    `splits` holds every window of each eval split (the battery draws its own samples). In a
    torchrun job each rank predicts its share of the samples. `fitted()` returns the run's
    fitted baselines (ridge, frame weights), judged beside copy-last."""
    from lvm_core.evaluation.battery import run_battery, torch_predictor

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
