"""One run-directory naming rule for the CLI (created at once) and the TUI (named, created by
the child process): `<name>-<UTC yyyymmdd-HHMMSS>`, then -2, -3 when taken."""

from __future__ import annotations

import re

from lvm_core import rundir
from lvm_core.rundir import free_run_dir, new_run_dir, run_dir_names


def test_cli_and_tui_name_run_folders_alike(tmp_path, monkeypatch):
    monkeypatch.setattr(rundir, "utc_stamp", lambda t=None: "20260101-000000")
    assert [p.name for p in list(run_dir_names(tmp_path, "demo"))[:3]] == [
        "demo-20260101-000000", "demo-20260101-000000-2", "demo-20260101-000000-3"]
    free = free_run_dir(tmp_path, "demo")
    assert free.name == "demo-20260101-000000" and not free.exists()  # named, not created
    made = new_run_dir(tmp_path, "demo")
    assert made == free and made.is_dir()
    assert free_run_dir(tmp_path, "demo").name == "demo-20260101-000000-2"
    assert new_run_dir(tmp_path, "demo").name == "demo-20260101-000000-2"


def test_the_stamp_is_utc_seconds(tmp_path):
    assert re.fullmatch(r"x-\d{8}-\d{6}", free_run_dir(tmp_path, "x").name)
