"""The trainer: one loop that reads top to bottom (nanoGPT style), emitting events to sinks.

    setup = workbench.run_prep.prepare_run(plan, host)     # or build a TrainSetup by hand
    result = train(setup, sinks=[print], stop_event=threading.Event())

Read it top to bottom: `train` -> `prepare` (model, optimizer, `TrainState`, baselines) ->
`loop` (epochs of `train_step`, log points, then `validate` and `after_validation`). Everything
that changes while a run trains lives in one `TrainState` (lvm_core/training/state.py): a
checkpoint is `state.state_dict()` beside the weights, and resume is `load_state_dict()`.

Per optimizer step (`train_step`): set the lr from the schedule, run `grad_accum` micro-batches
(each gathered from the store with one indexing call on the device; one forward pass whose
prediction every loss term shares, then the weighted terms and backward), clip, step. Nothing waits for the device
except every `log_every` steps (StepLogged) and at epoch ends; a non-finite loss is remembered
on the device and noticed at those points, and since checkpoints are only written after such a
check, the last good checkpoint is never overwritten by a diverged model.

Train windows are drawn, each epoch, from the whole train split or, while [[data.filter]]
curricula are active, from the windows they keep (lvm_core/training/curriculum.py).

Per epoch (every `eval.every` epochs and always at the last): validation on a fixed, seeded
sample of each eval split (VAL, and OOD when given) with cos, margin_vs_last and within-article
R@1/R@5/MRR (R@k_article, R@k_no_context: lvm_core/evaluation/metric_names.py) beside copy-last and the context mean on the very same samples (those baselines are
computed once); the collapse alert; checkpoint selection on any logged metric; the gates seam; the plan's
tripwires (alert, stop, or roll back to `best` and lower a loss weight: lvm_core/training/tripwires.py);
early stopping; `last` checkpoint. A stop request (stop_event, Ctrl-C) saves `last` and ends
with status "stopped"; `--resume` continues from it to exactly the weights of an uninterrupted run.

The trainer knows nothing of the UI or the plugins: the workbench adds the sinks it wants.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from . import distributed
from .batch import Batch
from .checkpointer import Checkpointer
from .compiled import maybe_compile
from .curriculum import WindowSubset, epoch_index
from ..data.store import ArticleStore
from ..data.windows import Windows
from ..device import autocast_bf16
from .distributed import SINGLE, Dist
from ..errors import PluginFault
from ..evaluation.metric_names import RANK_SETS, rank_metric_names, upgrade_metrics
from ..evaluation.paired_eval import SAMPLES_FILE, PairedEval
from ..events import Alert, CheckpointSaved, EpochEnded, EvalDone, Event, GatesDone, RunEnded, RunStarted, Sink, StepLogged
from .exact_stop import StepMark, abortable
from ..failures import failure_reason, keep_traceback, record_failure
from ..models.fitted import FITTED_BASELINES, fit_rows
from ..rundir import RunDir, RunDirSink, iso_time, write_report
from .schedules import LrSchedule, WeightSchedule
from .state import Best, TrainState, improved
from .tripwires import Tripwire, TripwireBoard, lookup
from .validation import baseline_metrics, baseline_predictions, evaluate, fit_eval_baselines, has_nonfinite
from .weight_control import ShareController

STAT_PREFIX = "stat/"  # loss terms logged but never added to the loss (plugins/strategies.py)
EVAL_BASELINES = ("copy_last", "context_mean", *FITTED_BASELINES)  # the last two fitted on the train part


# ---- configuration ---------------------------------------------------------------------------

@dataclass
class TrainConfig:
    """The [train] table of a plan. Epochs count from 1; steps are optimizer steps from 0."""

    epochs: int = 6
    batch_size: int = 64  # windows per micro-batch; one optimizer step sees batch_size * grad_accum
    lr: float = 5e-4
    weight_decay: float = 0.01
    lr_schedule: str = "cosine"  # cosine | constant | plateau (plateau watches select_metric)
    warmup_steps: int = 50
    min_lr: float = 0.0
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    grad_clip: float = 1.0  # 0 = off
    grad_accum: int = 1
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    threads: int = 0  # torch CPU threads; 0 = torch's default
    bf16: bool = False  # bf16 autocast on CUDA
    deterministic: bool = False
    compile: bool = False  # torch.compile the model and loss terms (lvm_core/training/compiled.py; for GPUs)
    log_every: int = 20
    # val/cos: a prediction far from everything (cos ~0 to all) cannot win it, as it won val/margin_vs_last
    # (the quickstart's epoch 1: margin ~0, cos 0.41 below copy-last); docs/5cat.md
    select_metric: str = "val/cos"
    select_mode: str = "max"
    early_stop_metric: str = ""  # "" = off
    early_stop_mode: str = "max"
    early_stop_patience: int = 3
    collapse_drop: float = 0.05  # alert when val/cos falls by more than this in one evaluation; 0 = off


@dataclass
class EvalConfig:
    """The [eval] table of a plan."""

    max_samples: int = 2000  # per split, seeded sample spread across articles
    every: int = 1  # epochs between evaluations (the last epoch is always evaluated)
    batch_size: int = 1024


@dataclass
class LossTerm:
    """One [[loss]] entry: a strategy ``(batch, model) -> {term: tensor}`` and its weight, fixed,
    following a schedule, or set by a ShareController (`control`) from the logged averages.
    `scale` multiplies all of these: a tripwire rollback lowers it."""

    name: str
    strategy: Callable[[Batch, nn.Module], dict[str, torch.Tensor]]
    weight: float = 1.0
    schedule: WeightSchedule = field(default_factory=WeightSchedule)
    control: ShareController | None = None
    scale: float = 1.0
    origin: str = ""  # who defined the strategy ("plugin P (dist version)"), for fault messages

    def weight_at(self, epoch: int) -> float:
        if self.control is not None:
            w = self.control.weight if self.control.weight is not None else self.control.min_weight
        else:
            w = self.schedule.weight(epoch, base=self.weight)
        return w * self.scale if self.scale != 1.0 else w


@dataclass
class EvalSet:
    """A named evaluation split ("val", "ood"): the fixed sample of its windows."""

    name: str
    windows: Windows


@dataclass
class GateOutcome:
    """What the gate seam returns: the battery's score and verdict, its gates.json document,
    and flat metrics ("gates/score", ...) that checkpoint selection may watch."""

    score: int
    passed: bool
    results: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    battery: Any = None  # the full result object, for front ends that print the gate table


GateRunner = Callable[[nn.Module, int, int], GateOutcome]  # (model, epoch, step) -> outcome


@dataclass
class TrainSetup:
    """Everything `train` needs, resolved: built by workbench.run_prep.prepare_run (or a test)."""

    name: str
    run: RunDir
    model: nn.Module
    losses: list[LossTerm]
    train_windows: Windows
    eval_sets: list[EvalSet]
    config: TrainConfig
    eval: EvalConfig = field(default_factory=EvalConfig)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    device_reason: str = "cpu"
    seed: int = 0
    checkpoint_meta: dict[str, Any] = field(default_factory=dict)  # arch, arch_params, input_dim, context_len, ...
    gates: GateRunner | None = None
    gates_every: int = 0  # epochs between gate runs; 0 = only at the end
    sinks: list[Sink] = field(default_factory=list)  # sinks the workbench adds (plugin event hooks)
    resume_state: dict[str, Any] | None = None  # the .state.pt of the checkpoint to continue from
    lock: Any = None  # the run folder's RunLock (lvm_core/runlock.py), released when train ends
    tripwires: list[Tripwire] = field(default_factory=list)  # checked after every evaluation
    train_subsets: list[WindowSubset] = field(default_factory=list)  # curricula: windows kept per epoch
    resident_bytes: int = 2 << 30  # stores up to this size (as float32) live on the device
    dist: Dist = SINGLE  # this process's place in a torchrun job (lvm_core/training/distributed.py)
    fitted_baselines: Any = None  # ridge and frame weights fitted on the train part (set by train)


@dataclass
class RunResult:
    status: str  # completed | stopped | diverged | failed
    step: int
    epoch: int
    best: dict[str, Any]
    metrics: dict[str, float]  # the last evaluation
    gates_passed: bool | None
    run_dir: str
    error: str | None = None
    gates: Any = None  # the last GateOutcome.battery, when gates ran


def metric_names(splits: Iterable[str], loss_names: Iterable[str], gates: bool = False) -> set[str]:
    """Names a run is sure to log, for checking select/early-stop metrics before anything runs.
    (Strategies may log more terms; those are accepted at run time.)"""
    per_split = ("cos", "margin_vs_last", "cos_last", "nonfinite",
                 *(m for cset in RANK_SETS for m in rank_metric_names(cset) if not m.startswith(("chance_", "candidates"))))
    names = {"loss", *(f"loss/{n}" for n in loss_names)}
    names |= {f"train/{n}" for n in names}
    for s in splits:
        names |= {f"{s}/{m}" for m in per_split}
        names |= {f"{s}/{m}" for cset in RANK_SETS for m in rank_metric_names(cset)}  # chance levels, candidates
        names |= {f"{s}/{b}/{m}" for b in EVAL_BASELINES for m in per_split}
        names |= {f"{s}/gain/{b}{end}" for b in EVAL_BASELINES for end in ("", "/lo", "/hi")}
        names.add(f"{s}/beats_baselines")
    if gates:
        names |= {"gates/score", "gates/passed"}
    return names


# ---- batches from the store ------------------------------------------------------------------

class BatchSource:
    """Gathers batches of one store on the device with tensor indexing, no per-sample Python.

    On CPU the tensor is the store's memory map itself (no copy, in the store's dtype): resident
    memory stays at the store's bytes whatever its size, and processes of a torchrun job share
    the pages. On a GPU, stores up to `resident_bytes` (as float32) are copied to the device once
    so windows are gathered there; larger ones are gathered on the host with one numpy indexing
    call per batch. `resident_bytes=0` forces that host path everywhere.
    """

    def __init__(self, store: ArticleStore, context_len: int, device: torch.device, resident_bytes: int) -> None:
        self.store, self.L, self.device = store, context_len, device
        n, d = store.vectors.shape
        self.resident = resident_bytes > 0 and (device.type == "cpu" or n * d * 4 <= resident_bytes)
        self.vectors: torch.Tensor | None = None
        if self.resident and device.type == "cpu":
            self.vectors = mapped_tensor(store.vectors)
        elif self.resident:
            self.vectors = torch.from_numpy(np.array(store.vectors, dtype=np.float32)).to(device)
        self.row_article_t = torch.from_numpy(np.asarray(store.row_article)).to(device)
        self.offsets = torch.arange(-context_len, 0, device=device)

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """Vectors at `rows` (any shape), float32 on the device."""
        if self.vectors is not None:
            v = self.vectors[rows]
            return v if v.dtype == torch.float32 else v.float()
        host = torch.from_numpy(self.store.gather(rows.cpu().numpy()))
        return host.to(self.device, non_blocking=True)

    def row_article(self, rows: torch.Tensor) -> torch.Tensor:
        """Article position of each row, -1 outside the store."""
        n = self.row_article_t.shape[0]
        inside = (rows >= 0) & (rows < n)
        return torch.where(inside, self.row_article_t[rows.clamp(0, n - 1)], torch.full_like(rows, -1))

    def batch(self, target_rows: torch.Tensor, epoch: int, step: int) -> Batch:
        ctx_rows = target_rows[:, None] + self.offsets[None, :]
        return Batch(contexts=self.gather(ctx_rows), targets=self.gather(target_rows),
                     article=self.row_article_t[target_rows], target_rows=target_rows, epoch=epoch, step=step,
                     gather=self.gather, row_article=self.row_article)


def mapped_tensor(array: np.ndarray) -> torch.Tensor:
    """A read-only tensor over a (memory-mapped) numpy array without copying it; nothing ever
    writes to it, so torch's warning about non-writable arrays does not apply."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffle of epoch `epoch`: a pure function of (seed, epoch), so a resumed run repeats it."""
    return np.random.default_rng([seed, epoch]).permutation(n)


