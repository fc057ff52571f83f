"""`lvm-workbench --run plan.toml`: train a plan without the screen.

Progress goes to stderr (a one-line bar with rate and ETA on a terminal, plain lines otherwise),
the final table of metrics beside the baselines to stdout. Exit codes (workbench/exit_codes.py):
0 done, 2 bad input, 3 a required gate failed or a stop tripwire fired, 130 interrupted (Ctrl-C saves `last` first; a
second Ctrl-C aborts at once), 1 a diverged or failed run, 4 the machine refused (no space, permission).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator, TextIO

from lvm_core.errors import InputError
from lvm_core.evaluation.gate_report import console_table, doc_score_text
from lvm_core.events import Alert, CheckpointSaved, EvalDone, Event, GatesDone, RunEnded, RunStarted, StepLogged
from lvm_core.progress import StatusLine, format_duration, progress_bar
from lvm_core.rundir import format_table, metrics_table
from lvm_core.training import distributed
from lvm_core.training.loop import RunResult, train

from . import exit_codes
from .checkpoint_plugins import check_run_plugins
from .plan import Plan, load_plan, load_run_plan, plan_to_dict
from .plugin_host import load_plugins, warn_problems
from .run_prep import prepare_run
from .seed_group import member_dirs, new_group, parse_seeds, seed_plan, write_group

def _beats(m: dict, split: str) -> str:
    """'beats baselines: yes' or 'no (ridge +0.004 [-0.002, +0.010])': the weakest lower bound."""
    gains = [k[: -len("/lo")] for k in m if k.startswith(f"{split}/gain/") and k.endswith("/lo")]
    if not gains:
        return "beats baselines: n/a"
    worst = min(gains, key=lambda g: m[f"{g}/lo"] if m[f"{g}/lo"] == m[f"{g}/lo"] else -1e9)
    verdict = "yes" if m.get(f"{split}/beats_baselines") == 1.0 else "no"
    return (f"beats baselines: {verdict} (vs {worst.rsplit('/', 1)[-1]} {m[worst]:+.4f} "
            f"[{m[worst + '/lo']:+.4f}, {m[worst + '/hi']:+.4f}])")


class ConsoleSink:
    """Prints trainer events for a person: a redrawn bar on a terminal, plain lines in a log."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.status = StatusLine(stream or sys.stderr, tty)
        self.out, self.tty = self.status.out, self.status.tty
        self.t0 = time.time()
        self.first_step: int | None = None
        self.epochs = 0

    def _line(self, text: str) -> None:
        self.status.line(text)

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.t0, self.epochs = event.t, event.epochs
            resumed = f", resumed from step {event.resumed_from_step}" if event.resumed_from_step is not None else ""
            self._line(f"run {event.name} -> {event.run_dir}\ndevice {event.device} ({event.device_reason}); "
                       f"{event.total_steps} steps in {event.epochs} epochs{resumed}")
            self.first_step = event.resumed_from_step or 0
        elif isinstance(event, StepLogged):
            done = event.step - (self.first_step or 0)
            left = event.total_steps - event.step
            eta = (event.t - self.t0) / done * left if done > 0 else 0.0
            loss = event.metrics.get("loss", float("nan"))
            frac = event.step / max(event.total_steps, 1)
            text = (f"epoch {event.epoch}/{self.epochs} step {event.step}/{event.total_steps} loss {loss:.4f} "
                    f"{event.samples_per_s:,.0f} samples/s ETA {format_duration(eta)}")
            self.status.redraw(f"{progress_bar(frac)} {frac:4.0%} {text}" if self.tty else text)
        elif isinstance(event, EvalDone):
            m = event.metrics
            parts = [f"epoch {event.epoch} eval:"]
            for split in ("val", "ood"):
                if f"{split}/cos" in m:
                    parts.append(f"{split} cos {m[f'{split}/cos']:.4f} margin_vs_last {m[f'{split}/margin_vs_last']:+.4f} "
                                 f"R@5_no_context {m[f'{split}/R@5_no_context']:.3f} (copy-last cos {m.get(f'{split}/copy_last/cos', float('nan')):.4f}, "
                                 f"ctx-mean {m.get(f'{split}/context_mean/cos', float('nan')):.4f}, "
                                 f"ridge {m.get(f'{split}/ridge/cos', float('nan')):.4f}; {_beats(m, split)});")
            self._line(" ".join(parts))
        elif isinstance(event, GatesDone):
            self._line(f"epoch {event.epoch} gates: {doc_score_text(event.results)}, {'passed' if event.passed else 'failed'}")
        elif isinstance(event, CheckpointSaved) and event.tag == "best":
            self._line(f"  best checkpoint: {event.metric} = {event.value:.4f}")
        elif isinstance(event, Alert):
            self._line(f"{'error' if event.level == 'error' else event.level}: [{event.code}] {event.message}")
        elif isinstance(event, RunEnded):
            self._line(f"run {event.status} at epoch {event.epoch}, step {event.step} "
                       f"({format_duration(event.t - self.t0)})")


