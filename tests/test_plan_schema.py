"""The plan schema (workbench/plan/schema.py) is the one source of every key: the loader, the
writer, the trainer's config defaults, the Setup form and docs/plan.md all agree with it."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest

from lvm_core.errors import InputError, InputErrors, problems, raise_all
from lvm_core.params import Param
from lvm_core.training.loop import EvalConfig, TrainConfig
from workbench.plan import docs, load, plan_from_text, schema

from .conftest import make_tiny_store

ROOT = Path(__file__).resolve().parents[1]


def _plan(store: Path, extra_train: str = "", loss: str = 'name = "mse"') -> str:
    """A good plan; `extra_train` is one more [train] line (it replaces epochs' own line, 13)."""
    text = (f'name = "s"\nseed = 0\n[data]\nstore = "{store}"\ncontext_len = 3\n[model]\narch = "mlp"\n'
            f'params = {{ hidden_dim = 8 }}\n[[loss]]\n{loss}\n[train]\nbatch_size = 8\nepochs = 1\n')
    return text.replace("epochs = 1\n", f"{extra_train}\n") if extra_train.startswith("epochs") else text + extra_train


@pytest.fixture
def tiny(tmp_path):
    return make_tiny_store(tmp_path / "store", lengths=(12,) * 6, dim=8).path


@pytest.mark.parametrize("cfg, sec", [(TrainConfig, schema.TRAIN), (EvalConfig, schema.EVAL)])
def test_trainer_config_defaults_are_the_schemas(cfg, sec):
    """TrainConfig/EvalConfig live in lvm_core (which cannot import workbench): same keys, same
    order (the written plan follows it), same defaults."""
    fields = dataclasses.fields(cfg)
    assert [f.name for f in fields] == [k.name for k in sec.keys]
    assert {f.name: f.default for f in fields} == sec.defaults()


def test_every_default_fits_its_own_declaration():
    for sec in schema.SECTIONS:
        for key in sec.keys:
            assert key.check(key.default, f"{sec.path}.{key.name}", "schema") == key.default


def test_every_number_has_bounds():
    for sec in schema.SECTIONS:
        for key in sec.keys:
            if key.type in ("int", "float") and key.name not in ("weight",):
                assert (key.min is not None or key.gt is not None) and (key.max is not None or key.lt is not None), key
    assert schema.LOSS.key("weight").min == 0.0 and schema.LOSS.key("weight").max is not None


@pytest.mark.parametrize("line, where, says", [
    ("epochs = 100000000000000000000", "line 13: train.epochs", "expected <= 100000"),  # hung with no output
    ("lr = 1e400", "line 14: train.lr", "expected a finite number, got inf"),          # accepted, then diverged
    ("lr = nan", "line 14: train.lr", "expected a finite number, got nan"),
    ("collapse_drop = -inf", "line 14: train.collapse_drop", "finite"),
    ("warmup_steps = 1e3", "line 14: train.warmup_steps", "expected an integer, got a number 1000.0"),
])
def test_out_of_range_and_non_finite_numbers_are_one_line_each(tiny, line, where, says):
    with pytest.raises(InputError) as err:
        plan_from_text(_plan(tiny, line), tiny.parent, source="p.toml")
    assert not isinstance(err.value, InputErrors)
    assert err.value.line().startswith(f"p.toml: {where}: ") and says in err.value.line()


def test_a_huge_seed_and_a_negative_weight_are_refused(tiny):
    text = _plan(tiny, loss='name = "mse"\nweight = -1.0').replace("seed = 0", "seed = 100000000000000000000")
    with pytest.raises(InputErrors) as err:
        plan_from_text(text, tiny.parent, source="p.toml")
    assert err.value.lines() == ["p.toml: line 2: seed: expected <= 4294967295, got 100000000000000000000",
                                 "p.toml: line 11: loss[0].weight: expected >= 0.0, got -1.0"]


def test_schedule_weights_are_checked_like_plan_weights(tiny):
    sched = 'name = "mse"\nschedule = { kind = "step", epoch = 2, before = 0.0, after = -0.5 }'
    with pytest.raises(InputError, match=r"loss\[0\]\.schedule\.after: expected >= 0.0, got -0.5"):
        plan_from_text(_plan(tiny, loss=sched), tiny.parent)


def test_an_optional_float_key_loads_without_a_keyerror(tiny, monkeypatch):
    """A `float | None` key (default None) is read from its declaration, never from the
    dataclass annotation (the old `_FIELD_TYPES[str(f.type)]` raised KeyError on it)."""

    @dataclasses.dataclass
    class Cfg(TrainConfig):
        target_cos: float | None = None

    train = dataclasses.replace(schema.TRAIN, keys=schema.TRAIN.keys + (
        Param("target_cos", "float", None, "stop at this val/cos", min=-1.0, max=1.0),))
    monkeypatch.setattr(schema, "TRAIN", train)
    monkeypatch.setattr(load, "TrainConfig", Cfg)
    assert plan_from_text(_plan(tiny), tiny.parent).train.target_cos is None
    assert plan_from_text(_plan(tiny, "target_cos = 0.5"), tiny.parent).train.target_cos == 0.5
    with pytest.raises(InputError, match="train.target_cos: expected <= 1.0"):
        plan_from_text(_plan(tiny, "target_cos = 2.0"), tiny.parent)


def test_docs_plan_md_is_generated_from_the_schema():
    assert (ROOT / "docs" / "plan.md").read_text(encoding="utf-8") == docs.render(), \
        "docs/plan.md is stale: run `lvm-workbench plan-docs`"
    for sec in schema.SECTIONS:
        for key in sec.keys:
            assert f"| `{key.name}` |" in docs.render()


def test_plan_docs_command_writes_and_checks(tmp_path, capsys):
    from workbench.cli import main

    out = tmp_path / "plan.md"
    assert main(["plan-docs", "--check", "--out", str(out)]) == 1
    assert main(["plan-docs", "--out", str(out)]) == 0
    assert main(["plan-docs", "--check", "--out", str(out)]) == 0
    assert out.read_text() == docs.render()


def test_problems_and_raise_all_replace_the_except_pairs():
    one, two = InputError("s", "a", "x"), InputError("s", "b", "y")
    assert problems(one) == [one] and problems(InputErrors("s", [one, two])) == [one, two]
    raise_all("s", [])
    with pytest.raises(InputError) as err:
        raise_all("s", [one])
    assert err.value is one
    with pytest.raises(InputErrors):
        raise_all("s", [one, two])
    pair = re.compile(r"except InputErrors as \w+:\s*\n(.*\n){0,2}\s*except InputError as")
    for folder in ("lvm_core", "workbench"):
        for path in (ROOT / folder).rglob("*.py"):
            assert not pair.search(path.read_text(encoding="utf-8")), f"{path}: use lvm_core.errors.problems()"


def test_setup_form_defaults_come_from_the_schema():
    from workbench.plugin_host import load_plugins
    from workbench.tui.setup_pane import default_plan

    plan = default_plan(load_plugins(entry_points=False), [])
    for key, value in plan["train"].items():
        assert value == schema.default("train", key), key
    assert plan["data"]["split"]["fractions"] == schema.default("data.split", "fractions")
    assert not math.isnan(plan["train"]["lr"])