# ---- one run's fixed parts -------------------------------------------------------------------

def adamw(groups: list[dict[str, Any]], lr: float) -> torch.optim.Optimizer:
    """AdamW, fused where torch has a fused kernel for the device (on CPU it is ~3x faster than
    the default for-loop version, a quarter of a step for the reference transformer)."""
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(groups, lr=lr)


def optimizer_for(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer | None:
    """AdamW with weight decay on matrices only; None when the model has nothing to train."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    if not (decay or no_decay):
        return None
    return adamw([{"params": decay, "weight_decay": cfg.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}], cfg.lr)


class _Emitter:
    """Sends each event to the run directory (errors propagate: a run that cannot record itself
    must fail) and to every other sink (a raising sink becomes an Alert, training goes on)."""

    def __init__(self, run_sink: Sink, sinks: Sequence[Sink]) -> None:
        self.run_sink, self.sinks = run_sink, list(sinks)

    def __call__(self, event: Event) -> None:
        self.run_sink(event)
        for sink in self.sinks:
            try:
                sink(event)
            except Exception as exc:  # noqa: BLE001 - a sink's bug must not stop training
                if isinstance(event, Alert) and event.code in ("plugin_error", "sink_error"):
                    continue  # never loop on a failing alert
                code = getattr(exc, "code", "sink_error")
                self(Alert(getattr(event, "epoch", 0), getattr(event, "step", 0), "warning", code,
                           str(exc) or type(exc).__name__))


@dataclass
class LogWindow:
    """The running sums of the loss terms since the last log point, kept on the device (read
    only at log points, so no step waits for it). Sums are replaced, never updated in place,
    so a StepMark's copy of the dict stays the state of its moment."""

    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    n: int = 0  # micro-batches summed
    samples: int = 0  # windows trained on
    t0: float = field(default_factory=time.time)

    def add(self, name: str, value: torch.Tensor) -> None:
        self.sums[name] = value if name not in self.sums else self.sums[name] + value

    def means(self) -> torch.Tensor:
        return torch.stack(list(self.sums.values())).div(self.n)


class RunContext:
    """What stays fixed while one run trains: the setup, where events go, the module and loss
    strategies the step calls, the batch source, the checkpointer, the baselines' numbers; plus
    the step in progress (its lr, weights and StepMark) for the logs and an abort."""

    def __init__(self, setup: TrainSetup, sinks: Sequence[Sink], stop_event: threading.Event,
                 model: nn.Module, trainable: bool) -> None:
        cfg, dev, ddp = setup.config, setup.device, setup.dist
        self.setup, self.cfg, self.device, self.ddp, self.stop_event = setup, cfg, dev, ddp, stop_event
        # in a torchrun job rank 0 alone records the run (files, console, plugin hooks)
        self.emit: Callable[[Event], None] = _Emitter(RunDirSink(setup.run), [*setup.sinks, *sinks]) if ddp.is_main else _silent
        self.trainable, self.per_step = trainable, cfg.batch_size * cfg.grad_accum
        self.n_train = len(setup.train_windows)
        self.total_steps = sum(self.steps_in(e) for e in range(1, cfg.epochs + 1))
        self.source = BatchSource(setup.train_windows.store, setup.train_windows.context_len, dev, setup.resident_bytes)
        self.net, self.strategies = maybe_compile(distributed.wrap(ddp, model, dev), setup.losses, cfg.compile)
        # one forward pass per micro-batch, shared by the loss terms (unless none of them reads it)
        self.shared_prediction = any(getattr(t.strategy, "uses_prediction", True) for t in setup.losses)
        self.train_rows = torch.from_numpy(setup.train_windows.target_rows).to(dev)
        self.checkpoints = Checkpointer(setup.run.checkpoints)
        self.base_metrics: dict[str, float] = {}
        self.paired: PairedEval | None = None
        self.stop_agreed = False  # torchrun: a stop request all ranks agreed on at the last log point
        self.gates_passed: bool | None = None
        self.last_battery: Any = None
        self.mark: StepMark | None = None  # the start of the step in progress (what an abort may save)
        self.lr, self.weights, self.last_log_step = 0.0, {}, 0

    # ---- the data of an epoch -----------------------------------------------------------
    def steps_in(self, epoch: int) -> int:
        idx = epoch_index(self.setup.train_subsets, epoch)
        return ((self.n_train if idx is None else len(idx)) // self.per_step) if self.trainable else 0

    def epoch_rows(self, epoch: int) -> torch.Tensor:
        """The store rows of the epoch's train targets in the epoch's order (curricula: only those kept)."""
        keep = epoch_index(self.setup.train_subsets, epoch)
        order = torch.from_numpy(epoch_order(self.n_train if keep is None else len(keep), self.setup.seed, epoch))
        order = order.to(self.device)
        return self.train_rows[order] if keep is None else self.train_rows[torch.from_numpy(keep).to(self.device)[order]]

    def micro_rows(self, epoch_rows: torch.Tensor, done_in_epoch: int, micro: int) -> torch.Tensor:
        """This process's rows of micro-batch `micro` of the epoch's next step."""
        start = (done_in_epoch * self.cfg.grad_accum + micro) * self.cfg.batch_size
        return distributed.local_rows(self.ddp, epoch_rows[start:start + self.cfg.batch_size])

    def stop_requested(self) -> bool:
        return self.stop_agreed if self.ddp.active else self.stop_event.is_set()

    # ---- recording ----------------------------------------------------------------------
    def log_step(self, s: TrainState, values: dict[str, float], rate: float) -> None:
        self.emit(StepLogged(s.step, s.epoch, self.total_steps,
                             {**values, "lr": self.lr, **{f"w/{k}": w for k, w in self.weights.items()}}, rate))

    def save(self, s: TrainState, tag: str, metric: str | None = None, value: float | None = None,
             rng: dict[str, Any] | None = None) -> None:
        """A checkpoint generation of the weights and `s` (rank 0 writes; the others only report)."""
        if not weights_finite(s.model):  # a last update can poison the weights with a finite loss
            raise _Diverged(f"non-finite weights at step {s.step}; stopped, the last good checkpoint is kept")
        meta = {**self.setup.checkpoint_meta, "step": s.step, "epoch": s.epoch, "metrics": s.last_eval, "tag": tag}
        if self.ddp.is_main:
            path = self.checkpoints.save(tag, s.model, meta, s.state_dict(rng))
        else:
            path = self.setup.run.checkpoint(tag)
        self.emit(CheckpointSaved(s.epoch, s.step, str(path), tag, metric, value))

    def finish(self, s: TrainState, status: str, error: str | None = None) -> RunResult:
        self.emit(RunEnded(status, s.step, s.epoch, best=s.best.as_dict(), error=error))
        if self.ddp.is_main:
            write_report(self.setup.run)
        return RunResult(status, s.step, s.epoch, s.best.as_dict(), s.last_eval, self.gates_passed,
                         str(self.setup.run.path), error, self.last_battery)


# ---- the loop --------------------------------------------------------------------------------

def train(setup: TrainSetup, sinks: Sequence[Sink] = (), stop_event: threading.Event | None = None) -> RunResult:
    """Train `setup.model`, evaluating and checkpointing into `setup.run`; see the module doc.
    Whatever fails, run.json says `failed` with a one-line reason and the run folder's lock is
    released (lvm_core/failures.py)."""
    try:
        return _train(setup, sinks, stop_event or threading.Event())
    except Exception as exc:
        record_failure(setup.run, exc)  # a failure before the loop (or one finish() could not record)
        raise
    finally:
        if setup.lock is not None:
            setup.lock.release()


def _train(setup: TrainSetup, sinks: Sequence[Sink], stop_event: threading.Event) -> RunResult:
    rc, s = prepare(setup, sinks, stop_event)
    try:
        return loop(rc, s)
    except (KeyboardInterrupt, PluginFault) as exc:
        return _abort(rc, s, exc)
    except _Diverged as exc:
        rc.emit(Alert(s.epoch, s.step, "error", "diverged", str(exc)))
        return rc.finish(s, "diverged", str(exc))
    except Exception as exc:
        keep_traceback(setup.run.path, exc)
        try:
            rc.finish(s, "failed", failure_reason(exc))
        except Exception:  # noqa: BLE001 - the original error is the one to report
            pass
        raise


def train_step(rc: RunContext, s: TrainState, epoch_rows: torch.Tensor, log: LogWindow) -> None:
    """One optimizer step: `grad_accum` micro-batches of forward, weighted loss and backward,
    then clipping and the update. Nothing here waits for the device."""
    cfg = rc.cfg
    rc.lr = s.schedule.lr_at(s.step)
    for group in s.optimizer.param_groups:
        group["lr"] = rc.lr
    rc.weights = {t.name: t.weight_at(s.epoch) for t in s.losses}
    rc.mark = StepMark.take(log.sums, log.n, log.samples)
    for micro in range(cfg.grad_accum):
        batch = rc.source.batch(rc.micro_rows(epoch_rows, s.done_in_epoch, micro), s.epoch, s.step)
        with autocast_bf16(rc.device, cfg.bf16), distributed.no_sync(rc.net, micro < cfg.grad_accum - 1):
            if rc.shared_prediction:
                batch.share_prediction(rc.net(batch.contexts))  # the forward pass
            loss = weighted_loss(batch, rc.net, rc.strategies, s.losses, rc.weights, log)
        if loss is None:  # every weight is 0 this epoch: nothing to learn from
            loss = torch.zeros((), device=rc.device)
        else:
            (loss if cfg.grad_accum == 1 else loss / cfg.grad_accum).backward()
        log.add("loss", loss.detach())
        log.n += 1
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(s.model.parameters(), cfg.grad_clip)
    rc.mark.computing = False
    s.optimizer.step()
    s.optimizer.zero_grad(set_to_none=True)
    s.step += 1
    s.done_in_epoch += 1
    log.samples += rc.per_step


def weighted_loss(batch: Batch, net: nn.Module, strategies: dict[str, Callable], losses: Sequence[LossTerm],
                  weights: dict[str, float], log: LogWindow) -> torch.Tensor | None:
    """Sum of every term's weight x value (None when every weight is 0); each term, weighted
    or not, is added to the log window as loss/<term>[/<key>]."""
    loss: torch.Tensor | None = None
    for term in losses:
        w = weights[term.name]
        for key, value in strategies[term.name](batch, net).items():
            log.add(f"loss/{term.name}" if key == term.name else f"loss/{term.name}/{key}", value.detach().float())
            if w != 0.0 and not key.startswith(STAT_PREFIX):
                part = value.float() if w == 1.0 else w * value.float()
                loss = part if loss is None else loss + part
    return loss


def loop(rc: RunContext, s: TrainState) -> RunResult:
    """Epochs of optimizer steps, logging every `log_every` steps; each epoch ends with
    validation, checkpoint selection, tripwires, early stopping and the `last` checkpoint."""
    cfg = rc.cfg
    while s.epoch <= cfg.epochs:
        epoch_rows, steps = rc.epoch_rows(s.epoch), rc.steps_in(s.epoch)
        log = LogWindow()
        while s.done_in_epoch < steps:
            train_step(rc, s, epoch_rows, log)
            end_of_epoch = s.done_in_epoch >= steps
            due = s.step % cfg.log_every == 0 or end_of_epoch
            if due or (rc.stop_event.is_set() and not rc.ddp.active):  # a stop logs its partial window
                means, rc.stop_agreed = distributed.reduce_log(rc.ddp, log.means(), rc.stop_event.is_set())
                values = dict(zip(log.sums, means.tolist()))
                if not math.isfinite(values["loss"]):  # a NaN or Inf in any step poisons the sum
                    msg = (f"non-finite loss{_nonfinite_terms(s.losses, values)} between step {rc.last_log_step} "
                           f"and step {s.step}; stopped, the last good checkpoint is kept")
                    rc.emit(Alert(s.epoch, s.step, "error", "diverged", msg))
                    return rc.finish(s, "diverged", msg)
                rc.last_log_step = s.step
                if due:
                    _update_controls(s.losses, values, rc.weights)
                now = time.time()
                rc.log_step(s, values, log.samples / max(now - log.t0, 1e-9))
                s.add_train_means(values, log.n)
                log = LogWindow(t0=now)
            if rc.stop_requested() and not end_of_epoch:
                rc.save(s, "last")
                return rc.finish(s, "stopped")

        rc.emit(EpochEnded(s.epoch, s.step, s.train_means()))
        stop_reason: str | None = None
        stop_early = False
        if s.epoch % max(rc.setup.eval.every, 1) == 0 or s.epoch == cfg.epochs:
            validate(rc, s)
            stop_reason, stop_early = after_validation(rc, s)
        s.sums, s.n_sum = {}, 0
        rc.save(s, "last")
        if stop_reason is not None:
            return rc.finish(s, "stopped", stop_reason)
        if stop_early:
            rc.emit(Alert(s.epoch, s.step, "info", "early_stop",
                          f"{cfg.early_stop_metric} did not improve for {s.early.bad} evaluation(s); stopping"))
            return rc.finish(s, "completed")
        if rc.stop_requested() and s.epoch < cfg.epochs:
            return rc.finish(s, "stopped")
        s.epoch += 1
        s.done_in_epoch = 0
    s.epoch = cfg.epochs
    return rc.finish(s, "completed")


# ---- before the loop -------------------------------------------------------------------------

def fit_closed_form_start(model: nn.Module, windows: Windows, seed: int) -> dict[str, Any]:
    """`model.fit_on` the train windows its fit uses: only `fit_rows`' seeded subset is gathered
    from the store (the fit caps itself there anyway); a seed-scale train part read whole
    was 7.6 GB before the first step."""
    rows = fit_rows(len(windows), seed)
    picked = slice(None) if rows is None else rows
    ctx, tgt = windows.batch(picked)
    return model.fit_on(ctx, tgt, articles=windows.article_pos[picked], seed=seed)


def prepare(setup: TrainSetup, sinks: Sequence[Sink], stop_event: threading.Event) -> tuple[RunContext, TrainState]:
    """The model on its device (closed-form ones fitted), the optimizer, schedule and state
    (fresh or resumed), the run's start recorded, and the baselines computed once."""
    cfg, dev = setup.config, setup.device
    model = setup.model.to(dev)
    model.train()
    if hasattr(model, "fit_on"):  # closed-form starts (ridge, frame weights) are fitted on the train split first
        fit_closed_form_start(model, setup.train_windows, setup.seed)
        model.to(dev)
    optimizer = optimizer_for(model, cfg)
    rc = RunContext(setup, sinks, stop_event, model, trainable=optimizer is not None)
    sched = LrSchedule(cfg.lr, cfg.lr_schedule, cfg.warmup_steps, max(1, rc.total_steps), cfg.min_lr,
                       cfg.plateau_factor, cfg.plateau_patience, cfg.select_mode)
    s = TrainState(model, optimizer, sched, setup.losses, TripwireBoard(setup.tripwires),
                   Best(cfg.select_metric, cfg.select_mode))
    resumed_from = None
    if setup.resume_state is not None:
        s.load_state_dict(setup.resume_state)
        resumed_from = s.step
        if s.done_in_epoch >= rc.steps_in(s.epoch):  # saved at an epoch end: start the next epoch
            s.next_epoch()
    rc.last_log_step = s.step
    _record_start(rc, s, resumed_from)
    fitted = setup.fitted_baselines = fit_eval_baselines(setup.train_windows, setup.seed)
    if setup.dist.is_main:
        setup.run.update_run(baselines=fitted.record)
    base_preds = baseline_predictions(setup.eval_sets, fitted.predictors)
    rc.base_metrics = baseline_metrics(setup.eval_sets, base_preds)
    rc.paired = PairedEval(setup.eval_sets, base_preds, seed=setup.seed)
    return rc, s


def _record_start(rc: RunContext, s: TrainState, resumed_from: int | None) -> None:
    """run.json's start (or one more resume), RunStarted, and the curricula's sizes."""
    setup, run = rc.setup, rc.setup.run
    s.started_t = time.time()
    if resumed_from is None and rc.ddp.is_main:
        run.update_run(started=iso_time(s.started_t), started_t=s.started_t, elapsed_before_s=0.0)
    elif rc.ddp.is_main:
        resumes = run.read_json("run.json").get("resumes", [])
        run.update_run(started_t=s.started_t, elapsed_before_s=s.elapsed_before,
                       resumes=[*resumes, {"at": iso_time(s.started_t), "from_step": resumed_from}])
    rc.emit(RunStarted(str(run.path), setup.name, str(rc.device), setup.device_reason, rc.total_steps,
                       rc.cfg.epochs, resumed_from_step=resumed_from))
    if resumed_from is None:
        for sub in setup.train_subsets:
            cut = f" (cut at {sub.threshold:.4f})" if sub.threshold is not None else ""
            rc.emit(Alert(0, 0, "info", "curriculum",
                          f"data filter {sub.label}: {len(sub.index)} of {rc.n_train} train windows{cut}"))


# ---- the end of an epoch ---------------------------------------------------------------------

def validate(rc: RunContext, s: TrainState) -> None:
    """s.last_eval: the model's numbers on every eval split beside the baselines', the train
    averages, the paired comparison and, when due, the gates; the same on every rank."""
    setup, ecfg = rc.setup, rc.setup.eval
    model_preds: dict[str, np.ndarray] = {}
    s.last_eval = {**evaluate(s.model, setup.eval_sets, rc.device, ecfg.batch_size, rc.ddp, preds_out=model_preds),
                   **rc.base_metrics, **{f"train/{k}": v for k, v in s.train_means().items()}}
    s.last_eval.update(rc.paired.metrics(model_preds))
    if rc.ddp.is_main:
        rc.paired.save(setup.run.path / SAMPLES_FILE, s.epoch)
    if setup.gates is not None and ((setup.gates_every and s.epoch % setup.gates_every == 0) or s.epoch == rc.cfg.epochs):
        outcome = setup.gates(s.model, s.epoch, s.step)
        s.model.train()
        rc.gates_passed, rc.last_battery = outcome.passed, outcome.battery
        s.last_eval.update(outcome.metrics)
        rc.emit(GatesDone(s.epoch, s.step, outcome.score, outcome.passed, outcome.results))
    s.last_eval = distributed.broadcast_json(rc.ddp, s.last_eval)  # every rank decides alike
    rc.emit(EvalDone(s.epoch, s.step, s.last_eval))


def after_validation(rc: RunContext, s: TrainState) -> tuple[str | None, bool]:
    """The collapse alert, the plateau schedule, the best checkpoint, the tripwires and early
    stopping, on s.last_eval. Returns (a tripwire's stop reason, whether to stop early)."""
    cfg, ev = rc.cfg, s.last_eval
    cos = ev.get("val/cos")
    if cfg.collapse_drop > 0 and s.prev_cos is not None and cos is not None and s.prev_cos - cos > cfg.collapse_drop:
        rc.emit(Alert(s.epoch, s.step, "warning", "collapse",
                      f"val/cos fell from {s.prev_cos:.4f} to {cos:.4f} (more than {cfg.collapse_drop}) in one epoch"))
    s.prev_cos = cos if cos is not None else s.prev_cos
    selected = _lookup(ev, cfg.select_metric)
    s.schedule.observe(selected)
    if improved(selected, s.best.value, cfg.select_mode) and not has_nonfinite(ev):
        s.best.value, s.best.epoch, s.best.step = selected, s.epoch, s.step
        rc.save(s, "best", cfg.select_metric, selected)
    stop_reason = _check_tripwires(rc, s)
    stop_early = False
    if cfg.early_stop_metric:
        stop_early = s.early.observe(_lookup(ev, cfg.early_stop_metric), cfg.early_stop_mode) >= cfg.early_stop_patience
    return stop_reason, stop_early


def _check_tripwires(rc: RunContext, s: TrainState) -> str | None:
    """Alert, roll back or stop as the plan's tripwires say; returns the first stop's reason."""
    firings, problems = s.tripwires.check(s.epoch, s.last_eval)
    for msg in problems:
        rc.emit(Alert(s.epoch, s.step, "warning", "tripwire_metric", msg))
    compare_next_with = s.last_eval
    stop_reason: str | None = None
    for f in firings:
        note = ""
        if f.tripwire.action == "rollback":
            note, restored = _rollback(rc, s, f.tripwire)
            if restored is not None:
                compare_next_with = restored
                s.prev_cos = restored.get("val/cos", s.prev_cos)
            note = f": {note}"
        rc.emit(Alert(s.epoch, s.step, "warning", "tripwire", f.message + note))
        if f.tripwire.action == "stop" and stop_reason is None:
            stop_reason = f.message
    s.tripwires.remember(compare_next_with)
    return stop_reason


def _rollback(rc: RunContext, s: TrainState, tw: Tripwire) -> tuple[str, dict[str, float] | None]:
    """Restore the best checkpoint's weights and optimizer state, lower the named weight.
    Returns what was done and the restored checkpoint's evaluation (None if there was none)."""
    done, restored = [], None
    distributed.barrier(rc.ddp)  # rank 0 has written `best`
    best_gen = [g for g in rc.checkpoints.generations() if g.tag == "best"]
    if s.best.epoch is not None and best_gen:
        s.model.load_state_dict(best_gen[-1].weights(device=rc.device))
        st = best_gen[-1].state()
        if s.optimizer is not None:
            s.optimizer.load_state_dict(st["optimizer"])
        restored = upgrade_metrics({k: float(v) for k, v in st.get("last_eval", {}).items()})
        done.append(f"restored the best checkpoint (epoch {s.best.epoch}, {s.best.metric} = {s.best.value:.4f})")
    else:
        done.append("no best checkpoint yet, weights kept")
    if tw.lower is not None:
        term = next(t for t in s.losses if t.name == tw.lower.loss)
        term.scale *= tw.lower.factor
        done.append(f"weight of {term.name} x{tw.lower.factor:g} (now {term.weight_at(s.epoch + 1):.4g} at epoch {s.epoch + 1})")
    return "; ".join(done), restored


def _abort(rc: RunContext, s: TrainState, exc: BaseException) -> RunResult:
    """Ctrl-C or a plugin's fault: back to the start of the interrupted step (its RNG, its log
    window) and saved exactly there when the weights are untouched (lvm_core/training/exact_stop.py)."""
    mark = rc.mark
    if abortable(mark) and not rc.ddp.active and weights_finite(s.model):
        if mark.log_n:
            values = dict(zip(mark.log_sums, torch.stack(list(mark.log_sums.values())).div(mark.log_n).tolist()))
            if math.isfinite(values["loss"]):
                rc.log_step(s, values, 0.0)
                s.add_train_means(values, mark.log_n)
                rc.save(s, "last", rng=mark.rng)
        else:
            rc.save(s, "last", rng=mark.rng)
    if isinstance(exc, PluginFault):  # a plugin's bug: one line naming it; --resume repeats the step
        rc.emit(Alert(s.epoch, s.step, "error", "plugin_fault", str(exc)))
        return rc.finish(s, "failed", str(exc))
    return rc.finish(s, "stopped")


def _silent(event: Event) -> None:
    """The event sink of ranks other than 0 in a torchrun job."""


class _Diverged(Exception):
    """Raised inside the loop when the weights are no longer finite."""


def weights_finite(model: nn.Module) -> bool:
    """True when every parameter is finite (one device sync; called only before a save)."""
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _nonfinite_terms(losses: Sequence[LossTerm], values: dict[str, float]) -> str:
    """' in term loss/x (plugin P (dist version))' for the logged terms that are not finite."""
    bad = [k for k, v in values.items() if k != "loss" and not math.isfinite(v)]
    if not bad:
        return ""
    named = []
    for k in bad:
        entry = k.split("/")[1] if k.startswith("loss/") else ""
        who = next((t.origin for t in losses if t.name == entry and t.origin), "")
        named.append(f"{k} ({who})" if who else k)
    return " in term " + ", ".join(named)


def _update_controls(losses: Sequence[LossTerm], values: dict[str, float], weights: dict[str, float]) -> None:
    """Feed each controlled term's average over the last logging window (its unweighted value and
    the weighted rest of the loss) to its controller. Done at log steps, not every step, so the
    controller costs no extra wait for the device."""
    for t in losses:
        if t.control is None:
            continue
        mine = [v for k, v in values.items()
                if (k == f"loss/{t.name}" or k.startswith(f"loss/{t.name}/")) and f"/{STAT_PREFIX}" not in k]
        term = sum(mine)
        t.control.update(term, values["loss"] - weights[t.name] * term)


def _lookup(metrics: dict[str, float], name: str) -> float:
    """A metric's value (tripwires.lookup); NaN when the run did not log it (NaN never counts
    as an improvement)."""
    v = lookup(metrics, name)
    return float("nan") if v is None else v
