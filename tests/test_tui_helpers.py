"""The TUI's non-Textual helpers: run-directory reading, JSONL tailing, plan diffs, form parsing,
the thinning of long curves and the child process a run trains in."""

from __future__ import annotations

import json
import signal
import sys
import time

import pytest

from lvm_core.errors import InputError
from lvm_core.params import Param
from workbench.tui.child_run import ChildRun, exit_reason, headless_command
from workbench.tui.planform import merge, param_text, parse_inline, parse_param, relative_store, resolve_store, toml_inline, widget_id
from lvm_core.run_index import JsonlTail, read_run, scan_runs
from workbench.tui.rundirs import curves
from workbench.tui.train_pane import format_eta, thin


def test_jsonl_tail_returns_only_complete_new_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = JsonlTail(path)
    assert tail.read_new() == []  # no file yet
    path.write_text('{"step": 1}\n{"step": 2}\n{"st', encoding="utf-8")
    assert [r["step"] for r in tail.read_new()] == [1, 2]
    assert tail.read_new() == []  # the half line waits
    with path.open("a", encoding="utf-8") as fh:
        fh.write('ep": 3}\nnot json\n{"step": 4}\n')
    assert [r["step"] for r in tail.read_new()] == [3, 4]
    assert tail.bad_lines == 1


def test_curves_index_each_metric_by_its_own_records():
    recs = [
        {"kind": "StepLogged", "step": 20, "metrics": {"loss": 1.0, "loss/mse": 0.5}},
        {"kind": "StepLogged", "step": 40, "metrics": {"loss": 0.8}},
        {"kind": "StepLogged", "step": 60, "metrics": {"loss": float("nan"), "flag": True}},
        {"kind": "RunStarted"},
    ]
    c = curves(recs)
    assert c["loss"] == ([20.0, 40.0], [1.0, 0.8])  # the NaN point is left out, not plotted as 0
    assert c["loss/mse"] == ([20.0], [0.5])
    assert "flag" not in c


def test_read_run_and_scan_report_broken_files_without_raising(tmp_path):
    good = tmp_path / "good-1"
    good.mkdir()
    (good / "run.json").write_text(json.dumps({"status": "completed", "name": "good", "duration_s": 75.0,
                                               "best": {"metric": "val/margin", "value": 0.125}}))
    (good / "gates.json").write_text(json.dumps({"score": 4, "passed": True}))
    bad = tmp_path / "bad-1"
    bad.mkdir()
    (bad / "run.json").write_text("{oops")
    (tmp_path / "not-a-run").mkdir()
    runs = {r.path.name: r for r in scan_runs(tmp_path)}
    assert set(runs) == {"good-1", "bad-1"}
    g = runs["good-1"]
    assert (g.status, g.gate_score, g.gate_passed, g.best_text) == ("completed", 4, True, "val/margin_vs_last +0.125")  # named before the rename
    assert runs["bad-1"].problem.startswith("run.json: not valid JSON")
    assert read_run(tmp_path / "not-a-run").problem == "run.json missing"
    assert scan_runs(tmp_path / "absent") == []


def test_form_values_round_trip_through_toml_inline():
    sched = {"kind": "step", "epoch": 3, "before": 0.0, "after": 0.5}
    assert toml_inline(sched) == '{ kind = "step", epoch = 3, before = 0.0, after = 0.5 }'
    assert parse_inline(toml_inline(sched), "x") == sched
    assert parse_inline("[[4000, 4499]]", "x") == [[4000, 4499]]
    with pytest.raises(InputError, match="loss\\[mse\\].schedule"):
        parse_inline("{ kind = ", "loss[mse].schedule")


def test_parse_param_uses_the_declared_type_and_limits():
    p = Param("hidden", "int", 64, min=1)
    assert parse_param(p, " 128 ", "model.params.hidden") == 128
    with pytest.raises(InputError, match="model.params.hidden: expected an integer"):
        parse_param(p, "12.5", "model.params.hidden")
    with pytest.raises(InputError, match="expected >= 1"):
        parse_param(p, "0", "model.params.hidden")
    f = Param("margin", "float", 0.05)
    assert parse_param(f, "0.1", "w") == 0.1
    assert param_text(0.05) == "0.05" and param_text([1, 2]) == "[1, 2]" and param_text("x") == "x"
    assert parse_param(Param("sizes", "list", []), "[1, 2]", "w") == [1, 2]


