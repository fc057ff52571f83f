"""The trainer: validation numbers against hand-computed cases, baselines, checkpoint selection,
NaN -> diverged with the last good checkpoint intact, early stop, collapse alert, events and files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lvm_core.data.windows import make_windows
from lvm_core.training.checkpoint import load_weights, read_checkpoint_meta
from lvm_core.training.loop import BatchSource, LossTerm, epoch_order, train
from lvm_core.training.validation import baseline_metrics, evaluate
from tests._train_helpers import (ConstantModel, LastLinear, mse_strategy, quarter_turn_store, scripted_loss,
                                  setup_for)
from tests.conftest import make_tiny_store

torch.set_num_threads(1)
H4 = 1 + 1 / 2 + 1 / 3 + 1 / 4


@pytest.fixture
def qstore(tmp_path):
    return quarter_turn_store(tmp_path / "q.lvmstore")


def _eval_windows(qstore):
    w = make_windows(qstore, np.array([1]), 2)
    assert list(w.target_rows) == [5, 6]  # article 8 starts at row 3; targets are its chunks 2 and 3
    return w


def test_validation_metrics_hand_computed(qstore, tmp_path):
    # prediction (1, 0) for both windows: targets E2, E3; last chunks E1, E2
    setup = setup_for(tmp_path, qstore, ConstantModel((1.0, 0.0)), [], eval_articles=[1])
    m = evaluate(setup.model, setup.eval_sets, torch.device("cpu"))
    assert m["val/cos"] == pytest.approx((-1 + 0) / 2)
    assert m["val/cos_last"] == pytest.approx((0 + -1) / 2)
    assert m["val/margin_vs_last"] == pytest.approx(((-1 - 0) + (0 - -1)) / 2)
    # sims to the 4 chunks of article 8: E0 1, E1 0, E2 -1, E3 0 -> target E2 rank 4, E3 rank 3
    # (its tie with E1 counts against it)
    assert m["val/R@1_article"] == 0.0 and m["val/R@5_article"] == 1.0
    assert m["val/MRR_article"] == pytest.approx((1 / 4 + 1 / 3) / 2)
    assert m["val/chance_R@1_article"] == pytest.approx(0.25)
    assert m["val/chance_MRR_article"] == pytest.approx(H4 / 4)


def test_baselines_hand_computed_on_the_same_samples(qstore, tmp_path):
    setup = setup_for(tmp_path, qstore, ConstantModel(), [], eval_articles=[1])
    b = baseline_metrics(setup.eval_sets)
    # copy-last predicts E1 then E2: cos to targets 0, 0; cos to itself 1 -> margin -1
    assert b["val/copy_last/cos"] == pytest.approx(0.0)
    assert b["val/copy_last/margin_vs_last"] == pytest.approx(-1.0)
    # the last chunk itself outranks the target and one chunk ties it (ties count against): rank 3
    assert b["val/copy_last/MRR_article"] == pytest.approx(1 / 3)
    # context mean of (E0, E1) is (1, 1)/sqrt2: cos to E2 is -1/sqrt2, to the last chunk E1 +1/sqrt2
    r = 1 / math.sqrt(2)
    assert b["val/context_mean/cos"] == pytest.approx(-r)
    assert b["val/context_mean/margin_vs_last"] == pytest.approx(-2 * r)
    assert b["val/context_mean/MRR_article"] == pytest.approx(1 / 4)  # each target ties one chunk below two
    assert "val/copy_last/chance_R@1_article" not in b  # chance is per split, printed once


def test_batches_gather_the_right_rows(tmp_path):
    store = make_tiny_store(tmp_path / "s", lengths=(8, 7, 9))
    w = make_windows(store, None, 3)
    src = BatchSource(store, 3, torch.device("cpu"), resident_bytes=1 << 30)
    host_src = BatchSource(store, 3, torch.device("cpu"), resident_bytes=0)  # memory-mapped path
    idx = np.array([0, 5, len(w) - 1])  # first window of articles 0 and 1 (5 windows in 8 chunks), last of 2
    ctx, tgt = w.batch(idx)
    for s in (src, host_src):
        b = s.batch(torch.from_numpy(w.target_rows[idx]), epoch=1, step=0)
        assert np.array_equal(b.contexts.numpy(), ctx) and np.array_equal(b.targets.numpy(), tgt)
        assert np.array_equal(b.last.numpy(), store.gather(w.target_rows[idx] - 1))
        assert b.article.tolist() == [0, 1, 2]
    assert src.row_article(torch.tensor([-1, 0, 8, 23, 24])).tolist() == [-1, 0, 1, 2, -1]


def test_epoch_order_is_a_pure_function_of_seed_and_epoch():
    assert np.array_equal(epoch_order(50, 3, 2), epoch_order(50, 3, 2))
    assert not np.array_equal(epoch_order(50, 3, 2), epoch_order(50, 3, 3))
    assert sorted(epoch_order(50, 3, 2)) == list(range(50))


class _Teleport:
    """Zero-gradient loss that moves the constant model's direction at the start of an epoch."""

    def __init__(self, directions):
        self.directions = directions

    def __call__(self, batch, model):
        with torch.no_grad():
            model.p.copy_(torch.tensor(self.directions[batch.epoch]))
        return {"zero": model.p.sum() * 0.0}


