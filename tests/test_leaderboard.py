"""benchmarks/leaderboard.py's summary: means over seeds and pooled paired intervals, by hand."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from .conftest import ROOT


def _board():
    spec = importlib.util.spec_from_file_location("leaderboard", ROOT / "benchmarks" / "leaderboard.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _seed(model_gain: float, base: float, ids):
    n = len(ids)
    row = {"article_id": np.asarray(ids), "model": np.full(n, base + model_gain)}
    for b in ("copy_last", "context_mean", "ridge", "frame_weights"):
        row[b] = np.full(n, base)
    return {"val": row}


def test_a_model_better_by_a_constant_beats_every_baseline_beyond_noise():
    lb = _board()
    res = lb.summarise([_seed(0.1, 0.5, [1, 1, 2, 3]), _seed(0.1, 0.6, [2, 4, 5, 5])])["val"]
    assert res["seeds"] == 2 and res["beats_all"]
    assert res["cos"]["model"]["mean"] == pytest.approx(0.65) and res["cos"]["ridge"]["sd"] == pytest.approx(np.std([0.5, 0.6], ddof=1))
    g = res["gain"]["ridge"]
    assert (g["mean"], g["lo"], g["hi"]) == pytest.approx((0.1, 0.1, 0.1)) and not g["within_noise"]


def test_seeds_that_disagree_are_within_noise_and_a_copy_never_beats():
    lb = _board()
    res = lb.summarise([_seed(0.05, 0.5, [1, 2, 3]), _seed(-0.05, 0.5, [4, 5, 6])])["val"]
    assert res["gain"]["context_mean"]["within_noise"] and not res["beats_all"]
    same = lb.summarise([_seed(0.0, 0.5, [1, 2]), _seed(0.0, 0.5, [3, 4])])["val"]
    assert same["gain"]["copy_last"]["lo"] == 0.0 and not same["beats_all"]


P4 = {"train": {"epochs": 12, "threads": 2},
      "loss": [{"name": "mse"},
               {"name": "rollout", "schedule": {"kind": "step", "epoch": 4, "before": 0.0, "after": 0.05}},
               {"name": "a", "schedule": {"kind": "step", "epoch": 6, "before": 0.0, "after": 0.002}},
               {"name": "b", "schedule": {"kind": "linear", "start_epoch": 10, "end_epoch": 11, "start": 0, "end": 1}}]}


def test_shortened_caps_epochs_and_scales_every_schedule_epoch():
    lb = _board()
    short = lb.shortened(P4, 3)
    assert short["train"]["epochs"] == 3 and P4["train"]["epochs"] == 12  # the recipe itself untouched
    sched = [loss.get("schedule") for loss in short["loss"]]
    assert sched[0] is None and sched[1]["epoch"] == 1 and sched[2]["epoch"] == 2  # 4/12 -> 1/3, 6/12 -> 2/3
    assert (sched[3]["start_epoch"], sched[3]["end_epoch"]) == (3, 4)  # 10 -> 3, 11 -> 3 kept after its start
    assert lb.shortened(P4, 12) == P4 and lb.shortened(P4, None) == P4


def test_board_plan_seeds_model_and_split_and_records_its_settings(tmp_path):
    lb = _board()
    recipe = ROOT / "examples" / "recipes" / "p4_rollout.toml"
    import tomllib

    paths = {"store": tmp_path / "s", "near_ood": None, "far_ood": tmp_path / "far"}
    plan = lb.board_plan(tomllib.loads(recipe.read_text()), recipe, 2, paths,
                         {"threads": 1, "max_epochs": 3, "gates": False})
    assert plan["seed"] == 2 and plan["data"]["split"]["seed"] == 2
    assert plan["train"]["threads"] == 1 and plan["train"]["epochs"] == 3 and "gates" not in plan
    assert plan["data"]["store"] == str(tmp_path / "s") and plan["data"]["ood"] == str(tmp_path / "far")
    run = tmp_path / "run"
    run.mkdir()
    import tomli_w

    (run / "plan.toml").write_text(tomli_w.dumps(plan))
    assert lb.run_settings(run) == {"epochs": 3, "threads": 1, "gates": False}
    old = {"epochs": 12, "threads": 2, "gates": True}
    line = lb.settings_line({"p4_rollout": [lb.run_settings(run), old], "p1_mse": [old]})
    assert "`p1_mse` 12, `p4_rollout` 3/12" in line and "torch threads 1 (1 runs), 2 (2 runs)" in line
    assert "no 5CAT battery (1 runs)" in line and "5CAT battery after training (2 runs)" in line


def test_max_epochs_option_parses_or_refuses_in_one_line(capsys):
    lb = _board()
    assert lb.parse_max_epochs("benchmark=3,gitdoc=8") == {"benchmark": 3, "gitdoc": 8} and lb.parse_max_epochs("") == {}
    for bad in ("benchmark", "benchmark=0", "benchmark=x"):
        with pytest.raises(SystemExit) as exc:
            lb.parse_max_epochs(bad)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.count("\n") == 1 and "CORPUS=N" in err and bad in err


def test_answer_table_names_the_best_model_and_every_model_beating_ridge():
    """Oracle: on VAL `a` (+0.1 everywhere) beats ridge beyond noise and is best; `b` ties ridge
    (a copy: interval [0, 0], not beyond noise); on a split where the seeds disagree nothing does."""
    lb = _board()
    disagree = [_seed(0.05, 0.5, [1, 2, 3]), _seed(-0.05, 0.5, [4, 5, 6])]
    board = {"demo": {"_baselines": {}, "_runs": {},
                      "a": lb.summarise([_seed(0.1, 0.5, [1, 2]), _seed(0.1, 0.6, [3, 4])]),
                      "b": lb.summarise([_seed(0.0, 0.5, [1, 2]), _seed(0.0, 0.6, [3, 4])])},
             "gitdoc": {"_baselines": {}, "c": lb.summarise(disagree)}}
    rows = lb.answer_table(board).splitlines()
    assert len(rows) == 4  # header, rule, one row per corpus with a VAL split
    demo, gitdoc = rows[2], rows[3]
    assert demo.startswith("| demo | VAL | 0.550 ± 0.071 | `a` (0.650 ± 0.071) | +0.100 [+0.100, +0.100] **+**")
    assert "| **yes**, beyond noise | `a` |" in demo and "`b`" not in demo
    assert gitdoc.endswith("| no: within noise | none |")
    assert lb.beats({"lo": float("nan"), "within_noise": True}) == "n/a"
    assert lb.beats({"lo": -0.2, "hi": -0.1, "within_noise": False}) == "no: below, beyond noise"


def test_a_run_cut_short_is_resumed_and_a_completed_one_is_kept(tmp_path, monkeypatch):
    """A board killed mid-run used to stop at that run folder ("delete it to rerun") for good."""
    import json
    import subprocess

    lb = _board()
    out = tmp_path / "board"
    for recipe, status in (("p1_mse", "completed"), ("p4_rollout", "running")):
        (out / recipe / "seed0").mkdir(parents=True)
        (out / recipe / "seed0" / "run.json").write_text(json.dumps({"status": status}))
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd[1:])
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(lb.subprocess, "run", fake_run)
    paths = {"store": tmp_path / "s", "near_ood": None, "far_ood": None}
    done = lb.train_missing("demo", paths, ["p1_mse", "p4_rollout", "v3_guards"], [0], out,
                            {"threads": 1, "max_epochs": 1, "gates": False})
    assert calls == [["--resume", str(out / "p4_rollout" / "seed0")],
                     ["--run", str(out / "plans" / "v3_guards-s0.toml"), "--run-dir",
                      str(out / "v3_guards" / "seed0")]]
    assert done == [out / "p1_mse" / "seed0", out / "p4_rollout" / "seed0", out / "v3_guards" / "seed0"]
