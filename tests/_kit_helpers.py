"""The example kit (examples/third_party_kit: gate CM, diagnostic repeat_rate, model
mean_residual) made visible to importlib.metadata: a hand-written dist-info on sys.path (fast),
or a real `pip install --target` (slow: it builds a wheel)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / "examples" / "third_party_kit"
KIT_DIST = "lvm-workbench-residual-kit"


def fake_install_kit(site: Path, version: str = "0.1.0", target: str = "lvm_residual_kit.plugin") -> Path:
    """A dist-info directory naming the kit's entry point; returns `site` (put it on sys.path
    together with the kit's src/)."""
    info = site / f"lvm_workbench_residual_kit-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {KIT_DIST}\nVersion: {version}\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[lvm_workbench]\nresidual_kit = {target}\n", encoding="utf-8")
    return site


def pip_install_kit(tmp: Path) -> Path:
    """pip install the kit into tmp/target (no index, no deps); returns the target folder."""
    target, source = tmp / "target", tmp / "source"
    shutil.copytree(KIT, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)], check=True, capture_output=True, cwd=tmp)
    return target
