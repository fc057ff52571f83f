"""Device choice (no silent fallback), threads, seeds, RNG state, bf16 autocast."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from lvm_core import device as dev
from lvm_core.errors import InputError


def _fake(monkeypatch, *, cuda: bool, mps: bool, count: int = 1):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count if cuda else 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Fake GPU")
    monkeypatch.setattr(dev, "_mps_available", lambda: mps)


@pytest.mark.parametrize("cuda, mps, expected", [
    (True, True, "cuda"), (False, True, "mps"), (False, False, "cpu"),
])
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    _fake(monkeypatch, cuda=cuda, mps=mps)
    device, reason = dev.select_device("auto")
    assert device.type == expected and reason.startswith("auto")


def test_auto_on_this_machine_matches_what_torch_reports():
    device, reason = dev.select_device()
    expected = "cuda" if torch.cuda.is_available() else ("mps" if dev._mps_available() else "cpu")
    assert device.type == expected and reason


@pytest.mark.parametrize("requested", ["cuda", "cuda:0", "mps"])
def test_absent_device_is_an_error_not_a_fallback(monkeypatch, requested):
    _fake(monkeypatch, cuda=False, mps=False)
    with pytest.raises(InputError) as err:
        dev.select_device(requested, source="--device")
    assert str(err.value).startswith("--device: ") and "not available" in str(err.value)


def test_explicit_devices_when_present(monkeypatch):
    _fake(monkeypatch, cuda=True, mps=True, count=2)
    assert dev.select_device("CUDA:1")[0] == torch.device("cuda:1")
    assert dev.select_device("mps")[0].type == "mps"
    assert dev.select_device("cpu") == (torch.device("cpu"), "requested cpu")
    with pytest.raises(InputError, match="only 2 CUDA"):
        dev.select_device("cuda:2")


@pytest.mark.parametrize("bad", ["gpu", "cpu:0", "cuda:x", ""])
def test_unknown_device_names_are_errors(bad):
    with pytest.raises(InputError, match="expected one of auto, cpu"):
        dev.select_device(bad)


def test_configure_threads():
    before = torch.get_num_threads()
    try:
        assert dev.configure_threads(1) == 1 == torch.get_num_threads()
        assert dev.configure_threads(None) == 1 and dev.configure_threads(0) == 1
        with pytest.raises(InputError):
            dev.configure_threads(-2)
    finally:
        torch.set_num_threads(before)


def _draw():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_seed_everything_repeats_every_generator():
    try:
        dev.seed_everything(123)
        a = _draw()
        dev.seed_everything(123)
        assert _draw() == a
        dev.seed_everything(124)
        assert _draw() != a
        dev.seed_everything(5, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_rng_state_round_trip_through_a_weights_only_file(tmp_path):
    dev.seed_everything(7)
    np.random.normal()  # leave numpy with a cached gaussian, the awkward part of its state
    state = dev.capture_rng_state()
    expected = _draw()
    torch.save(state, tmp_path / "rng.pt")
    dev.seed_everything(99)
    dev.restore_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert _draw() == expected


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_bf16_autocast_only_on_cuda():
    x = torch.randn(3, 3)
    with dev.autocast_bf16(torch.device("cpu")):
        assert (x @ x).dtype == torch.float32
    ctx = dev.autocast_bf16(torch.device("cuda"), enabled=True)
    assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16
    assert not isinstance(dev.autocast_bf16(torch.device("cuda"), enabled=False), torch.autocast)