def test_merge_keeps_keys_the_form_does_not_show():
    base = {"train": {"epochs": 3, "weight_decay": 0.01}, "eval": {"every": 2}}
    out = merge(base, {"train": {"epochs": 5}})
    assert out == {"train": {"epochs": 5, "weight_decay": 0.01}, "eval": {"every": 2}}
    assert base["train"]["epochs"] == 3  # not modified in place


def test_store_paths_are_written_relative_to_the_plan(tmp_path):
    store = tmp_path / "data" / "s"
    plans = tmp_path / "plans"
    rel = relative_store(str(store), plans)
    assert rel == "../data/s"
    assert resolve_store(rel, plans) == str(store.resolve())
    assert widget_id("loss-on", "my.loss x") == "loss-on-my_loss_x"


def test_format_eta():
    assert format_eta(65) == "1:05"
    assert format_eta(3725) == "1:02:05"
    assert format_eta(None) == "-" and format_eta(float("inf")) == "-"


def test_thin_keeps_the_ends_and_spaces_the_rest_evenly():
    assert thin([1.0, 2.0, 3.0], 5) == [1.0, 2.0, 3.0]  # short curves are drawn whole
    xs = [float(i) for i in range(11)]
    assert thin(xs, 3) == [0.0, 5.0, 10.0]
    assert thin(xs, 6) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert len(thin(list(range(10_001)), 600)) == 600 and thin(list(range(10_001)), 600)[-1] == 10_000


def test_headless_command_is_the_cli_through_this_interpreter(tmp_path):
    run_dir = tmp_path / "runs" / "r-1"
    assert headless_command(tmp_path / "p.toml", run_dir, False) == [
        sys.executable, "-m", "workbench.cli", "--run", str(tmp_path / "p.toml"), "--run-dir", str(run_dir)]
    assert headless_command(None, run_dir, True) == [sys.executable, "-m", "workbench.cli", "--resume", str(run_dir)]


def test_child_run_log_tail_exit_code_and_stop(tmp_path):
    script = ("import signal, sys, time\n"
              "signal.signal(signal.SIGINT, lambda *a: (print('stopping: saved last', flush=True), sys.exit(130)))\n"
              "for i in range(20): print(f'line {i}')\n"
              "print('ready', flush=True)\n"
              "time.sleep(30)\n")
    work = tmp_path / "work"
    work.mkdir()
    child = ChildRun([sys.executable, "-c", script], work)
    end = time.monotonic() + 10
    while "ready" not in child.log_tail(1) and time.monotonic() < end:
        time.sleep(0.02)
    assert child.poll() is None
    assert child.log_tail(3) == "line 18\nline 19\nready"  # the last lines, in order
    assert child.stop_and_wait(10) == 130  # SIGINT reaches the child's own handler
    assert child.log_tail(1) == "stopping: saved last"
    child.cleanup()
    assert not work.exists()


def test_child_run_that_ignores_stop_is_killed_after_the_wait(tmp_path):
    script = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(30)\n"
    child = ChildRun([sys.executable, "-c", script], tmp_path)
    end = time.monotonic() + 10
    while "up" not in child.log_tail(1) and time.monotonic() < end:
        time.sleep(0.02)
    t0 = time.monotonic()
    assert child.stop_and_wait(0.3) == -signal.SIGKILL
    assert time.monotonic() - t0 < 5


def test_exit_reason_names_the_cli_exit_codes():
    assert exit_reason(0) == "done" and exit_reason(2) == "bad input" and exit_reason(130) == "interrupted"
    assert exit_reason(1) == "failed" and exit_reason(7) == "exit code 7"
    assert exit_reason(-signal.SIGKILL) == "killed by SIGKILL"