def test_collapse_alert_and_selection_on_any_metric(qstore, tmp_path):
    # epoch 1 predicts (-1, 0): val cos (1 + 0)/2 = 0.5; epoch 2 predicts (1, 0): val cos -0.5
    teleport = LossTerm("zero", _Teleport({1: (-1.0, 0.0), 2: (1.0, 0.0)}))
    setup = setup_for(tmp_path, qstore, ConstantModel(), [teleport], train_articles=[0], eval_articles=[1],
                      epochs=2, batch_size=1, weight_decay=0.0, select_metric="val/cos", collapse_drop=0.5)
    result = train(setup)
    assert result.status == "completed"
    events = setup.run.read_jsonl("events.jsonl")
    alerts = [e for e in events if e["kind"] == "Alert"]
    assert [(a["code"], a["epoch"]) for a in alerts] == [("collapse", 2)]
    assert "0.5000 to -0.5000" in alerts[0]["message"]
    assert result.best == {"metric": "val/cos", "mode": "max", "value": pytest.approx(0.5), "epoch": 1, "step": 1}
    best = load_weights(setup.run.checkpoint("best"))
    assert best["p"].tolist() == [-1.0, 0.0]
    assert read_checkpoint_meta(setup.run.checkpoint("best"))["epoch"] == 1
    # the same run selecting the minimum keeps epoch 2
    setup2 = setup_for(tmp_path, qstore, ConstantModel(), [LossTerm("zero", _Teleport({1: (-1.0, 0.0), 2: (1.0, 0.0)}))],
                       train_articles=[0], eval_articles=[1], epochs=2, batch_size=1, weight_decay=0.0,
                       select_metric="val/cos", select_mode="min", run_name="run2")
    assert train(setup2).best["epoch"] == 2


def test_early_stop_counts_evaluations_without_improvement(qstore, tmp_path):
    loss = LossTerm("scripted", scripted_loss({1: 0.5, 2: 0.4, 3: 0.6, 4: 0.45, 5: 0.3, 6: 0.2}))
    setup = setup_for(tmp_path, qstore, ConstantModel(), [loss], train_articles=[0], eval_articles=[1], epochs=6,
                      batch_size=1, early_stop_metric="train/loss", early_stop_mode="min", early_stop_patience=2)
    result = train(setup)
    # best 0.5, 0.4; then 0.6 (1 bad), 0.45 (2 bad) -> stop after epoch 4
    assert (result.status, result.epoch) == ("completed", 4)
    evals = [m for m in setup.run.read_jsonl("metrics.jsonl") if m["kind"] == "EvalDone"]
    assert [e["metrics"]["train/loss"] for e in evals] == pytest.approx([0.5, 0.4, 0.6, 0.45])
    codes = [e["code"] for e in setup.run.read_jsonl("events.jsonl") if e["kind"] == "Alert"]
    assert codes == ["early_stop"]


class _NanFrom:
    def __init__(self, epoch):
        self.epoch = epoch

    def __call__(self, batch, model):
        loss = mse_strategy(batch, model)["mse"]
        return {"mse": loss * float("nan") if batch.epoch >= self.epoch else loss}


