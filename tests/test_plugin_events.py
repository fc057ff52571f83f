"""Plugins log their own metrics: an event hook's `log(name, value)` lands in metrics.jsonl as
plugin/<plugin>/<name>, with the event's epoch and step; a bad value is an alert naming it."""

from __future__ import annotations

import json

from tests.conftest import DEMO_STORE
from workbench.cli import main

SINK = '''
from workbench import hookimpl


@hookimpl
def on_eval_end(epoch, metrics, log):
    log("val_cos_x2", 2 * metrics["val/cos"])
    log("epoch_seen", epoch)


@hookimpl
def on_run_end(status, log):
    log("bad", float("nan"))
'''

PLAN = f"""
name = "events"
[data]
store = "{DEMO_STORE}"
[model]
arch = "context_mean"
[[loss]]
name = "cosine"
[train]
epochs = 2
batch_size = 256
threads = 1
[eval]
max_samples = 50
[plugins]
modules = ["my_sink"]
"""


def test_event_hooks_log_namespaced_metrics(tmp_path, capsys):
    (tmp_path / "my_sink.py").write_text(SINK)
    (tmp_path / "plan.toml").write_text(PLAN)
    run_dir = tmp_path / "run"
    assert main(["--run", str(tmp_path / "plan.toml"), "--run-dir", str(run_dir), "--device", "cpu"]) == 0
    lines = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = {r["epoch"]: r["metrics"]["val/cos"] for r in lines if r["kind"] == "EvalDone"}
    mine = [r for r in lines if r["kind"] == "PluginMetrics"]
    assert [r["epoch"] for r in mine] == [1, 2] and all(r["plugin"] == "my_sink" for r in mine)
    for r in mine:
        assert r["metrics"] == {"plugin/my_sink/val_cos_x2": 2 * evals[r["epoch"]],
                                "plugin/my_sink/epoch_seen": float(r["epoch"])}
    alerts = [json.loads(l) for l in (run_dir / "events.jsonl").read_text().splitlines()]
    assert any("my_sink (local module) raised in on_run_end" in a.get("message", "") and "finite" in a["message"]
               for a in alerts), capsys.readouterr()
