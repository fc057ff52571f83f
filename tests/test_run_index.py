"""`runs ls` and the TUI's Runs screen read run folders through one reader (lvm_core.run_index):
the same runs, the same labels, and a run still being written is listed, not "unreadable"."""

from __future__ import annotations

import json

from lvm_core.run_index import scan_runs
from workbench.commands.runs import list_runs


def _run(path, *, status="completed", model="mlp", metrics_tail=""):
    path.mkdir(parents=True)
    (path / "run.json").write_text(json.dumps({"name": path.name, "status": status, "model": model, "epoch": 1,
                                               "epochs": 2, "created": "2026-12-01T00:00:00Z",
                                               "best": {"metric": "val/cos", "value": 0.5, "epoch": 1}}))
    line = {"kind": "EvalDone", "epoch": 1, "step": 10, "metrics": {"val/cos": 0.5, "val/margin_vs_last": -0.1}}
    (path / "metrics.jsonl").write_text(json.dumps(line) + "\n" + metrics_tail)


def test_a_live_run_with_a_half_written_line_is_listed_by_runs_ls(tmp_path):
    # the writer is mid-line: before, `runs ls` called the whole run unreadable
    _run(tmp_path / "live", status="running", metrics_tail='{"kind": "StepLogged", "ste')
    (row,) = list_runs(tmp_path)
    assert row["status"] == "running" and row["val/cos"] == 0.5 and row["val/margin_vs_last"] == -0.1


def test_runs_ls_and_the_runs_screen_list_the_same_runs(tmp_path):
    _run(tmp_path / "a", model="amn")
    _run(tmp_path / "g" / "seed0")
    (tmp_path / "g" / "group.json").write_text("{}")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text("{not json")
    rows = {r["run"]: r for r in list_runs(tmp_path)}
    assert set(rows) == {s.label for s in scan_runs(tmp_path)} == {"a", "g/seed0", "broken"}
    assert rows["a"]["model"] == "amn" and rows["a"]["epoch"] == 1 and rows["a"]["best"] == 0.5
    assert rows["broken"]["status"].startswith("unreadable (run.json: not valid JSON")