def test_nan_loss_means_diverged_and_the_last_good_checkpoint_stays(tmp_path):
    store = make_tiny_store(tmp_path / "s", lengths=(10,) * 8)
    setup = setup_for(tmp_path, store, LastLinear(store.dim), [LossTerm("mse", _NanFrom(2))],
                      train_articles=range(6), eval_articles=[6, 7], epochs=3, batch_size=4, log_every=3,
                      context_len=3)
    saved = {}
    result = train(setup, sinks=[lambda e: saved.setdefault(e.tag, {k: v.clone() for k, v in setup.model.state_dict().items()})
                                 if e.kind == "CheckpointSaved" and e.epoch == 1 else None])
    steps_per_epoch = (6 * 7) // 4
    assert result.status == "diverged"
    last = load_weights(setup.run.checkpoint("last"))
    assert read_checkpoint_meta(setup.run.checkpoint("last"))["step"] == steps_per_epoch
    assert all(torch.equal(last[k], saved["last"][k]) for k in last)
    assert all(torch.isfinite(v).all() for v in last.values())
    info = setup.run.read_json("run.json")
    assert info["status"] == "diverged" and "non-finite loss" in info["error"]
    kinds = [e["kind"] for e in setup.run.read_jsonl("events.jsonl")]
    assert kinds[-2:] == ["Alert", "RunEnded"]
    # epoch 2 starts after step 10 and logs at step 12 (every 3rd step): the NaN is found there
    assert "between step 10 and step 12" in info["error"]


