"""The real CLI on the bundled demo data: `--run` with a tiny plan (exit code, files, final
table), a bad plan (one line per problem, exit 2), Ctrl-C (exit 130, `last` saved) and --resume,
`runs ls/show`, and a raising plugin event hook turned into an Alert."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from lvm_core.rundir import RunDir
from tests.conftest import DEMO_STORE, OOD_STORE, ROOT, make_tiny_store
from workbench import hookimpl
from workbench.cli import main

needs_demo = pytest.mark.skipif(not (DEMO_STORE.is_dir() and OOD_STORE.is_dir()),
                                reason="bundled stores examples/data/python-docs-minilm and kjv-minilm not built yet")

TINY_PLAN = f"""
name = "tiny"
seed = 0
[data]
store = "{DEMO_STORE}"
ood = "{OOD_STORE}"
[model]
arch = "transformer"
params = {{ d_model = 32, num_layers = 1, nhead = 2, dim_feedforward = 64 }}
[[loss]]
name = "cosine"
[train]
epochs = EPOCHS
batch_size = 128
threads = 1
log_every = 10
[eval]
max_samples = 200
[gates]
samples = 100
horizon = 2
required = true
"""


def _plan(tmp_path, epochs=2, name="plan.toml"):
    p = tmp_path / name
    p.write_text(TINY_PLAN.replace("EPOCHS", str(epochs)))
    return p


@needs_demo
def test_run_writes_a_complete_run_and_the_table(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = main(["--run", str(_plan(tmp_path)), "--run-dir", str(run_dir), "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 3, err  # the tiny model fails the required 5CAT battery
    assert "A offset sweep" in out and "5CAT (standard): FAIL" in out  # the gate table is printed
    files = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())
    gens = sorted({f.split("/")[1] for f in files if f.startswith("checkpoints/gen-")})
    tags = [g.rsplit("-", 1)[1] for g in gens]
    assert sorted(tags) == ["best", "last", "last"]  # the newest `best` and the two newest `last`
    files = [f for f in files if not f.startswith("checkpoints/gen-")]
    assert files == [".lock", "checkpoints/best.safetensors", "checkpoints/last.safetensors", "eval_samples.npz", "events.jsonl", "gates.json", "metrics.jsonl", "plan.resolved.json",
                     "plan.toml", "report.md", "run.json", "split.json"]
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "completed" and info["epoch"] == 2 and info["device"] == "cpu"
    table = [line.split() for line in out.splitlines() if line.startswith(("val ", "ood "))]
    assert [row[:2] for row in table] == [[s, p] for s in ("val", "ood")
                                          for p in ("model", "copy_last", "context_mean", "ridge", "frame_weights", "chance")]
    assert "gates: FAILED" in out and "epoch 2 eval:" in err
    assert "ridge " in err and "beats baselines: no (vs " in err  # the console shows the fitted baselines too
    last = [m for m in RunDir(run_dir).read_jsonl("metrics.jsonl") if m["kind"] == "EvalDone"][-1]["metrics"]
    for b in ("copy_last", "context_mean", "ridge", "frame_weights"):
        assert last[f"val/gain/{b}/lo"] <= last[f"val/gain/{b}"] <= last[f"val/gain/{b}/hi"]
        assert last[f"val/gain/{b}"] == pytest.approx(last["val/cos"] - last[f"val/{b}/cos"], abs=1e-5)
    assert last["val/beats_baselines"] == 0.0
    gates = json.loads((run_dir / "gates.json").read_text())
    assert gates["passed"] is False and gates["epoch"] == 2
    # the relative gate compares with every baseline, the fitted ones included
    assert set(gates["beats_baselines"]["splits"]["val"]["against"]) == {"copy_last", "context_mean", "ridge",
                                                                          "frame_weights"}
    assert set(gates["baselines"]) == {"copy_last", "context_mean", "oracle", "ridge", "frame_weights"}
    steps = [m["step"] for m in RunDir(run_dir).read_jsonl("metrics.jsonl") if m["kind"] == "StepLogged"]
    assert steps == sorted(set(steps))

    assert main(["runs", "ls", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert "run" in listing and "completed" in listing and "transformer" in listing
    assert main(["runs", "show", str(run_dir)]) == 0
    shown = capsys.readouterr().out
    assert "# Run tiny" in shown and "| val   | copy_last" in shown and "## Gates" in shown


@needs_demo
def test_bad_plan_prints_one_line_per_problem_and_exits_2(tmp_path, capsys):
    bad = _plan(tmp_path).read_text().replace("epochs = 2", 'epochs = "two"\nlrr = 1').replace(
        'arch = "transformer"', 'arch = "transformerr"')
    p = tmp_path / "bad.toml"
    p.write_text(bad)
    code = main(["--run", str(p), "--run-dir", str(tmp_path / "never")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 3 and all(line.startswith(f"error: {p}: line ") for line in err)
    assert any("train.epochs" in line for line in err) and any("train.lrr" in line for line in err)
    assert any("model.arch" in line and "did you mean 'transformer'" in line for line in err)
    assert not (tmp_path / "never").exists()


@needs_demo
def test_ctrl_c_saves_last_exits_130_and_resume_finishes(tmp_path):
    plan = _plan(tmp_path, epochs=4)
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cli = [sys.executable, "-m", "workbench.cli"]
    proc = subprocess.Popen([*cli, "--run", str(plan), "--run-dir", str(run_dir), "--device", "cpu"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and "step 10/" not in proc.stderr.readline():
        pass
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "stopped" and "stopping" in err and "run stopped" in out
    assert 10 <= info["step"] < info["total_steps"]
    assert (run_dir / "checkpoints" / "last.safetensors").is_file()

    done = subprocess.run([*cli, "--resume", str(run_dir)], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 3, done.stderr  # completed; the tiny model fails the required gates
    assert f"resumed from step {info['step']}" in done.stderr
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "completed" and info["epoch"] == 4 and info["step"] == info["total_steps"]
    keys = [(m["kind"], m["step"]) for m in RunDir(run_dir).read_jsonl("metrics.jsonl")]
    assert len(keys) == len(set(keys))
    assert [k for k in keys if k[0] == "EpochEnded"] == [("EpochEnded", info["total_steps"] // 4 * e) for e in (1, 2, 3, 4)]
    again = subprocess.run([*cli, "--resume", str(run_dir)], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert again.returncode == 2 and "already completed" in again.stderr


def test_raising_plugin_hook_becomes_an_alert_naming_the_plugin(tmp_path):
    from lvm_core.training.loop import train
    from workbench.plugin_host import load_plugins
    from workbench.plan import plan_from_text
    from workbench.run_prep import prepare_run

    class Broken:
        @hookimpl
        def on_epoch_end(self, epoch):
            raise RuntimeError("my hook broke")

    make_tiny_store(tmp_path / "tiny", lengths=(10,) * 10)
    host = load_plugins(entry_points=False, extra_plugins=[("broken_plugin", Broken())])
    plan = plan_from_text('[data]\nstore = "tiny"\ncontext_len = 3\n[model]\narch = "mlp"\n'
                          'params = { hidden_dim = 8 }\n[[loss]]\nname = "mse"\n'
                          '[train]\nepochs = 2\nbatch_size = 8\ndevice = "cpu"\n', tmp_path, host=host)
    setup = prepare_run(plan, host, run_dir=tmp_path / "run")
    assert train(setup).status == "completed"
    alerts = [e for e in setup.run.read_jsonl("events.jsonl") if e["kind"] == "Alert"]
    assert [(a["code"], a["epoch"]) for a in alerts] == [("plugin_error", 1), ("plugin_error", 2)]
    assert (f"plugin broken_plugin (in-process) raised in on_epoch_end at step {alerts[0]['step']}: "
            "RuntimeError: my hook broke") in alerts[0]["message"]


def test_console_draws_a_bar_with_rate_and_eta_on_a_terminal_and_lines_otherwise():
    import io

    from lvm_core.events import RunStarted, StepLogged
    from workbench.headless import ConsoleSink

    for tty in (True, False):
        out = io.StringIO()
        sink = ConsoleSink(out, tty=tty)
        sink(RunStarted("runs/x", "x", "cpu", "requested cpu", 100, 2, t=1000.0))
        sink(StepLogged(25, 1, 100, {"loss": 0.5}, 640.0, t=1010.0))
        text = out.getvalue()
        # 25 steps in 10 s: 75 steps left take 30 s
        assert "step 25/100 loss 0.5000 640 samples/s ETA 0:30" in text
        assert ("\r[######" + "." * 18 + "]  25%" in text) is tty


@needs_demo
def test_a_stop_tripwire_exits_3_not_130(tmp_path, capsys):
    plan = _plan(tmp_path, epochs=3).read_text().replace("required = true", "required = false")
    # always true: fires at epoch 1; named as before the rename, read as val/margin_vs_last with a note
    plan += '\n[[tripwire]]\nwhen = "val/margin < 5"\naction = "stop"\n'
    p = tmp_path / "trip.toml"
    p.write_text(plan)
    code = main(["--run", str(p), "--run-dir", str(tmp_path / "run"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "note: tripwire[0].when: 'val/margin' is the old name of 'val/margin_vs_last'" in err
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "stopped" and "val/margin_vs_last" in (run.get("error") or "")
