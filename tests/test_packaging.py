"""Every package folder is listed in pyproject.toml (the list is explicit because plugins/ is
installed under the import name lvm_plugins)."""

from pathlib import Path

import tomli

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed():
    cfg = tomli.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    mapping = {v: k for k, v in cfg.get("package-dir", {}).items()}
    found = set()
    for top in ("lvm_core", "workbench", "plugins"):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT).parts
            name = mapping.get(rel[0], rel[0])
            found.add(".".join((name, *rel[1:])))
    assert found == listed
