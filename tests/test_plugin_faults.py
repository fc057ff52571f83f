"""Faults named and contained: a loss plugin that raises, returns a (B,) tensor or a NaN ends
the run with one line naming the plugin, its distribution, the term and the step; the last
complete checkpoint and the metrics are kept, and --resume works once the plugin is fixed. A
broken plugin installed beside the others leaves every command working."""

from __future__ import annotations

import json

import pytest

from tests.conftest import DEMO_STORE
from workbench.cli import main
from workbench.plugin_host import load_plugins

FAULTY = '''
import os
import torch
from workbench import hookimpl


def faulty():
    def strategy(batch, model):
        pred = batch.prediction(model)
        per_row = 1 - (pred * batch.targets).sum(-1)
        mode = os.environ.get("LVM_TEST_FAULT", "")
        if mode == "raise" and batch.step == 3:
            raise ValueError("boom at three")
        if mode == "shape":
            return {"faulty": per_row}
        if mode == "nan" and batch.step >= 2:
            return {"faulty": per_row.mean() * float("nan")}
        return {"faulty": per_row.mean()}
    return strategy


@hookimpl
def register_losses(register):
    register("faulty", faulty, description="a loss that breaks on request")
'''

PLAN = f"""
name = "faulty"
[data]
store = "{DEMO_STORE}"
[model]
arch = "mlp"
params = {{ hidden_dim = 8 }}
[[loss]]
name = "faulty"
[train]
epochs = 1
batch_size = 64
log_every = 2
threads = 1
[eval]
max_samples = 50
[plugins]
modules = ["faulty_loss"]
"""

WHO = "loss 'faulty' of plugin faulty_loss (local module)"


@pytest.fixture
def plan(tmp_path):
    (tmp_path / "faulty_loss.py").write_text(FAULTY)
    p = tmp_path / "plan.toml"
    p.write_text(PLAN)
    return p


def _run(plan, run_dir, monkeypatch, mode, *extra):
    monkeypatch.setenv("LVM_TEST_FAULT", mode)
    return main(["--run", str(plan), "--run-dir", str(run_dir), "--device", "cpu", *extra])


def _errors(err: str) -> list[str]:
    return [l for l in err.splitlines() if l.startswith("error:") and "faulty" in l]


