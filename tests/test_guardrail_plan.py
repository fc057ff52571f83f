"""Plan syntax of guardrails: [[tripwire]] and [[data.filter]] are validated with the rest of the
plan (key path and line), survive the TOML round trip, and the condition grammar parses exactly."""

from __future__ import annotations

import pytest

from lvm_core.errors import InputError, InputErrors
from lvm_core.training.tripwires import Condition, Lower, Tripwire
from tests.conftest import make_tiny_store
from workbench.plan import plan_from_text, plan_to_toml

BASE = """\
name = "guarded"
[data]
store = "tiny"
context_len = 3
{data_extra}
[model]
arch = "mlp"
[[loss]]
name = "mse"
[[loss]]
name = "directional_margin"
weight = 0.5
[train]
epochs = 4
{extra}
"""

GUARDS = """\
[[tripwire]]
when = "val/cos drop > 0.05"
action = "rollback"
lower = { loss = "directional_margin", factor = 0.5 }
[[tripwire]]
name = "P8 kill rule"
when = "val/margin_vs_last < 0"
from_epoch = 2
action = "stop"
[[tripwire]]
when = "loss/mse rise >= 1e-3"
once = true
"""

FILTER = """\
[[data.filter]]
metric = "forward_advantage"
top = 0.3
until_epoch = 3
[[data.filter]]
metric = "last_similarity"
min = -0.5
max = 0.9
from_epoch = 2
"""


@pytest.fixture
def tiny(tmp_path):
    make_tiny_store(tmp_path / "tiny")
    return tmp_path


def _plan(tmp, extra="", data_extra=""):
    return plan_from_text(BASE.format(extra=extra, data_extra=data_extra), tmp, source="p.toml")


@pytest.mark.parametrize("text, expected", [
    ("val/margin < 0", Condition("val/margin", "<", 0.0)),
    ("val/cos drop > 0.05", Condition("val/cos", ">", 0.05, "drop")),
    ("  loss rise >= 1e-3 ", Condition("loss", ">=", 1e-3, "rise")),
    ("ood/R@5<=-.5", Condition("ood/R@5", "<=", -0.5)),
    ("loss/directional_margin/stat/gap > +2", Condition("loss/directional_margin/stat/gap", ">", 2.0)),
])
def test_condition_grammar(text, expected):
    assert Condition.parse(text) == expected
    assert Condition.parse(str(expected)) == expected  # what plan_to_toml writes parses back


@pytest.mark.parametrize("text", ["val/margin", "val/margin = 0", "val/margin < zero", "val/cos drops > 0.1",
                                  "val/cos drop 0.1", "< 0", "val/cos > 0.1 and val/margin < 0", ""])
def test_condition_grammar_rejects(text):
    with pytest.raises(ValueError, match="METRIC OP NUMBER"):
        Condition.parse(text)


def test_drop_and_rise_compare_consecutive_evaluations():
    drop, rise = Condition.parse("val/cos drop > 0.05"), Condition.parse("loss rise >= 0.5")
    assert not drop.holds(0.40, None)  # nothing to compare with at the first evaluation
    assert drop.quantity(0.40, 0.50) == pytest.approx(0.10) and drop.holds(0.40, 0.50)
    assert not drop.holds(0.46, 0.50)  # a drop of 0.04
    assert not drop.holds(0.60, 0.50)  # a rise is no drop
    assert rise.holds(2.0, 1.5) and not rise.holds(1.9, 1.5)
    assert not Condition.parse("val/margin < 0").holds(float("nan"), None)  # NaN never fires


def test_plan_with_tripwires_and_filters_round_trips(tiny):
    plan = _plan(tiny, GUARDS, FILTER)
    assert plan.tripwires == [
        Tripwire(Condition("val/cos", ">", 0.05, "drop"), "rollback", lower=Lower("directional_margin", 0.5)),
        Tripwire(Condition("val/margin_vs_last", "<", 0.0), "stop", from_epoch=2, name="P8 kill rule"),
        Tripwire(Condition("loss/mse", ">=", 1e-3, "rise"), "alert", once=True)]
    f0, f1 = plan.data.filters
    assert (f0.metric, f0.top, f0.from_epoch, f0.until_epoch) == ("forward_advantage", 0.3, 1, 3)
    assert (f1.metric, f1.min, f1.max, f1.from_epoch, f1.until_epoch) == ("last_similarity", -0.5, 0.9, 2, 0)
    again = plan_from_text(plan_to_toml(plan, relative_to=tiny), tiny)
    assert again == plan


