"""`train.compile = true` runs the step through torch.compile (dynamo-traced) and trains to the
same weights; the eager backend keeps the test fast on a 2-core CPU (no C++ compile)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from lvm_core.training import compiled
from workbench import cli

from .test_distributed import write_plan


def test_compiled_step_trains_to_the_weights_of_the_eager_one(tmp_path, monkeypatch):
    monkeypatch.setenv(compiled.BACKEND_ENV, "eager")
    plain = write_plan(tmp_path / "plain.toml", epochs=1)
    text = plain.read_text().replace("[train]\n", "[train]\ncompile = true\n")
    (tmp_path / "compiled.toml").write_text(text)
    import torch._dynamo.utils as dyn

    dyn.counters.clear()
    torch._dynamo.reset()
    assert cli.main(["--run", str(tmp_path / "compiled.toml"), "--run-dir", str(tmp_path / "c")]) == 0
    traced = sum(dyn.counters["frames"].values())
    assert cli.main(["--run", str(plain), "--run-dir", str(tmp_path / "p")]) == 0
    assert traced > 0  # dynamo saw the model and the loss
    a, b = (load_file(str(tmp_path / d / "checkpoints" / "last.safetensors")) for d in ("c", "p"))
    assert a.keys() == b.keys()  # no "_orig_mod." prefix in a compiled run's checkpoint
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-6, err_msg=k)


def test_compile_key_must_be_a_boolean(tmp_path, capsys):
    plan = write_plan(tmp_path / "plan.toml", epochs=1)
    plan.write_text(plan.read_text().replace("[train]\n", "[train]\ncompile = \"yes\"\n"))
    assert cli.main(["--run", str(plan), "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.compile" in err[0] and "true or false" in err[0]


def test_backend_defaults_to_inductor(monkeypatch):
    monkeypatch.delenv(compiled.BACKEND_ENV, raising=False)
    assert compiled.backend() == "inductor"
    monkeypatch.setenv(compiled.BACKEND_ENV, "eager")
    assert compiled.backend() == "eager"