def test_a_raising_loss_is_one_line_keeps_its_step_and_resumes_when_fixed(plan, tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    assert _run(plan, run_dir, monkeypatch, "raise") == 1
    out, err = capsys.readouterr()
    lines = _errors(out + err)
    assert lines and all(f"{WHO} raised at step 3: ValueError: boom at three" in l for l in lines)
    assert "Traceback" not in out + err
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "failed" and "boom at three" in info["error"]
    steps = [json.loads(l).get("step") for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert 2 in steps  # the log line of step 2 was written before the fault
    assert (run_dir / "checkpoints" / "last.safetensors").is_file()  # saved at the start of step 3
    from lvm_core.training.checkpoint import read_checkpoint_meta

    assert read_checkpoint_meta(run_dir / "checkpoints" / "last.safetensors")["step"] == 3
    monkeypatch.setenv("LVM_TEST_FAULT", "")  # the plugin is fixed
    assert main(["--resume", str(run_dir), "--device", "cpu"]) == 0
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"


def test_a_loss_returning_one_value_per_row_is_named(plan, tmp_path, monkeypatch, capsys):
    assert _run(plan, tmp_path / "run", monkeypatch, "shape") == 1
    out, err = capsys.readouterr()
    assert any(f"{WHO}, term 'faulty', at step 0: returned shape (64,); expected a scalar" in l for l in _errors(out + err))
    assert "grad can be implicitly created" not in out + err


def test_a_nan_loss_names_its_term_and_plugin(plan, tmp_path, monkeypatch, capsys):
    assert _run(plan, tmp_path / "run", monkeypatch, "nan") == 1
    out, err = capsys.readouterr()
    assert "non-finite loss in term loss/faulty (plugin faulty_loss (local module)) between step 2 and step 4" in out + err
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "diverged"


def test_broken_plugins_are_disabled_by_name_and_the_rest_works(tmp_path, capsys):
    from workbench import Param, hookimpl

    class BadDefault:
        @hookimpl
        def register_losses(self, register):
            register("bad_default", lambda scale=1.0: None, params=(Param("scale", "float", "one"),))

    class UndeclaredParam:
        @hookimpl
        def register_models(self, register):
            register("fixed_model", lambda dim, context_len: None, params=(Param("width", "int", 4),))

    class OutOfRange:
        @hookimpl
        def register_gates(self, register):
            register("ZZ", lambda **kw: None, params=(Param("val.x", "float", 2.0, min=0.0, max=1.0),))

    class Misspelled:
        @hookimpl
        def register_loss(self, register):  # the hook is register_losses
            register("x", lambda: None)

    class Wrapper:
        @hookimpl(wrapper=True)
        def register_gates(self, register):
            return (yield)

    class Collides:
        @hookimpl
        def register_losses(self, register):
            register("mse", lambda **kw: None)

    bad = [("bad_default", BadDefault()), ("undeclared", UndeclaredParam()), ("range", OutOfRange()),
           ("misspelled", Misspelled()), ("wrapper", Wrapper()), ("collides", Collides())]
    host = load_plugins(entry_points=False, extra_plugins=bad)
    problems = {p.plugin: p for p in host.problems}
    assert sorted(problems) == sorted(name for name, _ in bad)
    assert "default of param 'scale' does not fit its declaration (expected a number, got a string 'one')" in problems["bad_default"].error
    assert "declares param(s) ['width'] that its factory" in problems["undeclared"].error
    assert "expected <= 1.0, got 2.0" in problems["range"].error
    assert "unknown hook 'register_loss'; did you mean 'register_losses'?" in problems["misspelled"].error
    assert "wrapper" in problems["wrapper"].error
    assert "already registered by plugin builtin.losses (lvm-workbench" in problems["collides"].error
    assert all(f"LVM_WORKBENCH_DISABLE_PLUGINS={n}" in problems[n].line() for n in problems)
    assert host.get("loss", "mse").plugin == "builtin.losses"  # the built-in keeps its name
    assert not any(i.plugin in problems for i in host.all_items())  # nothing of a disabled plugin is used


def test_a_colliding_installed_plugin_leaves_the_commands_working(tmp_path, monkeypatch, capsys):
    site = tmp_path / "site"
    pkg = site / "lvm_colliding"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from workbench import hookimpl\n\n@hookimpl\ndef register_losses(register):\n"
                                     "    register('mse', lambda **kw: None)\n\n@hookimpl\ndef register_loss(register):\n"
                                     "    pass\n")
    info = site / "lvm_colliding-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lvm-colliding\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text("[lvm_workbench]\ncolliding = lvm_colliding\n")
    monkeypatch.delenv("LVM_WORKBENCH_LOAD_PLUGINS", raising=False)
    monkeypatch.syspath_prepend(str(site))
    assert main(["plugins", "--kind", "gate", "--no-params"]) == 0
    out = capsys.readouterr().out
    assert "gate  A" in out
    assert ("warning: plugin colliding (lvm-colliding 1.2) disabled, check of its hooks: unknown hook 'register_loss'"
            in out) and "LVM_WORKBENCH_DISABLE_PLUGINS=colliding" in out
    code = main(["5cat", "--model", "copy_last", "--val", str(DEMO_STORE), "--samples", "30", "--gate", "A"])
    err = capsys.readouterr().err
    assert code == 3 and "warning: plugin colliding (lvm-colliding 1.2) disabled" in err


def test_a_raising_gate_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    from workbench import hookimpl

    class Exploding:
        key, title = "XP", "explodes"

        def __init__(self, **kw):
            pass

        def variants(self, context_len, horizon, legacy):
            return ["base"]

        def measure(self, preds):
            raise ZeroDivisionError("no samples")

        def judge(self, metrics):
            return None

    class Plugin:
        @hookimpl
        def register_gates(self, register):
            register("XP", Exploding)

    real = load_plugins
    monkeypatch.setattr("workbench.commands.fivecat.load_plugins",
                        lambda *a, **kw: real(*a, extra_plugins=[("exploding", Plugin())], **kw))
    code = main(["5cat", "--model", "copy_last", "--val", str(DEMO_STORE), "--samples", "20", "--gate", "XP"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err == ["error: gate 'XP' of plugin exploding (in-process) raised in measure: "
                                 "ZeroDivisionError: no samples"]
