"""`lvm-workbench 5cat`: exit codes, gates.json schema, report, model sources."""

from __future__ import annotations

import json

import pytest
import torch

from lvm_core.models.networks import ARCHITECTURES
from lvm_core.training.checkpoint import save_checkpoint
from tests._gates_helpers import walk_store
from tests.conftest import DEMO_STORE, OOD_STORE
from workbench.cli import main

LOOSE_C = ["C.shuffled=1", "C.reversed=1", "C.loo_avg=1"]


@pytest.fixture
def stores(tmp_path):
    val = walk_store(tmp_path / "val", lengths=(30, 40, 25, 33, 50))
    ood = walk_store(tmp_path / "ood", seed=3)
    return str(val.path), str(ood.path)


def _args(model, stores, *extra):
    return ["5cat", "--model", model, "--val", stores[0], "--ood", stores[1], "--samples", "60", *extra]


def test_oracle_fails_only_c_and_writes_schema_versioned_json(tmp_path, stores, capsys):
    out, report = tmp_path / "gates.json", tmp_path / "report.md"
    assert main(_args("oracle", stores, "--json", str(out), "--report", str(report))) == 3
    doc = json.loads(out.read_text())
    assert doc["schema"] == "lvm-workbench/gates" and doc["schema_version"] == 1
    assert {k: v["passed"] for k, v in doc["gates"].items()} == {"A": True, "B": True, "C": False, "D": True, "E": True,
                                                                     "vs_baselines": True}
    assert doc["score"] == 4 and doc["max_score"] == 5 and doc["passed"] is False
    assert doc["splits"]["val"]["samples"] == 60 and doc["model"]["model"] == "baseline oracle"
    assert "5CAT (standard): FAIL, A-E 4/5 (pass needs all 5); beats baselines: val yes" in capsys.readouterr().out
    assert "| A offset sweep | val | mean_plus1 |" in report.read_text()


def test_exit_0_when_every_gate_passes(stores):
    assert main(_args("oracle", stores, *[f"--threshold={t}" for t in LOOSE_C])) == 0


def test_bad_input_exits_2_with_one_line(tmp_path, stores, capsys):
    assert main(["5cat", "--model", "oracle", "--val", str(tmp_path / "missing")]) == 2
    assert main(_args("oracle", stores, "--threshold", "A.val.nope=1")) == 2
    assert main(_args(str(tmp_path / "none.safetensors"), stores)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)


def test_a_safetensors_checkpoint_and_an_original_pt(tmp_path, stores):
    torch.manual_seed(0)
    model = ARCHITECTURES["amn"](64, 5, d_model=8, hidden_dim=16)
    ckpt = save_checkpoint(tmp_path / "amn", model, {"arch": "amn", "arch_params": {"d_model": 8, "hidden_dim": 16},
                                                     "input_dim": 64, "context_len": 5})
    out = tmp_path / "g.json"
    assert main(_args(str(ckpt), stores, "--json", str(out))) == 3
    first = json.loads(out.read_text())
    torch.save({"model_type": "amn", "model_state_dict": model.state_dict(), "model_config": {}}, tmp_path / "old.pt")
    assert main(_args(str(tmp_path / "old.pt"), stores, "--json", str(out))) == 3
    second = json.loads(out.read_text())
    assert first["gates"]["A"]["metrics"] == second["gates"]["A"]["metrics"]  # same weights, same numbers


@pytest.mark.skipif(not (DEMO_STORE.exists() and OOD_STORE.exists()), reason="bundled data not built yet")
def test_on_the_bundled_real_data(tmp_path, capsys):
    out = tmp_path / "gates.json"
    code = main(["5cat", "--model", "copy_last", "--val", str(DEMO_STORE), "--ood", str(OOD_STORE),
                 "--samples", "500", "--json", str(out)])
    assert code == 3
    doc = json.loads(out.read_text())
    assert doc["gates"]["A"]["passed"] is False  # copy-last must fail A on real text
    oracle = doc["baselines"]["oracle"]["gates"]
    assert oracle["A"] and oracle["B"] and oracle["D"]
    a = doc["gates"]["A"]["metrics"]["val"]["model"]
    assert a["k=0"] == pytest.approx(1.0, abs=1e-3) and a["best_k"] == 0


def test_5cat_seed_is_not_taken_for_an_abbreviation_of_the_top_level_seeds():
    """`5cat --seed 1` was refused: "ambiguous option: --seed could match --seeds, --seed-splits"."""
    from workbench.cli import build_parser

    args = build_parser().parse_args(["5cat", "--model", "copy_last", "--val", "store", "--seed", "1"])
    assert args.seed == 1 and args.seeds is None
