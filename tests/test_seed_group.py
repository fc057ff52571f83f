"""Seed groups (`--run plan --seeds 0,1,2`, plan keys seeds / seed_splits) and the statistics
`runs compare` shows across seeds (lvm_core/evaluation/seed_stats.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lvm_core.errors import InputError
from lvm_core.evaluation.bootstrap import paired_intervals
from lvm_core.evaluation.compare import run_rows, seed_groups
from lvm_core.evaluation.paired_eval import load_samples
from lvm_core.evaluation.seed_stats import group_stats, mean_sd, pooled_gain
from workbench.cli import main
from workbench.seed_group import parse_seeds, seed_plan
from workbench.plan import load_plan, plan_from_text
from tests.conftest import DEMO_STORE, OOD_STORE

needs_demo = pytest.mark.skipif(not DEMO_STORE.exists(), reason="bundled data missing")

PLAN = f"""
name = "tiny"
seed = 0
{{extra}}
[data]
store = "{DEMO_STORE}"
ood = "{OOD_STORE}"
[model]
arch = "amn"
params = {{{{ d_model = 8, hidden_dim = 4 }}}}
[[loss]]
name = "cosine"
[train]
epochs = 1
lr = 1e-2
threads = 1
log_every = 1000
[eval]
max_samples = 120
"""


def _plan(tmp_path, extra=""):
    p = tmp_path / "plan.toml"
    p.write_text(PLAN.format(extra=extra))
    return p


def test_parse_seeds_and_bad_input():
    assert parse_seeds("0,1, 2") == [0, 1, 2]
    for bad in ("", "0,x", "1,1"):
        with pytest.raises(InputError, match="--seeds"):
            parse_seeds(bad)


@needs_demo
def test_plan_keys_are_validated_and_a_member_plan_carries_its_seeds(tmp_path):
    plan = load_plan(_plan(tmp_path, "seeds = [3, 4]\nseed_splits = true"))
    assert plan.seeds == [3, 4] and plan.seed_splits
    member = seed_plan(plan, 4, True)
    assert (member.seed, member.data.split.seed, member.name, member.seeds) == (4, 4, "tiny-s4", [])
    assert seed_plan(plan, 4, False).data.split.seed == 0  # the split stays without seed_splits
    with pytest.raises(InputError, match="seeds"):
        plan_from_text(PLAN.format(extra='seeds = [1, "2"]'), tmp_path)


@needs_demo
def test_cli_bad_seeds_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["--run", str(_plan(tmp_path)), "--seeds", "0,zero", "--run-dir", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seeds" in err[0] and not (tmp_path / "g").exists()


@needs_demo
def test_a_seed_group_runs_one_plan_per_seed_and_compares_them(tmp_path, capsys):
    group = tmp_path / "g"
    code = main(["--run", str(_plan(tmp_path)), "--seeds", "0,1", "--seed-splits", "--run-dir", str(group),
                 "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0
    doc = json.loads((group / "group.json").read_text())
    assert doc["seeds"] == [0, 1] and doc["seed_splits"] is True and doc["status"] == "completed"
    assert doc["runs"] == ["seed0", "seed1"]
    splits = [json.loads((group / r / "split.json").read_text()) for r in doc["runs"]]
    assert splits[0] != splits[1]  # each seed drew its own split
    for r, seed in zip(doc["runs"], (0, 1)):
        info = json.loads((group / r / "run.json").read_text())
        assert info["seed"] == seed and info["status"] == "completed"
        assert f"seed = {seed}" in (group / r / "plan.toml").read_text()  # resumable alone, with its seed
    assert "seeds (mean ± sd across runs" in out and "val vs context_mean" in out

    rows = run_rows([group])
    assert [r["group"] for r in rows] == ["g", "g"]
    st = group_stats("g", rows)
    cos = [r["val/cos"] for r in rows]
    assert st["metrics"]["val/cos"]["mean"] == pytest.approx(np.mean(cos))
    assert st["metrics"]["val/cos"]["sd"] == pytest.approx(np.std(cos, ddof=1))
    # the pooled interval is the bootstrap of both runs' per-sample differences, articles as clusters
    samples = [load_samples(group / r / "eval_samples.npz")["val"] for r in doc["runs"]]
    d = np.concatenate([s["model"].astype(np.float64) - s["context_mean"] for s in samples])
    ids = np.concatenate([s["article_id"] for s in samples])
    iv = paired_intervals(d, ids)[0]
    g = st["gains"]["val"]["context_mean"]
    assert (g["lo"], g["hi"]) == pytest.approx((iv.lo, iv.hi)) and g["articles"] == len(np.unique(ids))
    assert g["within_noise"] == (iv.lo <= 0 <= iv.hi or 0 < g["seeds_above"] < 2)
    assert set(st["gains"]["val"]) == {"copy_last", "context_mean", "ridge", "frame_weights"}

    assert main(["runs", "compare", str(group), "--json", str(tmp_path / "c.json")]) == 0
    cj = json.loads((tmp_path / "c.json").read_text())
    assert len(cj["runs"]) == 2 and cj["groups"][0]["group"] == "g"
    assert main(["runs", "ls", str(tmp_path)]) == 0
    assert "g/seed0" in capsys.readouterr().out


def test_mean_sd_by_hand():
    assert mean_sd([1.0, 2.0, 3.0]) == {"mean": 2.0, "sd": 1.0, "n": 3, "values": [1.0, 2.0, 3.0]}
    assert mean_sd([0.5])["sd"] == 0.0 and mean_sd([None, float("nan")])["mean"] is None


def _fake_run(path, model, base, ids, seed, gain_metrics=True):
    path.mkdir(parents=True)
    np.savez(path / "eval_samples.npz", **{"epoch": np.asarray(1), "val/article_id": np.asarray(ids),
                                           "val/row": np.arange(len(ids)), "val/model": np.asarray(model, np.float32),
                                           "val/context_mean": np.asarray(base, np.float32)})
    g = float(np.mean(np.asarray(model) - np.asarray(base)))
    return {"run": path.name, "path": str(path), "resolved": {"seed": seed, "name": "x"}, "val/cos": float(np.mean(model)),
            "val/context_mean/cos": float(np.mean(base)), "val/gain/context_mean": g}


def test_gains_beyond_and_within_noise(tmp_path):
    """Every sample better by 0.1 in both runs: beyond noise. Seeds that disagree in sign: within."""
    ids = [1, 1, 2, 3, 4, 4]
    a = _fake_run(tmp_path / "a", [0.6] * 6, [0.5] * 6, ids, 0)
    b = _fake_run(tmp_path / "b", [0.7] * 6, [0.6] * 6, ids, 1)
    g = group_stats("ab", [a, b])["gains"]["val"]["context_mean"]
    assert g["lo"] == pytest.approx(0.1, abs=1e-6) and not g["within_noise"] and g["seeds_above"] == 2
    c = _fake_run(tmp_path / "c", [0.6] * 6, [0.5] * 6, ids, 0)
    d = _fake_run(tmp_path / "d", [0.5] * 6, [0.65] * 6, ids, 1)
    g = group_stats("cd", [c, d])["gains"]["val"]["context_mean"]
    assert g["within_noise"] and g["seeds_above"] == 1


def test_pooled_gain_needs_every_runs_samples(tmp_path):
    a = _fake_run(tmp_path / "a", [0.6, 0.7], [0.5, 0.5], [1, 2], 0)
    (tmp_path / "b").mkdir()
    assert pooled_gain([a["path"], tmp_path / "b"], "val", "context_mean") is None
    assert pooled_gain([a["path"]], "val", "ridge") is None
    g = group_stats("a", [a, {**a, "path": str(tmp_path / "b"), "run": "b"}])["gains"]["val"]["context_mean"]
    assert g["within_noise"] and "lo" not in g  # no interval: not established


def test_runs_given_one_by_one_group_when_only_seeds_differ():
    r = lambda name, seed, lr: {"run": name, "resolved": {"name": name, "seed": seed, "train": {"lr": lr},  # noqa: E731
                                                          "data": {"split": {"seed": seed}}}}
    groups = seed_groups([r("a", 0, 1e-3), r("b", 1, 1e-3), r("c", 0, 1e-2)])
    assert [[x["run"] for x in g] for _, g in groups] == [["a", "b"]]
