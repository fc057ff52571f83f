"""Checkpoints: round trip from the file alone, metadata, training state, damaged files."""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest
import torch

from lvm_core.device import capture_rng_state
from lvm_core.errors import InputError
from lvm_core.models.baselines import Ridge
from lvm_core.training.checkpoint import (
    checkpoint_paths,
    load_model,
    load_state,
    load_weights,
    read_checkpoint_meta,
    save_checkpoint,
)
from workbench.plugin_host import load_plugins

torch.set_num_threads(1)

ARCH_PARAMS = {"d_model": 16, "num_layers": 1, "nhead": 2, "dim_feedforward": 24, "dropout": 0.1}


@pytest.fixture(scope="module")
def host():
    return load_plugins(entry_points=False)


def _lookup(host):
    return lambda arch: host.get("model", arch, source="checkpoint").obj


def _meta(**extra):
    meta = {"arch": "transformer", "arch_params": ARCH_PARAMS, "input_dim": 12, "context_len": 5,
            "step": 40, "epoch": 2, "metrics": {"val/cos": 0.5, "val/margin": -0.01},
            "plan_sha256": "ab" * 32, "data": {"n_chunks": 100, "ids_sha256": "cd" * 32},
            "embedder": "sentence-transformers/all-MiniLM-L6-v2"}
    meta.update(extra)
    return meta


def _trained_transformer(host):
    torch.manual_seed(0)
    model = host.get("model", "transformer").obj(12, 5, **ARCH_PARAMS)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x, y = torch.randn(8, 5, 12), torch.nn.functional.normalize(torch.randn(8, 12), dim=-1)
    for _ in range(3):
        opt.zero_grad()
        (1 - (model(x) * y).sum(-1)).mean().backward()
        opt.step()
    return model.eval(), opt


def test_round_trip_gives_the_same_predictions_from_the_file_alone(tmp_path, host):
    model, _ = _trained_transformer(host)
    path = save_checkpoint(tmp_path / "checkpoints" / "best", model, _meta())
    assert path == tmp_path / "checkpoints" / "best.safetensors" and path.is_file()
    assert not (tmp_path / "checkpoints" / "best.state.pt").exists()
    assert [p.name for p in path.parent.iterdir()] == ["best.safetensors"]  # no temporary left behind
    loaded = load_model(path, _lookup(host))
    assert not loaded.training
    x = torch.randn(4, 5, 12)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert loaded.checkpoint_meta["step"] == 40


def test_metadata_is_json_in_the_header(tmp_path, host):
    model, _ = _trained_transformer(host)
    path = save_checkpoint(tmp_path / "last", model, _meta(metrics={"val/cos": float("nan")}))
    meta = read_checkpoint_meta(tmp_path / "last")  # the suffix is optional
    assert meta["arch"] == "transformer" and meta["arch_params"] == ARCH_PARAMS
    assert meta["input_dim"] == 12 and meta["context_len"] == 5 and meta["epoch"] == 2
    assert meta["data"]["n_chunks"] == 100 and meta["embedder"].endswith("MiniLM-L6-v2")
    assert np.isnan(meta["metrics"]["val/cos"])
    # the raw header: 8-byte little-endian length, then JSON with str -> str metadata
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])["__metadata__"]
    assert header["format"] == "pt" and json.loads(header["arch_params"]) == ARCH_PARAMS


def test_training_state_round_trips_with_weights_only(tmp_path, host):
    model, opt = _trained_transformer(host)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2)
    rng = capture_rng_state()
    save_checkpoint(tmp_path / "last", model, _meta(),
                    state={"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": rng, "step": 40})
    state = load_state(tmp_path / "last.safetensors")
    assert state["step"] == 40 and torch.equal(state["rng"]["torch"], rng["torch"])
    fresh = torch.optim.AdamW(model.parameters(), lr=1e-2)
    fresh.load_state_dict(state["optimizer"])
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def test_state_from_another_save_is_refused(tmp_path, host):
    model, opt = _trained_transformer(host)
    save_checkpoint(tmp_path / "old", model, _meta(), state={"step": 1})
    save_checkpoint(tmp_path / "last", model, _meta(), state={"step": 2})
    os.replace(tmp_path / "old.state.pt", tmp_path / "last.state.pt")  # as if the weights rename was lost
    with pytest.raises(InputError, match="different save"):
        load_state(tmp_path / "last")


