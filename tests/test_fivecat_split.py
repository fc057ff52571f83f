"""Split safety of `5cat`: a checkpoint that knows its split is scored on its val articles by
default, a set holding its training articles is refused (exit 2, one line) unless
--allow-train-overlap, and without a known split the output says `split: unknown`."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from lvm_core.data.split_guard import resolve_checkpoint_split, training_overlap
from lvm_core.data.store import ArticleStore
from lvm_core.data.windows import split_by_fractions
from lvm_core.models.networks import ARCHITECTURES
from lvm_core.training.checkpoint import read_checkpoint_meta, save_checkpoint
from tests.conftest import DEMO_STORE, OOD_STORE
from workbench.cli import main


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A run folder as the trainer writes it: split.json, and a checkpoint recording the split's
    sha256 and its store's fingerprint (a small random MLP: its verdicts are not the point)."""
    run = tmp_path_factory.mktemp("run")
    store = ArticleStore.open(DEMO_STORE)
    split = split_by_fractions(store, {"train": 0.8, "val": 0.2}, seed=0)
    split.save(run / "split.json")
    torch.manual_seed(0)
    model = ARCHITECTURES["mlp"](store.dim, 5, hidden_dim=8)
    meta = {"arch": "mlp", "arch_params": {"hidden_dim": 8}, "input_dim": store.dim, "context_len": 5,
            "split_sha256": split.sha256(), "data": store.fingerprint()}
    save_checkpoint(run / "checkpoints" / "best", model, meta)
    return run, split


def _cat(model, *extra):
    return ["5cat", "--model", str(model), "--val", str(DEMO_STORE), "--samples", "40", "--gate", "A", *extra]


def test_default_is_the_val_part_of_the_checkpoints_own_split(run_folder, tmp_path, capsys):
    run, split = run_folder
    out = tmp_path / "gates.json"
    assert main(_cat(run / "checkpoints" / "best.safetensors", "--json", str(out))) == 3
    doc = json.loads(out.read_text())
    assert doc["split"]["status"] == "own" and doc["split"]["part"] == "val"
    assert doc["split"]["sha256"] == split.sha256()
    store = ArticleStore.open(DEMO_STORE)
    assert doc["splits"]["val"]["articles"] <= len(split.parts["val"])
    captured = capsys.readouterr()
    assert f"split: the checkpoint's own, part val of {run / 'split.json'}" in captured.out
    assert "warning" not in captured.err
    assert store.n_articles > len(split.parts["val"])


@pytest.mark.parametrize("extra", [["--split-file", "SPLIT", "--val-part", "train"], ["--ood", str(DEMO_STORE)]])
def test_a_set_with_training_articles_is_refused_in_one_line(run_folder, capsys, extra):
    run, _ = run_folder
    extra = [str(run / "split.json") if e == "SPLIT" else e for e in extra]
    assert main(_cat(run / "checkpoints" / "best.safetensors", *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "training part" in err and "--allow-train-overlap" in err


def test_a_checkpoint_outside_its_run_is_refused_on_its_store_and_allowed_elsewhere(run_folder, tmp_path, capsys):
    run, split = run_folder
    lonely = tmp_path / "lonely.safetensors"
    shutil.copy(run / "checkpoints" / "best.safetensors", lonely)
    assert main(_cat(lonely)) == 2
    assert "split.json not found" in capsys.readouterr().err
    # its split.json given by hand: the hash matches, so its val part is used
    assert main(_cat(lonely, "--split-file", str(run / "split.json"))) == 3
    # another store is not its training store
    assert main(["5cat", "--model", str(lonely), "--val", str(OOD_STORE), "--samples", "40", "--gate", "A"]) == 3
    # the user may insist, and the output says what they did
    out = tmp_path / "g.json"
    assert main(_cat(lonely, "--allow-train-overlap", "--json", str(out))) == 3
    assert "TRAINING ARTICLES INCLUDED" in capsys.readouterr().out
    assert json.loads(out.read_text())["split"]["overlap_allowed"]


def test_without_a_known_split_output_and_json_say_unknown(run_folder, tmp_path, capsys):
    store = ArticleStore.open(DEMO_STORE)
    model = ARCHITECTURES["mlp"](store.dim, 5, hidden_dim=8)
    path = save_checkpoint(tmp_path / "bare", model, {"arch": "mlp", "arch_params": {"hidden_dim": 8},
                                                      "input_dim": store.dim, "context_len": 5})
    out = tmp_path / "gates.json"
    assert main(_cat(path, "--json", str(out))) == 3
    captured = capsys.readouterr()
    assert "split: unknown" in captured.out and "warning: split: unknown" in captured.err
    assert json.loads(out.read_text())["split"]["status"] == "unknown"


def test_a_split_file_for_a_checkpoint_without_a_split_is_used_with_a_warning(run_folder, tmp_path, capsys):
    """--split-file cannot be checked against a checkpoint that records no split: its part is
    scored, and the output, gates.json and a warning say it was not verified."""
    run, split = run_folder
    store = ArticleStore.open(DEMO_STORE)
    model = ARCHITECTURES["mlp"](store.dim, 5, hidden_dim=8)
    path = save_checkpoint(tmp_path / "bare", model, {"arch": "mlp", "arch_params": {"hidden_dim": 8},
                                                      "input_dim": store.dim, "context_len": 5})
    out = tmp_path / "gates.json"
    assert main(_cat(path, "--split-file", str(run / "split.json"), "--json", str(out))) == 3
    captured = capsys.readouterr()
    assert f"split: given, part val of {run / 'split.json'} (not verified: the checkpoint records no split)" in captured.out
    warning = [line for line in captured.err.splitlines() if line.startswith("warning: split")]
    assert len(warning) == 1 and "not verified" in warning[0] and str(run / "split.json") in warning[0]
    doc = json.loads(out.read_text())
    assert doc["split"]["status"] == "given" and doc["split"]["verified"] is False and doc["split"]["part"] == "val"
    assert doc["splits"]["val"]["articles"] <= len(split.parts["val"])  # the given part is what was scored


def test_resolve_and_overlap_by_hand(run_folder):
    run, split = run_folder
    known = resolve_checkpoint_split(run / "checkpoints" / "best.safetensors",
                                     read_checkpoint_meta(run / "checkpoints" / "best.safetensors"))
    store = ArticleStore.open(DEMO_STORE)
    assert known.split.sha256() == split.sha256() and known.trained_on(store)
    assert training_overlap(known, store, split.positions(store, "val")) == 0
    assert training_overlap(known, store, None) == len(split.parts["train"])
    assert training_overlap(known, ArticleStore.open(OOD_STORE), None) == 0
    first_train = split.positions(store, "train")[:3]
    assert training_overlap(known, store, np.r_[split.positions(store, "val"), first_train]) == 3
