"""Plan files: every kind of validation error, all reported at once with key path and line;
round trip plan -> TOML -> plan."""

from __future__ import annotations

import pytest
import tomli

from lvm_core.errors import InputError, InputErrors
from lvm_core.training.schedules import WeightSchedule
from tests.conftest import make_tiny_store
from workbench.plugin_host import load_plugins
from workbench.plan import load_plan, plan_from_text, plan_to_toml, toml_key_lines

GOOD = """\
name = "good"
seed = 1

[data]
store = "tiny"
context_len = 3
[data.split]
fractions = { train = 0.75, val = 0.25 }
seed = 2

[model]
arch = "mlp"
[model.params]
hidden_dim = 16

[[loss]]
name = "mse"
[[loss]]
name = "directional_margin"
weight = 0.5
params = { margin = 0.1 }
schedule = { kind = "linear", start_epoch = 1, end_epoch = 3, start = 0.0, end = 0.5 }

[train]
epochs = 2
lr = 1e-3
select_metric = "val/R@5_no_context"

[eval]
max_samples = 50

[gates]
samples = 20
thresholds = { "A.val.mean_plus1" = 0.4 }
"""

BAD = """\
name = "bad name!"
seeed = 1

[data]
store = "nowhere"
context_len = 3
[data.split]
fractions = { train = 0.7, val = 0.2 }

[model]
arch = "transformr"

[[loss]]
name = "mse"
params = { scale = 2 }
[[loss]]
name = "directional_margin"
weight = "heavy"
schedule = { kind = "step", epoch = 0, before = 0.0, after = 0.5 }

[train]
epochs = "ten"
lr = -1.0
lr_schedule = "linear"
batchsize = 32
device = "gpu"
select_metric = "val/margn"

[eval]
every = 0
"""


@pytest.fixture(scope="module")
def host():
    return load_plugins(entry_points=False)


@pytest.fixture
def plan_dir(tmp_path):
    make_tiny_store(tmp_path / "tiny", lengths=(10,) * 8)
    return tmp_path


def test_good_plan_fills_defaults_and_resolves_paths(plan_dir, host):
    (plan_dir / "good.toml").write_text(GOOD)
    plan = load_plan(plan_dir / "good.toml", host=host)
    assert plan.data.store == (plan_dir / "tiny").resolve()
    assert plan.model.params == {"hidden_dim": 16, "dropout": 0.1}  # declared default filled in
    assert plan.losses[1].params["margin"] == 0.1 and plan.losses[1].weight == 0.5
    assert plan.losses[1].schedule == WeightSchedule("linear", start_epoch=1, end_epoch=3, start=0.0, end=0.5)
    assert plan.train.epochs == 2 and plan.train.batch_size == 64 and plan.train.lr == 1e-3
    assert plan.gates is not None and plan.gates.samples == 20


def test_round_trip_plan_toml_plan(plan_dir, host):
    plan = plan_from_text(GOOD, plan_dir, host=host)
    again = plan_from_text(plan_to_toml(plan), "/somewhere/else", host=host)  # absolute paths
    assert again == plan
    rel = plan_to_toml(plan, relative_to=plan_dir)
    assert tomli.loads(rel)["data"]["store"] == "tiny"
    assert plan_from_text(rel, plan_dir, host=host) == plan
    assert plan_to_toml(again) == plan_to_toml(plan)


def test_every_problem_is_reported_at_once_with_key_and_line(plan_dir, host):
    with pytest.raises(InputErrors) as err:
        plan_from_text(BAD, plan_dir, source="bad.toml", host=host)
    lines = err.value.lines()
    text = "\n".join(lines)

    def has(where: str, *words: str) -> bool:
        return any(l.startswith(f"bad.toml: {where}:") and all(w in l for w in words) for l in lines)

    assert has("line 1: name", "letters, digits")
    assert has("line 2: seeed", "unknown key", "did you mean 'seed'")
    assert has("line 5: data.store", "no such store")
    assert has("line 8: data.split.fractions", "sum to 1")
    assert has("line 11: model.arch", "unknown model 'transformr'", "transformer", "did you mean 'transformer'")
    assert has("line 15: loss[0].params.scale", "unknown parameter")
    assert has("line 18: loss[1].weight", "expected a number", "'heavy'")
    assert has("line 19: loss[1].schedule.epoch", ">= 1")
    assert has("line 22: train.epochs", "expected an integer", "'ten'")
    assert has("line 23: train.lr", "expected > 0")
    assert has("line 24: train.lr_schedule", "cosine")
    assert has("line 25: train.batchsize", "unknown key", "did you mean 'batch_size'")
    assert has("line 26: train.device", "auto, cpu, cuda")
    assert has("line 27: train.select_metric", "not a metric", "did you mean 'val/margin_vs_last'")
    assert has("line 30: eval.every", ">= 1")
    assert len(lines) == 15, text


def test_missing_tables_and_unknown_loss(plan_dir, host):
    with pytest.raises(InputErrors) as err:
        plan_from_text('name = "x"\n[[loss]]\nname = "msee"\n', plan_dir, source="p.toml", host=host)
    lines = err.value.lines()
    assert any("p.toml: data:" in l and "missing table [data]" in l for l in lines)
    assert any("p.toml: model:" in l and "missing table [model]" in l for l in lines)
    assert any("line 3: loss[0].name" in l and "unknown loss 'msee'" in l and "did you mean 'mse'" in l for l in lines)