def test_overwriting_keeps_one_consistent_pair(tmp_path, host):
    model, _ = _trained_transformer(host)
    save_checkpoint(tmp_path / "last", model, _meta(step=1), state={"step": 1})
    save_checkpoint(tmp_path / "last", model, _meta(step=2), state={"step": 2})
    assert read_checkpoint_meta(tmp_path / "last")["step"] == 2 and load_state(tmp_path / "last")["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.safetensors", "last.state.pt"]


def test_fitted_ridge_is_stored_like_any_model(tmp_path, host):
    rng = np.random.default_rng(0)
    ridge = Ridge(4, 2, alpha=0.5)
    ridge.fit_on(rng.normal(size=(30, 2, 4)), rng.normal(size=(30, 4)))
    save_checkpoint(tmp_path / "ridge", ridge, {"arch": "ridge", "arch_params": {"alpha": 0.5},
                                                "input_dim": 4, "context_len": 2})
    loaded = load_model(tmp_path / "ridge", _lookup(host))
    x = torch.randn(3, 2, 4)
    assert bool(loaded.fitted) and torch.equal(loaded(x), ridge(x))


def test_parameterless_baseline_checkpoints(tmp_path, host):
    model = host.get("model", "copy_last").obj(4, 3)
    save_checkpoint(tmp_path / "copy", model, {"arch": "copy_last", "arch_params": {}, "input_dim": 4, "context_len": 3})
    assert load_weights(tmp_path / "copy") == {}
    x = torch.randn(2, 3, 4)
    assert torch.equal(load_model(tmp_path / "copy", _lookup(host))(x), model(x))


def test_missing_metadata_is_a_programming_error(tmp_path, host):
    model, _ = _trained_transformer(host)
    with pytest.raises(ValueError, match="input_dim"):
        save_checkpoint(tmp_path / "x", model, {"arch": "transformer", "arch_params": {}, "context_len": 5})


# ---- damaged or foreign files are one clear InputError -----------------------------------

@pytest.fixture
def saved(tmp_path, host):
    model, opt = _trained_transformer(host)
    return save_checkpoint(tmp_path / "best", model, _meta(), state={"optimizer": opt.state_dict()})


@pytest.mark.parametrize("cut", [4, 200, -100])
def test_truncated_weights_are_input_errors(saved, host, cut):
    data = saved.read_bytes()
    saved.write_bytes(data[:cut])
    with pytest.raises(InputError) as err:
        load_model(saved, _lookup(host))
    assert str(saved) in str(err.value) and "\n" not in str(err.value)


def test_garbage_and_missing_files_are_input_errors(tmp_path, saved, host):
    saved.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(InputError, match="not a readable safetensors"):
        read_checkpoint_meta(saved)
    with pytest.raises(InputError, match="not found"):
        load_model(tmp_path / "nope.safetensors", _lookup(host))


def test_truncated_state_is_an_input_error(saved):
    state_path = checkpoint_paths(saved)[1]
    state_path.write_bytes(state_path.read_bytes()[:50])
    with pytest.raises(InputError, match="not a readable training state"):
        load_state(saved)


def test_pickled_state_is_refused(saved):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    torch.save({"checkpoint_id": "x", "evil": Evil()}, checkpoint_paths(saved)[1])
    with pytest.raises(InputError, match="refused: the file asks to run .*print.*nothing was executed"):
        load_state(saved)


def test_foreign_safetensors_and_wrong_shapes_are_input_errors(tmp_path, saved, host):
    from safetensors.torch import save_file
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign), metadata={"format": "pt"})
    with pytest.raises(InputError, match="not an lvm-workbench checkpoint"):
        load_model(foreign, _lookup(host))
    # right metadata, weights of another size
    model = host.get("model", "transformer").obj(12, 5, **{**ARCH_PARAMS, "d_model": 8})
    save_checkpoint(tmp_path / "mismatch", model, _meta())
    with pytest.raises(InputError, match="wrong shape"):
        load_model(tmp_path / "mismatch", _lookup(host))


