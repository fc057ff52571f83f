"""One name per number, one input path (issue 9): the trainer's margin and gate A's, the trainer's
R@k and gate B's carry different names; old names still load; trainer validation and the 5CAT
battery feed the model identical tensors and get identical predictions, cos and ranks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lvm_core.data.store import ArticleStore
from lvm_core.data.windows import Windows, make_windows
from lvm_core.evaluation.battery import draw_samples, predict_split, resolve_gates, run_battery, torch_predictor
from lvm_core.evaluation.metric_names import current_name, current_threshold, upgrade_metrics, upgrade_record
from lvm_core.evaluation.metrics import cosine_rows, unit_predictions, within_article_ranks_both
from lvm_core.models.networks import ARCHITECTURES
from lvm_core.training.validation import predict, split_metrics
from tests.conftest import DEMO_STORE
from workbench.plugin_host import load_plugins
from workbench.plan import plan_from_text


@pytest.mark.parametrize("old, new", [
    ("val/margin", "val/margin_vs_last"),
    ("ood/copy_last/margin", "ood/copy_last/margin_vs_last"),
    ("val/R@5", "val/R@5_article"),
    ("val/chance_MRR", "val/chance_MRR_article"),
    ("val/candidates", "val/candidates_article"),
    ("gates/A/val/margin", "gates/A/val/margin_vs_best_offset"),
    ("gates/A/ood/oracle/margin", "gates/A/ood/oracle/margin_vs_best_offset"),
    ("gates/B/val/R@5", "gates/B/val/R@5_no_context"),
    ("gates/B/val/article/R@1", "gates/B/val/R@1_article"),
    ("gates/B/val/copy_last/without_context/MRR", "gates/B/val/copy_last/MRR_no_context"),
])
def test_old_names_map_to_the_new_ones(old, new):
    assert current_name(old) == new and current_name(new) == new


@pytest.mark.parametrize("key", ["loss/directional_margin/stat/margin", "train/loss/directional_margin/stat/margin",
                                 "w/directional_margin", "val/cos", "val/gain/copy_last/lo", "gates/C/val/shuffled",
                                 "gates/A/val/mean_plus1", "plugin/p/margin", "loss", "margin"])
def test_other_names_are_left_alone(key):
    assert current_name(key) == key


def test_upgrade_keeps_a_new_name_over_an_old_alias_and_renames_records():
    old = {"val/margin": -0.1, "gates/B/val/R@5": 0.3, "gates/B/val/without_context/R@5": 0.4, "loss": 1.0}
    new = upgrade_metrics(old)
    assert new == {"val/margin_vs_last": -0.1, "gates/B/val/R@5_no_context": 0.4, "loss": 1.0}
    rec = upgrade_record({"kind": "RunEnded", "best": {"metric": "val/R@1", "value": 0.2}})
    assert rec["best"] == {"metric": "val/R@1_article", "value": 0.2}
    assert upgrade_record({"kind": "CheckpointSaved", "metric": "val/margin"})["metric"] == "val/margin_vs_last"
    assert current_threshold("A.val.margin") == "A.val.margin_vs_best_offset"
    assert current_threshold("B.val.R@5") == "B.val.R@5" and current_threshold("A.ood.mean_plus1") == "A.ood.mean_plus1"


@pytest.fixture(scope="module")
def same_samples():
    """A small random MLP (non-linear, so its output depends on the exact input) and the 5CAT
    battery's sample set on the bundled demo store."""
    store = ArticleStore.open(DEMO_STORE)
    torch.manual_seed(3)
    model = ARCHITECTURES["mlp"](store.dim, 5, hidden_dim=32)
    rows = make_windows(store).target_rows
    s = draw_samples("val", store, rows, samples=400, horizon=5, context_len=5, seed=0, legacy=False)
    return store, model, rows, s


def test_trainer_validation_and_5cat_get_identical_predictions_cos_and_ranks(same_samples):
    store, model, rows, s = same_samples
    windows = Windows(store, s.rows, 5)
    ctx_trainer, _ = windows.batch()
    assert np.array_equal(ctx_trainer, s.model_context())  # the very same tensors go in
    trainer_pred = predict(model, windows, torch.device("cpu"))
    battery_pred = predict_split(torch_predictor(model), s, ["base"])["base"]
    unit_trainer = unit_predictions(trainer_pred)[0]
    assert np.array_equal(unit_trainer, battery_pred)  # bit for bit
    # per-sample cos and ranks in both candidate sets
    assert np.allclose(cosine_rows(trainer_pred, store.gather(s.rows)), np.einsum("ij,ij->i", battery_pred, s.unit_rows(0)),
                       atol=1e-6, rtol=0)
    a = within_article_ranks_both(store, trainer_pred, s.rows, 5)
    b = within_article_ranks_both(store, battery_pred, s.rows, 5)
    for cset in ("article", "no_context"):
        assert np.array_equal(a[cset][0], b[cset][0]) and np.array_equal(a[cset][1], b[cset][1])
    # and the summaries each screen shows: one name, one number
    host = load_plugins()
    gates = resolve_gates(lambda n: host.get("gate", n), ["A", "B", "C"])
    res = run_battery(torch_predictor(model), {"val": (store, rows)}, gates, samples=400, horizon=5, seed=0)
    trainer = {k[len("val/"):]: v for k, v in split_metrics("val", windows, trainer_pred).items()}
    for name in ("R@1_article", "R@5_article", "MRR_article", "R@1_no_context", "R@5_no_context", "MRR_no_context",
                 "chance_R@5_article", "chance_R@5_no_context"):
        assert res.metrics["B"]["val"]["model"][name] == trainer[name], name
    assert res.metrics["C"]["val"]["model"]["base_cos"] == pytest.approx(trainer["cos"], abs=1e-6)
    assert res.metrics["A"]["val"]["model"]["k=+1"] == pytest.approx(trainer["cos"], abs=1e-6)


