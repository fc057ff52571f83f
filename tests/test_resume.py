"""Resume: on CPU with a fixed seed, a run stopped and resumed ends with exactly the weights of an
uninterrupted run, and its logs hold every step once."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import torch

from lvm_core.training.checkpoint import load_weights
from lvm_core.training.loop import train
from tests.conftest import make_tiny_store
from workbench.plugin_host import load_plugins
from workbench.plan import plan_from_text
from workbench.run_prep import prepare_run

torch.set_num_threads(1)

PLAN = """
name = "resume"
seed = 3
[data]
store = "tiny"
context_len = 3
[data.split]
fractions = { train = 0.7, val = 0.3 }
[model]
arch = "mlp"
params = { hidden_dim = 24, dropout = 0.2 }
[[loss]]
name = "mse"
[[loss]]
name = "directional_margin"
schedule = { kind = "step", epoch = 2, before = 0.0, after = 0.5 }
[[loss]]
name = "cosine"
weight = 0.1
control = { target_share = 0.3, smoothing = 0.5 }   # its state must survive the resume too
[train]
epochs = 3
batch_size = 8
device = "cpu"
warmup_steps = 3
log_every = 2
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    make_tiny_store(root / "tiny", lengths=(12,) * 10, dim=16)
    host = load_plugins(entry_points=False)
    return root, host, plan_from_text(PLAN, root, host=host)


def _stop_when(predicate, stop):
    def sink(event):
        if predicate(event):
            stop.set()
    return sink


def _metric_keys(run_dir):
    from lvm_core.rundir import RunDir

    return [(m["kind"], m["step"]) for m in RunDir(run_dir).read_jsonl("metrics.jsonl")]


@pytest.fixture(scope="module")
def uninterrupted(env):
    root, host, plan = env
    setup = prepare_run(plan, host, run_dir=root / "full")
    result = train(setup)
    assert result.status == "completed"
    return result, {k: v.clone() for k, v in setup.model.state_dict().items()}


@pytest.mark.parametrize("where", ["epoch_end", "mid_epoch"])
def test_stopped_and_resumed_run_ends_with_identical_weights(env, uninterrupted, where):
    root, host, plan = env
    full_result, full_weights = uninterrupted
    stop = threading.Event()
    if where == "epoch_end":
        pred = lambda e: e.kind == "EpochEnded" and e.epoch == 1  # noqa: E731
    else:
        pred = lambda e: e.kind == "StepLogged" and e.epoch == 2 and e.step % 2 == 0 and e.step > 10  # noqa: E731
    run_dir = root / f"stopped-{where}"
    first = train(prepare_run(plan, host, run_dir=run_dir), sinks=[_stop_when(pred, stop)], stop_event=stop)
    assert first.status == "stopped" and first.step < full_result.step

    setup = prepare_run(plan, host, resume=run_dir)
    second = train(setup)
    assert (second.status, second.step, second.epoch) == ("completed", full_result.step, 3)
    assert all(torch.equal(setup.model.state_dict()[k], full_weights[k]) for k in full_weights)
    assert all(torch.equal(load_weights(run_dir / "checkpoints" / "last")[k], full_weights[k]) for k in full_weights)

    keys = _metric_keys(run_dir)
    assert [k for k, n in Counter(keys).items() if n > 1] == []
    assert keys == _metric_keys(root / "full")
    from lvm_core.rundir import RunDir

    evals = [m for m in RunDir(run_dir).read_jsonl("metrics.jsonl") if m["kind"] == "EvalDone"]
    full_evals = [m for m in RunDir(root / "full").read_jsonl("metrics.jsonl") if m["kind"] == "EvalDone"]
    assert [e["metrics"]["val/cos"] for e in evals] == [e["metrics"]["val/cos"] for e in full_evals]
    info = RunDir(run_dir).read_json("run.json")
    assert info["status"] == "completed" and len(info["resumes"]) == 1


def test_resume_cuts_lines_written_after_the_checkpoint(env):
    root, host, plan = env
    stop = threading.Event()
    run_dir = root / "crashed"
    first = train(prepare_run(plan, host, run_dir=run_dir),
                  sinks=[_stop_when(lambda e: e.kind == "EpochEnded" and e.epoch == 1, stop)], stop_event=stop)
    # a crash after the checkpoint: lines from later steps and a half-written line
    with open(run_dir / "metrics.jsonl", "a") as fh:
        fh.write('{"kind": "StepLogged", "step": %d, "epoch": 2}\n{"kind": "StepLo' % (first.step + 1))
    with open(run_dir / "events.jsonl", "a") as fh:
        fh.write('{"kind": "Alert", "step": %d, "epoch": 2, "code": "x"}\n' % (first.step + 5))
    setup = prepare_run(plan, host, resume=run_dir)
    from lvm_core.rundir import RunDir

    run = RunDir(run_dir)
    assert max(m["step"] for m in run.read_jsonl("metrics.jsonl")) == first.step
    assert [e["kind"] for e in run.read_jsonl("events.jsonl")].count("RunEnded") == 0
    assert run.read_json("run.json")["resume_cut"] == {"metrics.jsonl": 2, "events.jsonl": 2}
    assert train(setup).status == "completed"
