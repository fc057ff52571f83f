"""Checkpoint generations, the run-folder lock and exact stops (issue 11).

Each test here failed before generations: a kill between the two files of a save, a kill before
the first checkpoint, a second process on a live run, and an abort in the middle of a step."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
import torch

from lvm_core.errors import InputError
from lvm_core.rundir import RunDir, claim_run_dir
from lvm_core.runlock import RunBusy, RunLock
from lvm_core.training.checkpoint import load_weights, save_checkpoint
from lvm_core.training.checkpointer import Checkpointer
from lvm_core.training.loop import train
from tests.test_resume import env, uninterrupted  # noqa: F401 - module fixtures shared with test_resume
from workbench.run_prep import prepare_run


def _same(weights, expected) -> bool:
    return set(weights) == set(expected) and all(torch.equal(weights[k], expected[k]) for k in expected)


def _meta(step: int) -> dict:
    return {"arch": "linear", "arch_params": {}, "input_dim": 2, "context_len": 1, "step": step, "epoch": 1}


def test_a_generation_is_complete_or_absent_and_the_newest_complete_one_wins(tmp_path):
    ck = Checkpointer(tmp_path / "checkpoints")
    model = torch.nn.Linear(2, 2)
    ck.save("last", model, _meta(10), {"step": 10})
    with torch.no_grad():
        model.weight.add_(1.0)
    ck.save("last", model, _meta(20), {"step": 20})
    # a kill while the third save was being written: its temporary folder, half a weights file
    half = tmp_path / "checkpoints" / ".gen-000003-step-30-last.123.abcd.tmp"
    half.mkdir()
    (half / "model.state.pt").write_bytes(b"\x80")
    assert ck.pick("last").step == 20
    assert _same(load_weights(tmp_path / "checkpoints" / "last"), dict(model.state_dict()))
    # the newest generation damaged afterwards (disk error): the one before it is taken
    newest = ck.pick("last").stem.with_suffix(".safetensors")
    newest.write_bytes(newest.read_bytes()[:40])
    assert ck.pick("last").step == 10
    assert ck.pick("step-10").step == 10
    with pytest.raises(InputError, match="no checkpoint at step 7 .kept: step-10, step-20"):
        ck.pick("step-7")
    with pytest.raises(InputError, match="no best checkpoint"):
        ck.pick("best")
    ck.rewind(ck.pick("step-10"))
    assert [g.step for g in ck.generations()] == [10] and not half.exists()


def test_pre_generation_run_folders_still_resume(tmp_path):
    model = torch.nn.Linear(2, 2)
    save_checkpoint(tmp_path / "last", model, _meta(5), {"step": 5})  # the layout before generations
    g = Checkpointer(tmp_path).pick("last")
    assert (g.seq, g.step, g.state()["step"]) == (-1, 5, 5)


def test_killed_before_the_first_checkpoint_resumes_from_step_0(env, uninterrupted):
    root, host, plan = env
    full_result, full_weights = uninterrupted
    run_dir = root / "killed-early"
    setup = prepare_run(plan, host, run_dir=run_dir)
    setup.lock.release()  # as if the process died here: plan, split and run.json written, no checkpoint
    (run_dir / "metrics.jsonl").write_text('{"kind": "StepLogged", "step": 2, "epoch": 1}\n')
    resumed = prepare_run(plan, host, resume=run_dir)
    assert resumed.resume_state is None
    result = train(resumed)
    assert (result.status, result.step) == ("completed", full_result.step)
    assert _same(resumed.model.state_dict(), full_weights)
    assert RunDir(run_dir).read_json("run.json")["resume_from"] == "step 0 (no checkpoint yet)"


def test_an_interrupt_raised_inside_a_step_resumes_bit_identically(env, uninterrupted):
    """A KeyboardInterrupt (a second Ctrl-C) in the middle of a step, after dropout has drawn
    random numbers: the save is the step's start, with the RNG of that moment."""
    root, host, plan = env
    full_result, full_weights = uninterrupted
    run_dir = root / "aborted"
    setup = prepare_run(plan, host, run_dir=run_dir)
    term = setup.losses[1]  # the second loss term: the first has already run the model this step
    inner, calls = term.strategy, []

    def interrupting(batch, model):
        calls.append(1)
        if len(calls) == 13:  # step 12 of 33, mid epoch 2, not a log step
            raise KeyboardInterrupt
        return inner(batch, model)

    term.strategy = interrupting
    first = train(setup)
    assert setup.lock.fd is None  # released when train ends
    assert first.status == "stopped" and first.step == 12
    assert Checkpointer(run_dir / "checkpoints").pick("last").step == 12
    resumed = prepare_run(plan, host, resume=run_dir)
    second = train(resumed)
    assert (second.status, second.step) == ("completed", full_result.step)
    assert _same(resumed.model.state_dict(), full_weights)


def test_a_second_process_on_a_live_run_is_refused_naming_its_pid(env, tmp_path):
    root, host, plan = env
    run_dir = tmp_path / "live"
    run_dir.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from lvm_core.runlock import RunLock; lock = RunLock(sys.argv[1]).acquire(); "
        "print('held', flush=True); time.sleep(60)"), str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunBusy, match=f"in use by process {holder.pid} "):
            RunLock(run_dir).acquire()
        with pytest.raises(RunBusy, match=f"in use by process {holder.pid} "):
            claim_run_dir(run_dir)  # --run --run-dir onto it
    finally:
        holder.kill()  # kill -9: the kernel drops the lock
        holder.wait()
    RunLock(run_dir).acquire().release()


def test_resume_of_a_running_run_exits_2(env, tmp_path, capsys):
    from workbench.cli import main

    root, host, plan = env
    run_dir = tmp_path / "busy"
    setup = prepare_run(plan, host, run_dir=run_dir)  # holds the lock, as a live run does
    try:
        before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
        assert main(["--resume", str(run_dir)]) == 2
        err = capsys.readouterr().err
        assert err == f"error: {run_dir}: in use by process {os.getpid()} (it holds .lock); wait for it to end or stop it first\n"
        assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before
    finally:
        setup.lock.release()
