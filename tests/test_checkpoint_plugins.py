"""Checkpoints that know their plugins: a model from a plan-local plugin module trains, its
checkpoint names the module, and `5cat` in a fresh process rebuilds it (or refuses in one line
naming what is missing)."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from lvm_core.training.checkpoint import read_checkpoint_meta, save_checkpoint
from tests.conftest import DEMO_STORE, ROOT
from workbench.checkpoint_plugins import load_checkpoint_model
from workbench.cli import main

LOCAL_MODEL = '''
import torch
import torch.nn.functional as F
from workbench import Param, hookimpl


class Blend(torch.nn.Module):
    """normalize(mean + w * last)."""

    def __init__(self, dim, context_len, w=0.5):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(float(w)))

    def forward(self, ctx):
        return F.normalize(ctx.mean(1) + self.w * ctx[:, -1], dim=-1)


@hookimpl
def register_models(register):
    register("blend_local", Blend, params=(Param("w", "float", 0.5, "weight of the last chunk"),))
'''

PLAN = f"""
name = "local"
[data]
store = "{DEMO_STORE}"
[model]
arch = "blend_local"
[[loss]]
name = "cosine"
[train]
epochs = 1
batch_size = 256
threads = 1
[eval]
max_samples = 100
[plugins]
modules = ["blend_local_model"]
"""


def _fresh_5cat(ckpt, *extra, cwd, options=()):
    cmd = [sys.executable, "-m", "workbench.cli", *extra, "5cat", "--model", str(ckpt), "--val", str(DEMO_STORE),
           "--samples", "40", "--gate", "A", *options]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env={"PYTHONPATH": str(ROOT), "PATH": ""})


def test_a_plan_local_model_is_found_beside_the_plan_and_scored_in_a_fresh_process(tmp_path):
    plan_dir = tmp_path / "plans"
    plan_dir.mkdir()
    (plan_dir / "blend_local_model.py").write_text(LOCAL_MODEL)
    (plan_dir / "plan.toml").write_text(PLAN)
    run_dir = tmp_path / "run"
    assert main(["--run", str(plan_dir / "plan.toml"), "--run-dir", str(run_dir), "--device", "cpu"]) == 0
    ckpt = run_dir / "checkpoints" / "last.safetensors"
    records = read_checkpoint_meta(ckpt)["plugins"]
    assert records[0] == {"kind": "model", "name": "blend_local", "plugin": "blend_local_model",
                          "distribution": "(local module)", "version": ""}
    assert records[1]["name"] == "cosine" and records[1]["distribution"] == "lvm-workbench"
    # a fresh process, elsewhere: the run's plan folder is searched for the module
    done = _fresh_5cat(ckpt, cwd=tmp_path)
    assert done.returncode in (0, 3), done.stderr
    assert "A offset sweep" in done.stdout
    # the checkpoint copied away from its run: --plugin-path finds the module, without it one line
    lone = tmp_path / "lone"
    lone.mkdir()
    for f in (run_dir / "checkpoints").glob("last.*"):
        (lone / f.name).write_bytes(f.read_bytes())
    done = _fresh_5cat(lone / "last.safetensors", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "local plugin module 'blend_local_model'" in done.stderr and "--plugin-path" in done.stderr
    # away from its run the split.json is gone too: scoring the whole store must be asked for
    done = _fresh_5cat(lone / "last.safetensors", "--plugin-path", str(plan_dir), cwd=tmp_path,
                       options=("--allow-train-overlap",))
    assert done.returncode in (0, 3), done.stderr


def test_a_checkpoint_of_a_missing_distribution_is_refused_in_one_line(tmp_path, capsys):
    model = torch.nn.Linear(2, 2)
    meta = {"arch": "mean_residual", "arch_params": {}, "input_dim": 384, "context_len": 5,
            "plugins": [{"kind": "model", "name": "mean_residual", "plugin": "residual_kit",
                         "distribution": "lvm-workbench-residual-kit", "version": "0.1.0"}]}
    ckpt = save_checkpoint(tmp_path / "m", model, meta)
    assert main(["5cat", "--model", str(ckpt), "--val", str(DEMO_STORE), "--samples", "20"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {ckpt}: model 'mean_residual' comes from distribution lvm-workbench-residual-kit 0.1.0, "
                   "which is not installed or not loaded (pip install 'lvm-workbench-residual-kit==0.1.0')"]


def test_the_shared_loader_uses_an_installed_plugin(tmp_path, monkeypatch):
    from tests._kit_helpers import KIT, fake_install_kit

    monkeypatch.delenv("LVM_WORKBENCH_LOAD_PLUGINS", raising=False)
    monkeypatch.syspath_prepend(str(KIT / "src"))
    from lvm_residual_kit.plugin import MeanResidual
    monkeypatch.syspath_prepend(str(fake_install_kit(tmp_path / "site")))
    model = MeanResidual(8, 5, hidden=4)
    meta = {"arch": "mean_residual", "arch_params": {"hidden": 4}, "input_dim": 8, "context_len": 5}
    ckpt = save_checkpoint(tmp_path / "m", model, meta)
    loaded = load_checkpoint_model(ckpt)
    assert type(loaded).__name__ == "MeanResidual" and not loaded.training
    assert json.dumps(loaded.checkpoint_meta["arch_params"]) == '{"hidden": 4}'


def test_resume_of_a_run_whose_model_distribution_is_gone_names_it(tmp_path, monkeypatch, capsys):
    import importlib
    import sys as _sys

    from tests._kit_helpers import KIT, KIT_DIST, fake_install_kit

    monkeypatch.delenv("LVM_WORKBENCH_LOAD_PLUGINS", raising=False)
    monkeypatch.syspath_prepend(str(KIT / "src"))
    site = fake_install_kit(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    (tmp_path / "plan.toml").write_text(PLAN.replace('"blend_local"', '"mean_residual"').replace(
        'modules = ["blend_local_model"]', "modules = []").replace("epochs = 1", "epochs = 2"))
    run_dir = tmp_path / "run"
    assert main(["--run", str(tmp_path / "plan.toml"), "--run-dir", str(run_dir), "--device", "cpu"]) == 0
    info = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**info, "status": "stopped"}))  # as if stopped early
    _sys.path.remove(str(site))  # the distribution is uninstalled (its module stays importable)
    importlib.invalidate_caches()
    capsys.readouterr()
    assert main(["--resume", str(run_dir), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    ckpt = run_dir / "checkpoints" / "last.safetensors"
    assert err == [f"error: {ckpt}: model 'mean_residual' comes from distribution {KIT_DIST} 0.1.0, which is not "
                   f"installed or not loaded (pip install '{KIT_DIST}==0.1.0')"]


def test_import_checkpoint_records_its_plugin_and_is_read_back_by_the_shared_loader(tmp_path, monkeypatch):
    from tests.test_legacy_checkpoint import CASES, OrigLSTM, _save_original
    import workbench.commands._data_import_checkpoint as command

    loaded = []
    real = command.load_checkpoint_model
    monkeypatch.setattr(command, "load_checkpoint_model", lambda *a, **kw: loaded.append(a[0]) or real(*a, **kw))
    src = tmp_path / "best_model.pt"
    _save_original(src, "lstm", OrigLSTM().eval(), CASES["lstm"][1])
    out = tmp_path / "new.safetensors"
    assert main(["data", "import-checkpoint", str(src), "--out", str(out)]) == 0
    assert loaded == [out]
    [record] = read_checkpoint_meta(out)["plugins"]
    assert record["kind"] == "model" and record["name"] == "lstm" and record["distribution"] == "lvm-workbench"
    assert type(load_checkpoint_model(out)).__name__ == type(real(out)).__name__