def test_events_and_run_directory_files(tmp_path):
    store = make_tiny_store(tmp_path / "s", lengths=(10,) * 8)
    seen = []
    setup = setup_for(tmp_path, store, LastLinear(store.dim), [LossTerm("mse", mse_strategy)],
                      train_articles=range(6), eval_articles=[6, 7], epochs=2, batch_size=4, log_every=4,
                      context_len=3, select_metric="val/margin_vs_last")  # epoch 2 is no better on this metric
    result = train(setup, sinks=[seen.append])
    assert result.status == "completed" and result.step == 2 * ((6 * 7) // 4)
    names = sorted(str(p.relative_to(setup.run.path)) for p in setup.run.path.rglob("*") if p.is_file())
    # epoch 1: best (gen 1), last (gen 2); epoch 2 (no better): last (3); kept: the two newest last, the newest best
    gens = ["gen-000001-step-10-best", "gen-000002-step-10-last", "gen-000003-step-20-last"]
    assert names == ["checkpoints/best.safetensors",
                     *(f"checkpoints/{g}/model.{x}" for g in gens for x in ("safetensors", "state.pt")),
                     "checkpoints/last.safetensors", "eval_samples.npz", "events.jsonl", "metrics.jsonl", "report.md", "run.json"]
    metrics = setup.run.read_jsonl("metrics.jsonl")
    steps = [m["step"] for m in metrics if m["kind"] == "StepLogged"]
    assert steps == [4, 8, 10, 12, 16, 20]  # every 4th step and at each epoch end (10 steps an epoch)
    assert [m["kind"] for m in metrics].count("EvalDone") == 2
    ev = metrics[-1]["metrics"]
    for key in ("val/cos", "val/margin_vs_last", "val/R@1_article", "val/R@5_article", "val/MRR_article",
                "val/chance_R@5_article", "val/R@1_no_context", "val/R@5_no_context", "val/chance_R@5_no_context",
                "val/copy_last/margin_vs_last", "val/context_mean/cos", "train/loss", "train/loss/mse"):
        assert key in ev
    events = [e["kind"] for e in setup.run.read_jsonl("events.jsonl")]
    assert events[0] == "RunStarted" and events[-1] == "RunEnded"
    assert events.count("CheckpointSaved") >= 2
    assert [e.kind for e in seen if e.kind != "StepLogged"][:3] == ["RunStarted", "EpochEnded", "EvalDone"]
    info = setup.run.read_json("run.json")
    assert info["status"] == "completed" and info["step"] == result.step and info["best"]["metric"] == "val/margin_vs_last"
    report = (setup.run.path / "report.md").read_text()
    assert "copy_last" in report and "context_mean" in report and "chance" in report
    json.dumps(info)  # JSON-clean (no NaN)


def test_grad_accumulation_matches_one_big_batch(tmp_path):
    store = make_tiny_store(tmp_path / "s", lengths=(12,) * 4)
    finals = []
    for name, bs, acc in (("big", 8, 1), ("accum", 4, 2)):
        model = LastLinear(store.dim)
        model.drop.p = 0.0
        setup = setup_for(tmp_path, store, model, [LossTerm("mse", mse_strategy)], train_articles=range(3),
                          eval_articles=[3], epochs=1, batch_size=bs, grad_accum=acc, context_len=3, run_name=name)
        train(setup)
        finals.append(model.lin.weight.detach().clone())
    assert torch.allclose(finals[0], finals[1], atol=1e-6)


def test_selection_on_the_train_loss(qstore, tmp_path):
    loss = LossTerm("scripted", scripted_loss({1: 0.5, 2: 0.3, 3: 0.4}))
    setup = setup_for(tmp_path, qstore, ConstantModel(), [loss], train_articles=[0], eval_articles=[1], epochs=3,
                      batch_size=1, select_metric="loss", select_mode="min")
    best = train(setup).best
    assert best["epoch"] == 2 and best["value"] == pytest.approx(0.3)


def test_run_directories_are_fresh_or_empty(tmp_path):
    from lvm_core.errors import InputError
    from lvm_core.rundir import claim_run_dir, new_run_dir

    a, b = new_run_dir(tmp_path / "runs", "demo"), new_run_dir(tmp_path / "runs", "demo")
    assert a != b and a.name.startswith("demo-") and b.name.startswith(a.name)  # same second: suffix -2
    assert claim_run_dir(tmp_path / "new").is_dir()
    (tmp_path / "new" / "x").write_text("keep me")
    with pytest.raises(InputError, match="not empty"):
        claim_run_dir(tmp_path / "new")
    assert (tmp_path / "new" / "x").read_text() == "keep me"


def test_metrics_table_rows_and_missing_values():
    from lvm_core.rundir import format_table, metrics_table

    m = {"val/cos": 0.5, "val/margin_vs_last": -0.25, "val/copy_last/cos": 0.75, "val/chance_R@1_no_context": 0.125}
    rows = metrics_table(m)
    assert rows[0] == ["split", "predictor", "cos", "margin_vs_last", "R@5_article", "R@1_no_context", "R@5_no_context",
                       "MRR_no_context"]
    assert rows[1][:4] == ["val", "model", "0.5000", "-0.2500"] and rows[1][4] == "-"
    assert rows[2][:3] == ["val", "copy_last", "0.7500"] and rows[4][:6] == ["val", "chance", "", "", "-", "0.1250"]
    assert len(rows) == 5  # no ood rows without ood metrics
    assert format_table(rows, markdown=True).splitlines()[1].startswith("|---")


def test_a_controlled_weight_follows_the_logged_shares(qstore, tmp_path):
    from lvm_core.training.weight_control import ShareController

    # both terms are constant 1.0; the controlled one should hold 20% of the loss:
    # w* = 0.2 * rest / (0.8 * term) = 0.2 * 1 / 0.8 = 0.25, set after the first logged step
    fixed = LossTerm("fixed", scripted_loss({e: 1.0 for e in (1, 2)}))
    ctl = LossTerm("ctl", scripted_loss({e: 1.0 for e in (1, 2)}), weight=1.0,
                   control=ShareController(0.2, smoothing=0.0, max_change=100.0, weight=1.0))
    setup = setup_for(tmp_path, qstore, ConstantModel(), [fixed, ctl], train_articles=[0], eval_articles=[1],
                      epochs=2, batch_size=1, log_every=1)
    train(setup)
    logs = [m["metrics"] for m in setup.run.read_jsonl("metrics.jsonl") if m["kind"] == "StepLogged"]
    assert [(l["w/ctl"], l["loss"]) for l in logs] == [(1.0, 2.0), (0.25, 1.25)]


class _PoisonLastUpdateOfEpoch:
    """A finite loss whose gradient is NaN at one step: sqrt(0 * p) has value 0 and gradient
    inf * 0 = NaN, so the weights turn NaN while every logged loss stays finite."""

    def __init__(self, step):
        self.step = step

    def __call__(self, batch, model):
        loss = mse_strategy(batch, model)["mse"]
        if batch.step == self.step:
            loss = loss + torch.sqrt(sum(p.sum() for p in model.parameters()) * 0.0)
        return {"mse": loss}


def test_nan_weights_after_a_finite_loss_are_never_saved(tmp_path):
    store = make_tiny_store(tmp_path / "s", lengths=(10,) * 8)
    steps_per_epoch = (6 * 7) // 4
    poison = _PoisonLastUpdateOfEpoch(2 * steps_per_epoch - 1)  # the last update of epoch 2
    setup = setup_for(tmp_path, store, LastLinear(store.dim), [LossTerm("mse", poison)],
                      train_articles=range(6), eval_articles=[6, 7], epochs=3, batch_size=4, log_every=100,
                      context_len=3)
    result = train(setup, sinks=[])
    assert result.status == "diverged" and "non-finite weights" in (result.error or "")
    last = load_weights(setup.run.checkpoint("last"))
    assert read_checkpoint_meta(setup.run.checkpoint("last"))["step"] == steps_per_epoch
    assert all(torch.isfinite(v).all() for v in last.values())
