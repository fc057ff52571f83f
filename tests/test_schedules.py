"""Loss-weight and learning-rate schedules against hand-computed values (epochs count from 1)."""

import math

import pytest

from lvm_core.errors import InputError, InputErrors
from lvm_core.training.schedules import LrSchedule, WeightSchedule, weight_schedule_from_dict


def test_constant_keeps_the_loss_weight_or_its_own_value():
    assert WeightSchedule().weight(1, base=0.3) == 0.3
    assert WeightSchedule("constant", value=0.7).weight(5, base=0.3) == 0.7


def test_step_switches_at_the_named_epoch():
    s = weight_schedule_from_dict({"kind": "step", "epoch": 4, "before": 0.0, "after": 0.5})
    # "MSE for 3 epochs, then add the margin": epochs 1-3 before, 4 on after
    assert [s.weight(e) for e in range(1, 7)] == [0.0, 0.0, 0.0, 0.5, 0.5, 0.5]


def test_linear_ramp_hand_computed():
    s = weight_schedule_from_dict({"kind": "linear", "start_epoch": 2, "end_epoch": 6, "start": 0.0, "end": 0.8})
    assert [s.weight(e) for e in range(1, 8)] == pytest.approx([0.0, 0.0, 0.2, 0.4, 0.6, 0.8, 0.8])


def test_schedule_round_trips_through_its_plan_form():
    for obj in ({"kind": "step", "epoch": 3, "before": 0.0, "after": 0.5},
                {"kind": "linear", "start_epoch": 1, "end_epoch": 4, "start": 0.0, "end": 0.5},
                {"kind": "constant", "value": 0.25}):
        assert weight_schedule_from_dict(weight_schedule_from_dict(obj).to_dict()).to_dict() == obj


def test_schedule_errors_are_all_reported():
    with pytest.raises(InputErrors) as err:
        weight_schedule_from_dict({"kind": "step", "epoch": 0, "befor": 1.0, "after": "x"}, where="loss[1].schedule")
    lines = err.value.lines()
    assert any("loss[1].schedule.befor" in l and "unknown key" in l for l in lines)
    assert any("loss[1].schedule.before" in l and "missing" in l for l in lines)
    assert any("loss[1].schedule.epoch" in l and ">= 1" in l for l in lines)
    assert any("loss[1].schedule.after" in l and "number" in l for l in lines)
    with pytest.raises(InputError, match="end_epoch > start_epoch"):
        weight_schedule_from_dict({"kind": "linear", "start_epoch": 3, "end_epoch": 3, "start": 0, "end": 1})
    with pytest.raises(InputError, match="expected one of"):
        weight_schedule_from_dict({"kind": "cosine"})


def test_warmup_then_cosine_hand_computed():
    s = LrSchedule(1.0, "cosine", warmup_steps=4, total_steps=14, min_lr=0.1)
    assert [s.lr_at(i) for i in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    # after warmup: min + 0.5 * (1 + cos(pi * (step - 4) / 10)) * (1 - min)
    assert s.lr_at(4) == pytest.approx(1.0)
    assert s.lr_at(9) == pytest.approx(0.1 + 0.5 * 0.9)  # halfway: cos(pi/2) = 0
    assert s.lr_at(14) == pytest.approx(0.1)
    assert s.lr_at(20) == pytest.approx(0.1)  # never below the floor past the end
    assert s.lr_at(6) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 0.2)))


def test_constant_lr_after_warmup():
    s = LrSchedule(0.01, "constant", warmup_steps=2)
    assert [s.lr_at(i) for i in range(4)] == pytest.approx([0.005, 0.01, 0.01, 0.01])


def test_plateau_cuts_after_patience_and_its_state_round_trips():
    s = LrSchedule(1.0, "plateau", factor=0.5, patience=1, mode="max", min_lr=0.2)
    seen = [s.observe(v) for v in (0.1, 0.2, 0.2, 0.1, 0.3, 0.3, 0.1)]
    # best 0.1, 0.2 (improves); then 0.2 bad 1, 0.1 bad 2 > 1 -> cut; 0.3 improves; 0.3 bad 1; 0.1 bad 2 -> cut
    assert seen == [False, False, False, True, False, False, True]
    assert s.lr_at(100) == pytest.approx(0.25)
    assert s.observe(float("nan")) is False
    clone = LrSchedule(1.0, "plateau", factor=0.5, patience=1, mode="max", min_lr=0.2)
    clone.load_state_dict(s.state_dict())
    assert clone.lr_at(100) == s.lr_at(100) and clone.best == s.best
    s.observe(0.0)
    s.observe(0.0)  # a third cut would give 0.125: clamped at min_lr
    assert s.lr_at(100) == pytest.approx(0.2)


def test_plateau_min_mode_watches_a_falling_metric():
    s = LrSchedule(1.0, "plateau", factor=0.1, patience=0, mode="min")
    assert [s.observe(v) for v in (1.0, 0.5, 0.6)] == [False, False, True]
    assert s.lr_at(0) == pytest.approx(0.1)