def _problems(tmp, extra="", data_extra=""):
    with pytest.raises(InputError) as info:
        _plan(tmp, extra, data_extra)
    exc = info.value
    return exc.lines() if isinstance(exc, InputErrors) else [exc.line()]


def test_bad_tripwires_are_reported_with_key_and_line(tiny):
    lines = _problems(tiny, """\
[[tripwire]]
when = "val/cos drop > 0.05"
action = "rollback"
lower = { loss = "direction_margin", factor = -1 }
[[tripwire]]
when = "val/cosine < 0.3"
action = "explode"
from_epoch = 0
colour = "red"
[[tripwire]]
when = "val/margin below 0"
lower = { loss = "mse" }
""")
    text = "\n".join(lines)
    full = BASE.format(extra="", data_extra="").splitlines()
    lower_line = len(full) - 1 + 4  # {extra} is the last line of BASE; lower is the 4th line of the extra
    assert f"line {lower_line}: tripwire[0].lower.loss: 'direction_margin' is not a [[loss]] of this plan" in text
    assert "tripwire[0].lower.factor: expected a number from 0 to 1" in text
    assert "tripwire[1].action: expected one of alert, stop, rollback, got 'explode'" in text
    assert "tripwire[1].from_epoch: expected an integer from 1 to 100000, got 0" in text
    assert "tripwire[1].colour: unknown key" in text
    assert "tripwire[2].when: expected 'METRIC OP NUMBER'" in text
    assert "tripwire[2].lower: only a rollback lowers a weight" in text
    assert len(lines) == 7


def test_unknown_metric_is_caught_up_front_with_a_suggestion(tiny):
    lines = _problems(tiny, '[[tripwire]]\nwhen = "val/cosine < 0.3"\n')
    assert len(lines) == 1 and "'val/cosine' is not a metric this run logs" in lines[0]
    assert "did you mean 'val/cos'" in lines[0]
    # ood metrics only exist with OOD data; gates metrics only with [gates]
    assert "'ood/margin_vs_last' is not a metric" in _problems(tiny, '[[tripwire]]\nwhen = "ood/margin_vs_last < 0"\n')[0]
    assert "'gates/score' is not a metric" in _problems(tiny, '[[tripwire]]\nwhen = "gates/score < 2"\n')[0]
    # chance levels, train losses and strategy sub-terms are accepted
    for ok in ("val/chance_R@5_no_context > 0.5", "train/loss > 1", "loss/directional_margin/stat/gap < 0"):
        assert _plan(tiny, f'[[tripwire]]\nwhen = "{ok}"\n').tripwires[0].when.metric == ok.split()[0]


def test_bad_filters_are_reported(tiny):
    lines = _problems(tiny, data_extra="""\
[[data.filter]]
metric = "forward_advantge"
top = 1.5
[[data.filter]]
metric = "last_similarity"
top = 0.5
min = 0.2
[[data.filter]]
metric = "forward_distinctness"
from_epoch = 3
until_epoch = 2
""")
    text = "\n".join(lines)
    assert "data.filter[0].metric: expected one of forward_advantage, forward_distinctness, last_similarity" in text
    assert "data.filter[0].top: expected a fraction 0 < top <= 1, got 1.5" in text
    assert "data.filter[1]: expected exactly one rule" in text
    assert "data.filter[2]: expected exactly one rule" in text
    assert "data.filter[2].until_epoch: expected 0 (to the end) or >= from_epoch 3, got 2" in text


def test_forward_advantage_needs_two_context_chunks(tmp_path):
    make_tiny_store(tmp_path / "tiny")
    text = BASE.format(extra="", data_extra='[[data.filter]]\nmetric = "forward_advantage"\ntop = 0.5\n')
    with pytest.raises(InputError, match="forward_advantage needs context_len >= 2, the plan has 1"):
        plan_from_text(text.replace("context_len = 3", "context_len = 1"), tmp_path)