def test_split_and_gate_problems(plan_dir, host):
    text = GOOD.replace('fractions = { train = 0.75, val = 0.25 }', 'ranges = { val = [[100, 101]] }\nrest = "rest"')
    text = text.replace('"A.val.mean_plus1" = 0.4', '"Z.val.x" = 0.4')
    with pytest.raises(InputErrors) as err:
        plan_from_text(text, plan_dir, source="p.toml", host=host)
    lines = err.value.lines()
    assert any("data.split" in l and "'train' and 'val'" in l for l in lines)
    assert any("gates.thresholds.Z.val.x" in l for l in lines)


def test_selecting_on_a_loss_needs_min_mode(plan_dir, host):
    text = GOOD.replace('select_metric = "val/R@5_no_context"', 'select_metric = "loss/mse"\nearly_stop_metric = "train/loss"')
    with pytest.raises(InputErrors) as err:
        plan_from_text(text, plan_dir, source="p.toml", host=host)
    assert err.value.lines() == [
        "p.toml: line 24: train.select_mode: 'max' would keep the highest loss/mse; set select_mode = \"min\"",
        "p.toml: line 24: train.early_stop_mode: 'max' would keep the highest train/loss; set early_stop_mode = \"min\""]
    ok = text.replace('early_stop_metric = "train/loss"', 'early_stop_metric = "train/loss"\nearly_stop_mode = "min"\n'
                      'select_mode = "min"')
    assert plan_from_text(ok, plan_dir, host=host).train.select_metric == "loss/mse"


def test_a_loss_weight_controller_is_checked_and_round_trips(plan_dir, host):
    text = GOOD.replace('params = { margin = 0.1 }', 'params = { margin = 0.1 }\ncontrol = { target_share = 0.2, max = 0.05 }')
    with pytest.raises(InputError, match="line 22: loss.1..control: give either a schedule or a control"):
        plan_from_text(text, plan_dir, source="p.toml", host=host)
    text = text.replace('schedule = { kind = "linear", start_epoch = 1, end_epoch = 3, start = 0.0, end = 0.5 }\n', "")
    plan = plan_from_text(text, plan_dir, host=host)
    assert plan.losses[1].control == {"target_share": 0.2, "max": 0.05}
    assert plan_from_text(plan_to_toml(plan), plan_dir, host=host) == plan
    with pytest.raises(InputError, match=r"line 22: loss\[1\]\.control\.target_share: required"):
        plan_from_text(text.replace("target_share = 0.2, ", ""), plan_dir, source="p.toml", host=host)


def test_toml_syntax_error_names_line_and_column(plan_dir, host):
    with pytest.raises(InputError) as err:
        plan_from_text('name = "x"\n[train]\nepochs = = 3\n', plan_dir, source="p.toml", host=host)
    assert str(err.value).startswith("p.toml: line 3, column")


def test_missing_plan_file(tmp_path):
    with pytest.raises(InputError, match="plan file not found"):
        load_plan(tmp_path / "nope.toml")


def test_key_lines_follow_tables_arrays_and_inline_tables():
    lines = toml_key_lines(GOOD + '\n[data.extra]\nx = [\n  [1, 2],\n]\ny = 1  # [not.a.table]\n')
    assert lines["data.store"] == 5
    assert lines["data.split.fractions.val"] == 8
    assert lines["loss[0].name"] == 17
    assert lines["loss[1].params.margin"] == 21
    assert lines["loss[1].schedule.end_epoch"] == 22
    assert lines["gates.thresholds.A.val.mean_plus1"] == 34
    assert lines["data.extra.y"] == 40
    assert "not.a.table" not in lines and "1" not in lines


def test_validation_sample_is_right_when_article_ids_descend(tmp_path):
    """Windows of a split part follow the sorted ids, not store order; the validation sample
    must still be a set of distinct windows of the val part."""
    import numpy as np

    from lvm_core.data.store import ArticleStore
    from tests.conftest import make_tiny_store
    from workbench.plugin_host import load_plugins
    from workbench.plan import plan_from_text
    from workbench.run_prep import prepare_run

    store = make_tiny_store(tmp_path / "desc", lengths=(9,) * 40, ids=[7 * i for i in range(40)][::-1])
    text = f"""
name = "desc"
[data]
store = "{store.path}"
context_len = 3
[data.split]
fractions = {{ train = 0.5, val = 0.5 }}
[model]
arch = "context_mean"
[[loss]]
name = "cosine"
[train]
epochs = 1
batch_size = 4
device = "cpu"
[eval]
max_samples = 30
"""
    setup = prepare_run(plan_from_text(text, tmp_path, source="d.toml"), load_plugins(), run_dir=tmp_path / "run")
    (val,) = [es for es in setup.eval_sets if es.name == "val"]
    rows = val.windows.target_rows
    s = ArticleStore.open(store.path)
    from lvm_core.data.windows import Split

    val_ids = set(Split.load(tmp_path / "run" / "split.json").ids("val").tolist())
    assert len(rows) == 30 and len(np.unique(rows)) == 30
    assert {int(s.article_ids[a]) for a in s.row_article[rows]} <= val_ids
