"""Failures of the machine, not the input (issue 11): a full disk, a refused pickle, file modes,
an unexpected error. One line each, a documented exit code, nothing half-written."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from lvm_core import faults
from lvm_core.atomic import atomic_dir, write_text
from lvm_core.errors import InputError
from lvm_core.rundir import RunDir
from lvm_core.training.checkpoint import load_state
from lvm_core.training.checkpointer import Checkpointer
from tests.conftest import make_tiny_store
from workbench import exit_codes
from workbench.cli import main

PLAN = """
name = "env"
seed = 1
[data]
store = "tiny"
context_len = 3
[model]
arch = "mlp"
params = { hidden_dim = 8 }
[[loss]]
name = "mse"
[train]
epochs = 2
batch_size = 8
device = "cpu"
log_every = 2
"""


@pytest.fixture
def plan(tmp_path):
    make_tiny_store(tmp_path / "tiny", lengths=(12,) * 8, dim=8)
    p = tmp_path / "plan.toml"
    p.write_text(PLAN)
    return p


def test_a_full_disk_mid_run_is_one_line_exit_4_and_a_failed_resumable_run(plan, tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    monkeypatch.setenv("LVM_FAULT_ENOSPC_AT", "14")  # a write during training
    faults.reset()
    assert main(["--run", str(plan), "--run-dir", str(run_dir)]) == exit_codes.ENVIRONMENT
    err = capsys.readouterr().err.splitlines()
    assert "Traceback" not in "\n".join(err)
    assert err[-1].startswith(f"error: {run_dir}") and err[-1].endswith(": no space left on device (ENOSPC)"), err[-1]
    info = RunDir(run_dir).read_json("run.json")
    assert info["status"] == "failed" and info["error"].endswith("no space left on device (ENOSPC)")
    assert "OSError" in (run_dir / "traceback.txt").read_text()
    monkeypatch.delenv("LVM_FAULT_ENOSPC_AT")
    assert main(["--resume", str(run_dir)]) == exit_codes.OK  # space freed: the run goes on
    assert RunDir(run_dir).read_json("run.json")["status"] == "completed"
    assert not list(run_dir.rglob(".*.tmp"))


def test_an_unexpected_error_is_one_line_exit_1_with_the_traceback_kept(plan, tmp_path, capsys, monkeypatch):
    import workbench.headless as headless

    def broken(args, **kw):
        return {}["no such key"]

    monkeypatch.setattr(headless, "run_from_args", broken)
    assert main(["--run", str(plan)]) == exit_codes.ERROR
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error: unexpected KeyError: 'no such key' (a bug; traceback in ")
    kept = err.split("traceback in ")[1].split(";")[0]
    assert "KeyError" in open(kept).read()
    os.unlink(kept)
    with pytest.raises(KeyError):
        main(["--debug", "--run", str(plan)])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_missing_device_is_exit_4(plan, capsys):
    assert main(["--run", str(plan), "--device", "cuda"]) == exit_codes.ENVIRONMENT
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "CUDA is not available" in err


def test_a_hostile_state_file_is_refused_naming_the_global(tmp_path):
    canary = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {canary}",))

    torch.save({"checkpoint_id": Payload()}, tmp_path / "last.state.pt")
    with pytest.raises(InputError) as info:
        load_state(tmp_path / "last")
    line = str(info.value)
    assert "refused: the file asks to run posix.system" in line and "nothing was executed" in line
    assert "weights_only" not in line and "\n" not in line
    assert not canary.exists()


def test_files_are_written_with_plain_modes_under_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.json", "{}")
        with atomic_dir(tmp_path / "store") as d:
            (d / "x.npy").write_bytes(b"x")
        Checkpointer(tmp_path / "checkpoints").save(
            "last", torch.nn.Linear(2, 2),
            {"arch": "linear", "arch_params": {}, "input_dim": 2, "context_len": 1, "step": 1, "epoch": 1}, {"step": 1})
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "a.json") == 0o644  # mkstemp made 0600: colleagues could not read runs
    assert mode(tmp_path / "store") == 0o755
    gen = Checkpointer(tmp_path / "checkpoints").pick("last").stem.parent
    assert mode(gen) == 0o755 and mode(gen / "model.safetensors") == 0o644 and mode(gen / "model.state.pt") == 0o644
