"""A third-party loss found through a real entry point, reported with its distribution and version.

The example package examples/third_party_loss is made visible to importlib.metadata in two ways:
a hand-written `*.dist-info` directory on sys.path (fast, always run), and a real
`pip install --target` of the package (slow: it builds a wheel).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lvm_core.training.batch import Batch
from workbench.plugin_host import load_plugins

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "third_party_loss"
DIST = "lvm-workbench-angular-loss"


def _fake_install(site: Path, version: str = "0.1.0", target: str = "lvm_angular_loss.plugin") -> None:
    info = site / f"lvm_workbench_angular_loss-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {version}\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[lvm_workbench]\nangular = {target}\n", encoding="utf-8")


@pytest.fixture
def installed(tmp_path, monkeypatch):
    monkeypatch.delenv("LVM_WORKBENCH_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("LVM_WORKBENCH_DISABLE_PLUGINS", raising=False)
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    site = tmp_path / "site"
    _fake_install(site, version="0.1.0")
    monkeypatch.syspath_prepend(str(site))
    return site


def _angle_of(host) -> float:
    strategy = host.get("loss", "angular").obj()
    model = torch.nn.Identity()
    batch = Batch(torch.tensor([[[1.0, 0.0]]]), torch.tensor([[0.0, 1.0]]), article=torch.zeros(1, dtype=torch.long),
                  target_rows=torch.zeros(1, dtype=torch.long))
    batch._pred = torch.tensor([[1.0, 0.0]])  # the prediction the model would give: e1 vs target e2
    return strategy(batch, model)["angular"].item()


def test_entry_point_loss_is_found_with_its_distribution_and_version(installed):
    host = load_plugins()
    item = host.get("loss", "angular")
    assert (item.plugin, item.dist, item.version) == ("angular", DIST, "0.1.0")
    assert item.param_defaults() == {"normalize": True, "eps": 1e-6}
    assert _angle_of(host) == pytest.approx(0.5)  # a right angle is pi/2, normalised by pi
    assert {"mse", "cosine", "infonce", "directional_margin"} <= set(host.names("loss"))  # built-ins too


def test_load_and_disable_switches(installed, monkeypatch):
    monkeypatch.setenv("LVM_WORKBENCH_LOAD_PLUGINS", "")
    assert "angular" not in load_plugins().names("loss")
    monkeypatch.setenv("LVM_WORKBENCH_LOAD_PLUGINS", DIST)
    assert "angular" in load_plugins().names("loss")
    monkeypatch.setenv("LVM_WORKBENCH_DISABLE_PLUGINS", "angular")
    assert "angular" not in load_plugins().names("loss")


def test_a_broken_entry_point_is_reported_by_name(tmp_path, monkeypatch):
    monkeypatch.delenv("LVM_WORKBENCH_LOAD_PLUGINS", raising=False)
    site = tmp_path / "broken"
    _fake_install(site, target="lvm_no_such_module.plugin")
    monkeypatch.syspath_prepend(str(site))
    host = load_plugins()
    assert any(p.plugin == f"angular ({DIST})" and "ModuleNotFoundError" in p.error for p in host.problems)
    assert "mse" in host.names("loss")  # the others still load


@pytest.mark.slow
def test_pip_installed_example_is_discovered(tmp_path, monkeypatch):
    target = tmp_path / "target"
    source = tmp_path / "source"  # pip builds in place: keep build/ and *.egg-info out of the repository
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)], check=True, capture_output=True,
                   cwd=tmp_path)
    monkeypatch.delenv("LVM_WORKBENCH_LOAD_PLUGINS", raising=False)
    monkeypatch.syspath_prepend(str(target))
    for name in ("lvm_angular_loss", "lvm_angular_loss.plugin"):  # import it afresh from the install
        monkeypatch.delitem(sys.modules, name, raising=False)
    host = load_plugins()
    item = host.get("loss", "angular")
    assert (item.dist, item.version) == (DIST, "0.1.0")
    assert Path(sys.modules["lvm_angular_loss.plugin"].__file__).is_relative_to(target)