@contextmanager
def stop_on_ctrl_c(stop: threading.Event, out: TextIO) -> Iterator[None]:
    """First Ctrl-C asks the trainer to stop (it saves `last`); the second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    presses = 0

    def handler(signum: int, frame: object) -> None:
        # counted before anything takes a lock: a second press can land inside the first
        # handler's stop.set(), which holds the Event's lock; asking the Event again there
        # deadlocked the process (a double Ctrl-C hung a run on a fresh clone)
        nonlocal presses
        presses += 1
        if presses > 1 or stop.is_set():
            # aborting: later presses are ignored, so none lands in a save or an atexit callback
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            raise KeyboardInterrupt
        stop.set()
        try:
            out.write("\nstopping: saving the last checkpoint (Ctrl-C again to abort)\n")
            out.flush()
        except RuntimeError:  # the press landed inside a write to the same stream
            pass

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        # after a stop the process is on its way out: a further Ctrl-C must not turn the
        # shutdown into an "Exception ignored in atexit callback" traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN if stop.is_set() else previous)


def final_report(result: RunResult, out: TextIO) -> None:
    """The table a person reads at the end: the model beside copy-last and the context mean."""
    rows = metrics_table(result.metrics)
    out.write(f"\nrun {result.status}: {result.run_dir}\n")
    if len(rows) > 1:
        out.write(format_table(rows) + "\n")
    best = result.best
    if best.get("value") is not None:
        out.write(f"best checkpoint: {best['metric']} = {best['value']:.4f} at epoch {best['epoch']} "
                  f"({result.run_dir}/checkpoints/best.safetensors)\n")
    if result.gates is not None:
        out.write("\n" + console_table(result.gates, color=out.isatty()) + "\n")
    if result.gates_passed is not None:
        out.write(f"gates: {'passed' if result.gates_passed else 'FAILED'} (see {result.run_dir}/gates.json)\n")
    if result.error:
        out.write(f"error: {result.error}\n")
    out.flush()


def run_from_args(args: argparse.Namespace, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """--run PLAN [--run-dir D] [--device X] [--resume RUN_DIR]; returns the exit code."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    if args.resume:
        check_run_plugins(args.resume)  # a missing model plugin is named by its distribution
        plan = load_run_plan(args.resume)
        for note in plan.notes:
            stderr.write(f"note: {note}\n")
        if args.run:
            given = load_plan(args.run)
            if plan_to_dict(given) != plan_to_dict(plan):
                raise InputError(args.run, f"differs from the plan of the run being resumed ({args.resume}/plan.toml); "
                                           "resume with --resume alone")
        if args.run_dir:
            raise InputError("--run-dir", "cannot be combined with --resume (the run continues in its own directory)")
        if getattr(args, "seeds", None):
            raise InputError("--seeds", "cannot be combined with --resume (resume each member run of a group alone)")
    else:
        plan = load_plan(args.run)
        for note in plan.notes:
            stderr.write(f"note: {note}\n")
        seeds = parse_seeds(args.seeds) if getattr(args, "seeds", None) else plan.seeds
        if seeds:
            return run_seed_group(plan, seeds, bool(getattr(args, "seed_splits", False)) or plan.seed_splits, args,
                                  stdout, stderr)
    return _run_one(plan, args, stdout, stderr)


def run_seed_group(plan: Plan, seeds: list[int], seed_splits: bool, args: argparse.Namespace,
                   stdout: TextIO, stderr: TextIO) -> int:
    """One run per seed into GROUP/seed<N> (workbench/seed_group.py), then the group's
    comparison: mean +- sd across seeds and pooled paired intervals against each baseline."""
    from lvm_core.evaluation.compare import render_group_text, run_rows

    group = new_group(plan, seeds, seed_splits, args.run_dir)
    stderr.write(f"seed group {plan.name}: seeds {', '.join(map(str, seeds))}"
                 f"{' (model and split)' if seed_splits else ' (model; the split stays)'} -> {group}\n")
    codes: dict[str, int] = {}
    for seed, member in zip(seeds, member_dirs(group, seeds)):
        one = argparse.Namespace(**{**vars(args), "run_dir": str(member), "resume": None})
        codes[member.name] = _run_one(seed_plan(plan, seed, seed_splits), one, stdout, stderr)
        if codes[member.name] == exit_codes.INTERRUPTED:
            break
    done = all(member.name in codes for member in member_dirs(group, seeds))
    write_group(group, plan, seeds, seed_splits, "completed" if done else "stopped", {"exit_codes": codes})
    stdout.write("\n" + render_group_text(run_rows([group])))
    worst = [c for c in codes.values() if c != exit_codes.OK]
    return max(worst) if worst else exit_codes.OK


def _run_one(plan: Plan, args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    host = load_plugins(plan.plugins.modules, plugin_paths=[plan.base_dir])
    warn_problems(host)
    setup = prepare_run(plan, host, run_dir=args.run_dir, device=args.device, resume=args.resume,
                        resume_from=getattr(args, "resume_from", "last") or "last")
    stop = threading.Event()
    with stop_on_ctrl_c(stop, stderr):
        try:
            result = train(setup, [ConsoleSink(stderr)], stop)
        finally:
            distributed.shutdown(setup.dist)
    if setup.dist.is_main:  # under torchrun the other ranks stay quiet
        final_report(result, stdout)
    if result.status == "stopped":
        # a stop tripwire is a failed check of the plan's own (its message is the run's error);
        # a stop with no reason is Ctrl-C or a stop request
        return exit_codes.GATE_FAILED if result.error else exit_codes.INTERRUPTED
    if result.status in ("diverged", "failed"):
        return exit_codes.ERROR
    if plan.gates is not None and plan.gates.required and result.gates_passed is False:
        return exit_codes.GATE_FAILED
    return exit_codes.OK
