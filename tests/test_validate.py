"""Each validation check on a hand-built case: what it finds, the row numbers it names, and
whether it is an error or a warning."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lvm_core.data.checks import validate_store
from lvm_core.data.store import write_store
from lvm_core.data.windows import make_windows
from lvm_core.errors import InputError
from lvm_core.legacy.npz import LegacyArticles, SequenceSet, validate_legacy_articles, validate_sequences
from workbench.cli import main

from .conftest import make_tiny_store


def arts(vectors, ids, chunks=None, **kw) -> LegacyArticles:
    keys = {"vectors": "vectors", "article_ids": "article_indices", "chunk_indices": "chunk_indices",
            "texts": "concept_texts", "titles": "article_titles", "cpe_ids": "cpe_ids"}
    return LegacyArticles(np.asarray(vectors), np.asarray(ids), None if chunks is None else np.asarray(chunks),
                          kw.get("texts"), kw.get("titles"), kw.get("cpe_ids"), "a.npz", keys)


def lines(report) -> list[str]:
    return [p.line() for p in report.problems]


def eye_rows(n: int, d: int = 4) -> np.ndarray:
    return np.eye(d, dtype=np.float32)[np.arange(n) % d] + 0.1


def test_clean_article_npz_has_no_problems():
    r = validate_legacy_articles(arts(eye_rows(6), [1, 1, 1, 2, 2, 2], [0, 1, 2, 0, 1, 2]))
    assert r.ok and r.problems == [] and r.stats == {"n_chunks": 6, "dim": 4, "n_articles": 2}


def test_wrong_rank_and_dtype_of_vectors():
    r = validate_legacy_articles(arts(np.zeros(6, np.float32), [1] * 6))
    assert lines(r) == ["error: a.npz: key 'vectors': expected rank 2 (N, D), got shape (6,)"]
    r = validate_legacy_articles(arts(np.ones((6, 4), np.int64), [1] * 6))
    assert lines(r) == ["error: a.npz: key 'vectors': expected float vectors (N, D), got dtype int64"]


def test_ids_must_be_integers_one_per_row():
    r = validate_legacy_articles(arts(eye_rows(3), [1.0, 1.0, 2.0]))
    assert lines(r) == ["error: a.npz: key 'article_indices': expected integers, got dtype float64"]
    r = validate_legacy_articles(arts(eye_rows(3), [1, 1]))
    assert lines(r) == ["error: a.npz: key 'article_indices': expected shape (3,) (one per row), got (2,)"]


def test_nan_inf_and_zero_rows_are_counted_with_first_row_numbers():
    v = eye_rows(10)
    v[2, 1] = np.nan
    v[7, 0] = np.inf
    v[4] = 0.0
    v[8] = 1e30  # finite, though its squared norm overflows float32: not a NaN/Inf row
    r = validate_legacy_articles(arts(v, [1] * 10))
    assert lines(r) == [
        "error: a.npz: key 'vectors': 2 rows with NaN or Inf values (first: 2, 7)",
        "error: a.npz: key 'vectors': 1 rows with a zero vector, which has no direction (first: 4)",
    ]


def test_first_row_numbers_are_capped_at_five():
    v = eye_rows(10)
    v[[1, 2, 3, 5, 8, 9]] = np.nan
    r = validate_legacy_articles(arts(v, [1] * 10))
    assert r.errors[0].message == "6 rows with NaN or Inf values (first: 1, 2, 3, 5, 8, ...)"


def test_duplicate_pairs_are_errors_and_gaps_warnings():
    r = validate_legacy_articles(arts(eye_rows(6), [7, 7, 7, 9, 9, 9], [0, 1, 1, 0, 2, 5]))
    assert lines(r) == [
        "error: a.npz: key 'chunk_indices': 1 duplicate (article, chunk) pairs (first: (7, 1))",
        "warning: a.npz: key 'chunk_indices': 1 articles have gaps in their chunk indices (first: article 9 "
        "jumps from chunk 0 to 2); windows are built over rows, so they span the gap",
    ]
    gaps_only = validate_legacy_articles(arts(eye_rows(4), [7, 7, 9, 9], [0, 3, 0, 1]))
    assert gaps_only.ok and len(gaps_only.warnings) == 1


def test_texts_and_titles_counts():
    r = validate_legacy_articles(arts(eye_rows(4), [1, 1, 2, 2], texts=["a"] * 3, titles=["x"] * 3))
    assert lines(r) == [
        "error: a.npz: key 'article_titles': expected 4 (one per row) or 2 (one per article) titles, got 3",
        "error: a.npz: key 'concept_texts': expected 4 texts (one per row), got 3",
    ]


def test_report_is_json_ready_and_raises_one_line():
    v = eye_rows(4)
    v[0] = np.nan
    r = validate_legacy_articles(arts(v, [1, 1, 1, 1], [0, 0, 1, 2]))
    obj = json.loads(json.dumps(r.to_json()))
    assert obj["ok"] is False and obj["n_errors"] == 2 and obj["problems"][0]["where"] == "key 'vectors'"
    with pytest.raises(InputError) as err:
        r.raise_for_errors()
    assert str(err.value) == ("a.npz: key 'vectors': 1 rows with NaN or Inf values (first: 0) "
                              "(and 1 more problem(s); see `lvm-workbench data validate`)")


# ---- sequences -----------------------------------------------------------------------------
def seqs(ctx, tgt, aids=None, tix=None) -> SequenceSet:
    return SequenceSet(np.asarray(ctx), np.asarray(tgt), aids, tix, source="s.npz")


def test_sequence_shapes():
    r = validate_sequences(seqs(np.ones((3, 4), np.float32), np.ones((3, 4), np.float32)))
    assert lines(r) == ["error: s.npz: key 'context_sequences': expected rank 3 (N, L, D), got shape (3, 4)"]
    r = validate_sequences(seqs(np.ones((3, 5, 4), np.float32), np.ones((2, 6), np.float32)))
    assert lines(r) == ["error: s.npz: key 'target_vectors': expected 3 targets (one per context), got 2",
                        "error: s.npz: key 'target_vectors': dimension 6 differs from the contexts' dimension 4"]


def test_sequence_nan_and_zero_name_the_sequence():
    ctx = np.ones((4, 5, 3), np.float32)
    ctx[2, 4, 0] = np.nan
    tgt = np.ones((4, 3), np.float32)
    tgt[1] = 0
    r = validate_sequences(seqs(ctx, tgt))
    assert lines(r) == [
        "error: s.npz: key 'context_sequences': 1 sequences with NaN or Inf values (first: 2)",
        "error: s.npz: key 'target_vectors': 1 rows with a zero vector, which has no direction (first: 1)",
    ]


def test_sequence_ids_checked():
    ctx, tgt = np.ones((3, 5, 3), np.float32), np.ones((3, 3), np.float32)
    r = validate_sequences(seqs(ctx, tgt, np.array([1, 1, 1]), np.array([5, -1, 6])))
    assert lines(r) == ["error: s.npz: key 'target_indices': 1 negative target indices (first: 1)"]
    r = validate_sequences(seqs(ctx, tgt, np.array([1.5, 1, 1]), np.array([5, 6, 7])))
    assert lines(r) == ["error: s.npz: key 'article_ids': expected integers, got dtype float64"]


def test_sequences_against_a_store(tmp_path):
    store = make_tiny_store(tmp_path / "s", lengths=(8, 7), dim=16)
    w = make_windows(store)  # targets 5, 6, 7 and 13, 14
    ctx, tgt = w.batch()
    aids, tix = store.article_ids[w.article_pos], store.chunk_index[w.target_rows]
    assert validate_sequences(seqs(ctx, tgt, aids, tix), store).ok

    other = tgt.copy()
    other[[0, 3]] = tgt[[1, 4]]  # two targets that are not the rows their ids name
    r = validate_sequences(seqs(ctx, other, aids, tix), store)
    assert [p.message.split(" (")[0] for p in r.errors] == [
        "2 of 5 targets differ from the store row their metadata points to"]
    assert "first: 0, 3)" in r.errors[0].message

    shifted = ctx.copy()
    shifted[4] = store.gather(np.arange(8, 13))  # the context of the window before
    r = validate_sequences(seqs(shifted, tgt, aids, tix), store)
    assert r.ok and [p.message.split(" (")[0] for p in r.warnings] == [
        "1 of 5 contexts are not the 5 store rows before their target"]

    r = validate_sequences(seqs(ctx, tgt, aids + 1000, tix), store)
    assert r.errors[0].message.startswith("5 sequences point at an (article, chunk) that is not in store")

    r = validate_sequences(seqs(ctx[..., :8], tgt[:, :8], aids, tix), store)
    assert r.errors[0].message == f"dimension mismatch: sequences have D=8 but store {store.path} has D=16"

    r = validate_sequences(seqs(ctx, tgt), store)
    assert r.ok and "cannot be checked" in r.warnings[0].message


# ---- stores --------------------------------------------------------------------------------
def test_clean_store(tiny_store):
    r = validate_store(tiny_store.path)
    assert r.ok and r.problems == [] and r.stats["n_chunks"] == 30


def test_store_content_problems(tmp_path):
    v = eye_rows(8)
    v[3] = np.nan
    v[6] = 0.0
    store = write_store(tmp_path / "s", v, [5, 3], [1, 2], chunk_index=np.array([0, 1, 2, 2, 4, 0, 2, 1]),
                        texts=["t"] * 8, dtype="float32")
    r = validate_store(store)
    assert lines(r) == [
        f"error: {store.path}: vectors.npy: 1 rows with NaN or Inf values (first: 3)",
        f"error: {store.path}: vectors.npy: 1 rows with a zero vector, which has no direction (first: 6)",
        f"error: {store.path}: chunk_index.npy: 1 articles are not sorted by chunk index (first: article 2); "
        "rows must be in chunk order",
        f"error: {store.path}: chunk_index.npy: 1 duplicate (article, chunk) pairs (first: (1, 2))",
        f"warning: {store.path}: chunk_index.npy: 1 articles have gaps in their chunk indices (first: article 1 "
        "jumps from chunk 2 to 4); windows are built over rows, so they span the gap",
    ]


def test_store_side_files_and_unit_length(tmp_path):
    store = make_tiny_store(tmp_path / "s", lengths=(6, 6), dim=8)
    with (store.path / "texts.jsonl").open("a") as fh:
        fh.write('"one too many"\n')
    (store.path / "articles.json").write_text("[]")
    vecs = np.load(store.path / "vectors.npy")
    vecs[5] *= 2.0
    np.save(store.path / "vectors.npy", vecs)
    r = validate_store(store.path)
    assert lines(r) == [
        f"warning: {store.path}: vectors.npy: 1 rows are not unit length although the store says normalized (first: 5)",
        f"error: {store.path}: texts.jsonl: expected 12 lines (one per row), got 13",
        f"error: {store.path}: articles.json: expected a list of 2 entries (one per article), got 0",
    ]


def test_store_structure_errors_are_reported_not_raised(tmp_path):
    store = make_tiny_store(tmp_path / "s", lengths=(6, 6), dim=8)
    manifest = json.loads((store.path / "manifest.json").read_text())
    manifest["dim"] = 9
    (store.path / "manifest.json").write_text(json.dumps(manifest))
    r = validate_store(store.path)
    assert lines(r) == [f"error: {store.path}: vectors.npy has dimension 8 but manifest.json says dim 9"]
    r = validate_store(tmp_path / "nothing")
    assert not r.ok and "no such store" in r.errors[0].message


def test_cli_validate_exit_codes(tmp_path, capsys, tiny_store):
    assert main(["data", "validate", str(tiny_store.path)]) == 0
    assert capsys.readouterr().out.startswith(f"OK: {tiny_store.path} (store; n_chunks=30")
    v = eye_rows(4)
    v[1] = np.nan
    np.savez(tmp_path / "a.npz", vectors=v, article_indices=np.array([1, 1, 2, 2]))
    assert main(["data", "validate", str(tmp_path / "a.npz"), "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "articles-npz" and out["n_errors"] == 1