def test_numpy_metric_values_are_stored_as_numbers(tmp_path, host):
    model = host.get("model", "copy_last").obj(4, 3)
    save_checkpoint(tmp_path / "x", model, {"arch": "copy_last", "arch_params": {}, "input_dim": 4, "context_len": 3,
                                            "metrics": {"val/cos": np.float32(0.5), "val/n": np.int64(7)},
                                            "step": torch.tensor(3)})
    meta = read_checkpoint_meta(tmp_path / "x")
    assert meta["metrics"] == {"val/cos": 0.5, "val/n": 7} and meta["step"] == 3
    with pytest.raises(TypeError, match="object"):
        save_checkpoint(tmp_path / "y", model, {"arch": "copy_last", "arch_params": {}, "input_dim": 4,
                                                "context_len": 3, "bad": object()})
    assert not (tmp_path / "y.safetensors").exists()


def test_params_the_architecture_does_not_take_are_input_errors(tmp_path, host):
    model = host.get("model", "copy_last").obj(4, 3)
    save_checkpoint(tmp_path / "x", model, {"arch": "copy_last", "arch_params": {"width": 3}, "input_dim": 4,
                                            "context_len": 3})
    with pytest.raises(InputError, match="cannot rebuild architecture 'copy_last'"):
        load_model(tmp_path / "x", _lookup(host))


def test_unknown_architecture_names_the_known_ones(tmp_path, saved, host):
    model = host.get("model", "copy_last").obj(4, 3)
    save_checkpoint(tmp_path / "x", model, {"arch": "copy_lats", "arch_params": {}, "input_dim": 4, "context_len": 3})
    with pytest.raises(InputError, match="did you mean 'copy_last'"):
        load_model(tmp_path / "x", _lookup(host))



# ---- ridge on a store: fit, save, reload -------------------------------------------------

def _ridge_round_trip(store_path, tmp_path, host, n_articles=40):
    """Ridge fitted on a store's windows: its penalised train error is at most copy-last's (a
    linear map it could have chosen: identity on the last frame, ||W||^2 = D), and it rebuilds
    from its checkpoint with identical predictions."""
    from lvm_core.data.store import ArticleStore
    from lvm_core.data.windows import make_windows

    store = ArticleStore.open(store_path)
    windows = make_windows(store, np.arange(min(n_articles, store.n_articles)), context_len=5)
    ctx, tgt = windows.batch()
    assert len(ctx) > 0
    ridge = host.get("model", "ridge").obj(store.dim, 5, alpha=1.0)
    ridge.fit_on(ctx, tgt)
    raw = ridge.raw(torch.from_numpy(ctx)).double().numpy()
    objective = float(((raw - tgt) ** 2).sum()) + float((ridge.linear.weight.double() ** 2).sum())
    copy_sse = float(((ctx[:, -1].astype(np.float64) - tgt) ** 2).sum())
    assert objective <= copy_sse + store.dim + 1e-3
    meta = {"arch": "ridge", "arch_params": {"alpha": 1.0}, "input_dim": store.dim, "context_len": 5,
            "data": store.fingerprint(), "embedder": store.manifest.embedder.get("name")}
    path = save_checkpoint(tmp_path / "ridge", ridge, meta)
    loaded = load_model(path, _lookup(host))
    x = torch.from_numpy(ctx[:64])
    assert torch.equal(loaded(x), ridge(x))
    assert read_checkpoint_meta(path)["data"]["n_chunks"] == store.n_chunks


def test_ridge_on_a_tiny_store_fits_saves_and_reloads(tmp_path, host):
    from tests.conftest import make_tiny_store
    _ridge_round_trip(make_tiny_store(tmp_path / "tiny.lvmstore").path, tmp_path, host)


def test_ridge_on_the_bundled_demo_store_fits_saves_and_reloads(tmp_path, host):
    from tests.conftest import DEMO_STORE
    if not (DEMO_STORE / "manifest.json").exists():
        pytest.skip(f"bundled demo store not built yet: {DEMO_STORE}")
    _ridge_round_trip(DEMO_STORE, tmp_path, host)