def test_a_name_shared_by_trainer_and_gates_is_one_number(same_samples):
    """Every metric name the trainer logs for a split that a gate also reports for the same
    samples has the same value there; the two margins and the two candidate sets never share
    a name (the issue's "margin -0.126 vs -0.156", "R@5 0.118 vs 0.386")."""
    store, model, rows, s = same_samples
    host = load_plugins()
    gates = resolve_gates(lambda n: host.get("gate", n), ["A", "B"])
    res = run_battery(torch_predictor(model), {"val": (store, rows)}, gates, samples=400, horizon=5, seed=0)
    windows = Windows(store, s.rows, 5)
    trainer = {k[len("val/"):]: v for k, v in split_metrics("val", windows, predict(model, windows, torch.device("cpu"))).items()}
    for gate in ("A", "B"):
        gm = res.metrics[gate]["val"]["model"]
        for name in set(gm) & set(trainer):
            assert gm[name] == pytest.approx(trainer[name], abs=1e-6), (gate, name)
    assert "margin_vs_last" in trainer and "margin_vs_best_offset" in res.metrics["A"]["val"]["model"]
    assert trainer["margin_vs_last"] != pytest.approx(res.metrics["A"]["val"]["model"]["margin_vs_best_offset"], abs=1e-4)
    for ambiguous in ("margin", "R@1", "R@5", "MRR"):
        assert ambiguous not in trainer and all(ambiguous not in res.metrics[g]["val"]["model"] for g in "AB")


def test_legacy_mode_still_feeds_unit_contexts_as_the_original(same_samples):
    store, _model, rows, _s = same_samples
    legacy = draw_samples("val", store, rows, samples=50, horizon=5, context_len=5, seed=0, legacy=True)
    norms = np.linalg.norm(legacy.model_context(), axis=-1)
    assert np.allclose(norms, 1.0, atol=1e-6)
    assert np.array_equal(legacy.model_context(), legacy.unit_context())


PLAN = """
name = "old-names"
[data]
store = "{store}"
context_len = 5
[data.split]
fractions = {{ train = 0.8, val = 0.2 }}
[model]
arch = "mlp"
[[loss]]
name = "cosine"
[train]
select_metric = "{select}"
[gates]
thresholds = {{ "A.val.margin" = 0.05 }}
[[tripwire]]
when = "val/R@5 < 0.01"
"""


def test_a_plan_with_old_names_is_read_under_the_new_ones_with_a_note(tmp_path):
    plan = plan_from_text(PLAN.format(store=DEMO_STORE, select="val/margin"), tmp_path, host=load_plugins())
    assert plan.train.select_metric == "val/margin_vs_last"
    assert plan.tripwires[0].when.metric == "val/R@5_article"
    assert plan.notes == [
        "train.select_metric: 'val/margin' is the old name of 'val/margin_vs_last' (one name per number: "
        "docs/metrics.md); read as 'val/margin_vs_last'",
        "tripwire[0].when: 'val/R@5' is the old name of 'val/R@5_article' (one name per number: docs/metrics.md); "
        "read as 'val/R@5_article'"]
    host = load_plugins()
    gates = resolve_gates(lambda n: host.get("gate", n), ["A"], plan.gates.thresholds)
    assert gates[0].thresholds["val.margin_vs_best_offset"] == 0.05
    fresh = plan_from_text(PLAN.format(store=DEMO_STORE, select="val/cos"), tmp_path, host=host)
    assert fresh.train.select_metric == "val/cos" and len(fresh.notes) == 1  # only the tripwire's


def test_an_unknown_metric_is_still_one_clear_error(tmp_path):
    from lvm_core.errors import InputError

    with pytest.raises(InputError) as err:
        plan_from_text(PLAN.format(store=DEMO_STORE, select="val/margn").replace("val/R@5 <", "val/cos <"), tmp_path,
                       host=load_plugins())
    assert "train.select_metric" in str(err.value) and "did you mean 'val/margin_vs_last'" in str(err.value)


def test_a_resume_state_saved_before_the_rename_loads_under_the_new_names():
    """--resume of a run checkpointed before the rename: its best metric, last evaluation and the
    tripwires' previous evaluation come back under the current names (lvm_core/training/state.py)."""
    from lvm_core.training.schedules import LrSchedule
    from lvm_core.training.state import Best, TrainState
    from lvm_core.training.tripwires import TripwireBoard

    def state() -> TrainState:
        model = torch.nn.Linear(4, 4)
        return TrainState(model, torch.optim.AdamW(model.parameters()), LrSchedule(1e-3, "constant"), [],
                          TripwireBoard([]), Best("val/margin_vs_last", "max"))

    saved = state().state_dict()
    saved["best"] = {**saved["best"], "metric": "val/margin", "value": -0.1, "epoch": 2, "step": 20}
    saved["last_eval"] = {"val/margin": -0.1, "val/R@5": 0.3, "gates/A/val/margin": -0.2, "val/cos": 0.5}
    saved["tripwires"] = {**saved["tripwires"], "previous": {"val/margin": -0.1}}
    resumed = state()
    resumed.load_state_dict(saved)
    assert resumed.best.metric == "val/margin_vs_last" and resumed.best.value == -0.1
    assert resumed.last_eval == {"val/margin_vs_last": -0.1, "val/R@5_article": 0.3,
                                 "gates/A/val/margin_vs_best_offset": -0.2, "val/cos": 0.5}
    assert resumed.tripwires.previous == {"val/margin_vs_last": -0.1}
