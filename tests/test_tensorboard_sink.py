"""The built-in TensorBoard sink: off unless the plan enables it; when on, the event files hold
a scalar for every evaluation metric and baseline, equal to metrics.jsonl (read back with
TensorBoard's own reader)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import DEMO_STORE
from workbench.cli import main

PLAN = f"""
name = "tb"
[data]
store = "{DEMO_STORE}"
[model]
arch = "mlp"
params = {{ hidden_dim = 8 }}
[[loss]]
name = "cosine"
[train]
epochs = 2
batch_size = 256
threads = 1
[eval]
max_samples = 50
"""


def _run(tmp_path, extra=""):
    (tmp_path / "plan.toml").write_text(PLAN + extra)
    run_dir = tmp_path / "run"
    assert main(["--run", str(tmp_path / "plan.toml"), "--run-dir", str(run_dir), "--device", "cpu"]) == 0
    return run_dir


def test_off_unless_the_plan_enables_it(tmp_path):
    assert not (_run(tmp_path) / "tensorboard").exists()


def _read_back(tmp_path, extra: str, kind: str):
    """Run with the sink on; its event files read by TensorBoard's own reader, their scalar
    tags, and the metrics.jsonl records of `kind`."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = _run(tmp_path, extra + "[plugins]\ntensorboard = true\n")
    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    records = [r for r in (json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines())
               if r["kind"] == kind]
    return acc, set(acc.Tags()["scalars"]), records


def test_scalars_for_every_metric_and_baseline_read_back(tmp_path):
    acc, tags, evals = _read_back(tmp_path, "", "EvalDone")
    assert len(evals) == 2
    for ev in evals:
        finite = {k: v for k, v in ev["metrics"].items() if isinstance(v, (int, float)) and v == v}
        assert set(finite) <= tags  # every metric, baselines included (val/copy_last/cos, ...)
        for name, value in finite.items():
            [point] = [s for s in acc.Scalars(name) if s.step == ev["step"]]
            assert point.value == pytest.approx(value, rel=1e-6, abs=1e-6)
    assert {"val/cos", "val/copy_last/cos", "val/context_mean/cos"} <= tags
    assert any(t.startswith("epoch_avg/") for t in tags)  # the epoch-end train averages


def test_enabled_without_the_package_is_one_plan_line(tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    (tmp_path / "plan.toml").write_text(PLAN + "[plugins]\ntensorboard = true\n")
    assert main(["--run", str(tmp_path / "plan.toml"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "plugins.tensorboard" in err[0] and "lvm-workbench[tensorboard]" in err[0]


def test_every_logged_step_has_its_loss_terms_read_back(tmp_path):
    acc, tags, steps = _read_back(tmp_path, "[[loss]]\nname = \"mse\"\nweight = 0.5\n", "StepLogged")
    assert len(steps) > 2
    assert {"step/loss", "step/loss/cosine", "step/loss/mse", "step/lr", "step/w/mse"} <= tags
    for rec in steps:
        for name, value in rec["metrics"].items():
            [point] = [s for s in acc.Scalars(f"step/{name}") if s.step == rec["step"]]
            assert point.value == pytest.approx(value, rel=1e-6, abs=1e-7), (name, rec["step"])
    assert [s.step for s in acc.Scalars("step/loss")] == [r["step"] for r in steps]  # one point per logged step
