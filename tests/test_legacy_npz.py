"""Original-format NPZs in and out: same vectors after import, exports that round-trip, and the
sequence-target check that catches the original's "two different targets" hazard."""

from __future__ import annotations

import numpy as np
import pytest

from lvm_core.data.store import ArticleStore, l2_normalize
from lvm_core.data.windows import make_windows, split_by_ranges
from lvm_core.errors import InputError
from lvm_core.legacy.npz import (
    SequenceSet, export_articles_npz, export_windows_npz, import_articles_npz, load_sequences_npz,
    read_articles_npz, read_sequences_npz, rows_for_pairs, windows_for_sequences,
)
from workbench.cli import main

from ._legacy_npz_helpers import windows_of, write_article_npz

LENGTHS, IDS = (7, 6, 8), (42, 7, 1500)


@pytest.fixture
def imported(tmp_path):
    canonical = write_article_npz(tmp_path / "arts.npz", LENGTHS, IDS)
    store = import_articles_npz(tmp_path / "arts.npz", tmp_path / "store")
    return canonical, store


def test_import_groups_by_article_sorts_chunks_and_normalises(imported):
    canonical, store = imported
    # articles ascending by id: 7 (6 rows), 42 (7 rows), 1500 (8 rows)
    assert list(store.article_ids) == [7, 42, 1500]
    assert list(store.offsets) == [0, 6, 13, 21]
    assert list(store.chunk_index) == list(range(6)) + list(range(7)) + list(range(8))
    # canonical rows of article 7 are 7..12 (it is second in the file), of 42 rows 0..6
    expect = l2_normalize(np.concatenate([canonical["vectors"][7:13], canonical["vectors"][0:7],
                                          canonical["vectors"][13:21]]))
    np.testing.assert_allclose(store.gather(np.arange(21)), expect, atol=1e-6)
    assert store.row_for(42, 3) == 9 and store.row_for(1500, 0) == 13 and store.row_for(7, 6) is None
    assert store.texts[9] == "article 42 chunk 3" and store.texts[0] == "article 7 chunk 0"
    assert [store.title(i) for i in range(3)] == ["Title 7", "Title 42", "Title 1500"]
    assert store.vectors.dtype == np.float32 and store.manifest.normalized


def test_import_without_chunk_indices_keeps_file_order_and_alt_keys(tmp_path):
    vecs = np.arange(1, 13, dtype=np.float32).reshape(6, 2)
    aids = np.array([5, 3, 5, 3, 5, 3])
    np.savez(tmp_path / "a.npz", embeddings=vecs, article_ids=aids)
    store = import_articles_npz(tmp_path / "a.npz", tmp_path / "s")
    assert list(store.article_ids) == [3, 5]
    assert list(store.chunk_index) == [0, 1, 2, 0, 1, 2]
    # article 3 is file rows 1, 3, 5 in that order
    np.testing.assert_allclose(store.gather(np.arange(3)), l2_normalize(vecs[[1, 3, 5]]), atol=1e-6)
    np.savez(tmp_path / "b.npz", X=vecs, article_indices=aids, seq_idx=np.array([2, 9, 0, 4, 1, 1]))
    store = import_articles_npz(tmp_path / "b.npz", tmp_path / "s2")
    assert list(store.chunk_index) == [1, 4, 9, 0, 1, 2]
    np.testing.assert_allclose(store.gather(np.array([0, 1, 2])), l2_normalize(vecs[[5, 3, 1]]), atol=1e-6)


def test_titles_given_once_per_article(tmp_path):
    vecs = np.eye(4, dtype=np.float32)
    np.savez(tmp_path / "a.npz", vectors=vecs, article_indices=np.array([9, 9, 2, 2]),
             article_titles=np.array(["Two", "Nine"]))  # per article, in ascending id order
    store = import_articles_npz(tmp_path / "a.npz", tmp_path / "s")
    assert [store.title(0), store.title(1)] == ["Two", "Nine"]


def test_article_npz_export_round_trips(imported, tmp_path):
    _, store = imported
    export_articles_npz(store, tmp_path / "out.npz")
    with np.load(tmp_path / "out.npz", allow_pickle=False) as z:
        assert z["article_indices"].dtype == np.int32 and z["vectors"].dtype == np.float32
        assert list(z["article_indices"][:7]) == [7] * 6 + [42]
    back = import_articles_npz(tmp_path / "out.npz", tmp_path / "back")
    # equal up to float32 rounding (re-normalising a unit row may move its last bit)
    np.testing.assert_allclose(back.gather(np.arange(21)), store.gather(np.arange(21)), rtol=0, atol=2e-7)
    for name in ("article_ids", "offsets", "chunk_index"):
        np.testing.assert_array_equal(getattr(back, name), getattr(store, name))
    assert back.texts == store.texts and back.articles[2]["title"] == "Title 1500"


def test_windows_export_uses_chunk_index_as_target_index(tmp_path):
    # chunk indices start at 10, so a row position and a chunk index differ: the export must
    # write the chunk index (the original meaning of target_indices)
    vecs = np.random.default_rng(0).normal(size=(13, 4)).astype(np.float32)
    aids = np.array([1] * 6 + [2] * 7)
    chunks = np.concatenate([np.arange(10, 16), np.arange(10, 17)])
    np.savez(tmp_path / "a.npz", vectors=vecs, article_indices=aids, chunk_indices=chunks)
    store = import_articles_npz(tmp_path / "a.npz", tmp_path / "s")
    w = make_windows(store, context_len=5)
    assert list(w.target_rows) == [5, 11, 12]
    export_windows_npz(w, tmp_path / "val.npz")
    with np.load(tmp_path / "val.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["article_ids", "contexts", "target_indices", "targets"]
        assert list(z["article_ids"]) == [1, 2, 2] and list(z["target_indices"]) == [15, 15, 16]
        np.testing.assert_allclose(z["contexts"][1], store.gather(np.arange(6, 11)))
        np.testing.assert_allclose(z["targets"][2], store.gather(np.array([12]))[0])
    seqs = read_sequences_npz(tmp_path / "val.npz")
    m = windows_for_sequences(store, seqs)
    assert list(m.target_rows) == [5, 11, 12] and m.usable.all()
    np.testing.assert_array_equal(m.windows().target_rows, w.target_rows)


def test_rows_for_pairs_hand_case(imported):
    _, store = imported
    rows = rows_for_pairs(store, np.array([7, 42, 42, 1500, 99, 7, 42]), np.array([0, 0, 6, 7, 0, -1, 7]))
    assert list(rows) == [0, 6, 12, 20, -1, -1, -1]


def test_sequence_key_aliases_and_metadata_fallback(imported, tmp_path):
    canonical, store = imported
    vec = {a: canonical["vectors"][s:s + n] for a, s, n in zip(IDS, (0, 7, 13), LENGTHS)}
    ctx, tgt, aid, tix = windows_of(np.concatenate([vec[7], vec[42]]), (6, 7), (7, 42))
    np.savez(tmp_path / "x.npz", X=ctx, y=tgt, article_ids=aid, target_indices=tix)
    seqs = read_sequences_npz(tmp_path / "x.npz")
    assert seqs.keys["contexts"] == "X" and (seqs.n, seqs.context_len, seqs.dim) == (3, 5, 12)
    assert list(windows_for_sequences(store, seqs).target_rows) == [5, 11, 12]

    meta = np.array([{"article_id": int(a), "target_idx": int(t)} for a, t in zip(aid, tix)], dtype=object)
    np.savez(tmp_path / "p6.npz", context_sequences=ctx, target_vectors=tgt, metadata=meta)
    with pytest.raises(InputError, match=r"key 'metadata'.*--trust-pickle"):
        read_sequences_npz(tmp_path / "p6.npz")
    said = []
    seqs = read_sequences_npz(tmp_path / "p6.npz", trust_pickle=True, warn=said.append)
    assert len(said) == 1 and "metadata" in said[0]
    assert list(seqs.article_ids) == [7, 42, 42] and list(seqs.target_indices) == [5, 5, 6]
    loaded = load_sequences_npz(tmp_path / "p6.npz", store=store, trust_pickle=True, warn=said.append)
    np.testing.assert_allclose(np.linalg.norm(loaded.contexts, axis=-1), 1.0, atol=1e-6)


def test_sequence_target_check_catches_two_different_targets(imported):
    _, store = imported
    w = make_windows(store, context_len=5)  # 1 + 2 + 3 windows
    ctx, tgt = w.batch()
    aids = store.article_ids[w.article_pos]
    tix = store.chunk_index[w.target_rows]
    good = SequenceSet(ctx, tgt, aids, tix)
    assert windows_for_sequences(store, good).usable.all()

    bad_tgt = tgt.copy()
    bad_tgt[2] = store.gather(np.array([0]))[0]  # a target from another article
    m = windows_for_sequences(store, SequenceSet(ctx, bad_tgt, aids, tix))
    assert m.n_target_differs == 1 and not m.target_ok[2] and m.target_cos[2] < 0.999
    assert len(m.windows()) == len(w) - 1 and w.target_rows[2] not in m.windows().target_rows

    # P6: contexts t-5..t-1 but the target (and its index) is t+1: targets match, contexts don't
    keep = tix + 1 < np.repeat(store.lengths, np.maximum(store.lengths - 5, 0))
    p6 = SequenceSet(ctx[keep], store.gather(w.target_rows[keep] + 1), aids[keep], tix[keep] + 1)
    m = windows_for_sequences(store, p6)
    assert m.target_ok.all() and m.n_context_differs == p6.n == 3

    missing = SequenceSet(ctx[:1], tgt[:1], np.array([12345]), tix[:1])
    assert windows_for_sequences(store, missing).n_missing == 1


def test_windows_across_articles_are_flagged_not_matched(imported):
    """The original VAL/OOD files used stride-1 windows over the whole holdout: a window whose
    context starts in the previous article must not be used as an in-article window."""
    _, store = imported
    rows = store.gather(np.arange(21))
    targets = np.arange(5, 21)  # stride 1 over all rows, crossing boundaries at 6 and 13
    ctx = rows[targets[:, None] + np.arange(-5, 0)]
    aids = store.article_ids[store.row_article[targets]]
    m = windows_for_sequences(store, SequenceSet(ctx, rows[targets], aids, store.chunk_index[targets]))
    assert m.target_ok.all()
    # in-article targets: rows 5, 11, 12, 18, 19, 20
    assert list(m.windows().target_rows) == [5, 11, 12, 18, 19, 20]
    assert m.n_context_differs == 16 - 6


def test_cli_export_part_of_a_split_and_import_sequences(imported, tmp_path, capsys):
    _, store = imported
    split = split_by_ranges(store, {"val": [[1500, 1500]]})
    split.save(tmp_path / "split.json")
    rc = main(["data", "export", str(store.path), "--out", str(tmp_path / "val.npz"),
               "--split-file", str(tmp_path / "split.json"), "--part", "val"])
    assert rc == 0 and "3 windows" in capsys.readouterr().out
    with np.load(tmp_path / "val.npz", allow_pickle=False) as z:
        assert list(z["article_ids"]) == [1500] * 3 and list(z["target_indices"]) == [5, 6, 7]
    rc = main(["data", "import", str(tmp_path / "val.npz"), "--sequences", "--store", str(store.path),
               "--out", str(tmp_path / "clean.npz")])
    assert rc == 0
    back = read_sequences_npz(tmp_path / "clean.npz")
    np.testing.assert_allclose(back.targets, store.gather(np.array([18, 19, 20])), atol=1e-6)
    rc = main(["data", "export", str(store.path), "--out", str(tmp_path / "all.npz"), "--articles-npz"])
    assert rc == 0 and read_articles_npz(tmp_path / "all.npz").vectors.shape == (21, 12)
    assert ArticleStore.open(store.path).n_chunks == 21


def test_bundled_demo_store_round_trips_through_the_original_formats(tmp_path, capsys):
    """End to end on the real bundled data: validate, export as the original article NPZ and
    VAL layout, import back, and find every exported sequence at its own store row."""
    from .conftest import DEMO_STORE

    if not (DEMO_STORE / "manifest.json").exists():
        pytest.skip(f"bundled demo store not built yet: {DEMO_STORE}")
    demo = ArticleStore.open(DEMO_STORE)
    assert main(["data", "validate", str(DEMO_STORE)]) == 0
    assert main(["data", "export", str(DEMO_STORE), "--out", str(tmp_path / "arts.npz"), "--articles-npz"]) == 0
    assert main(["data", "import", str(tmp_path / "arts.npz"), "--out", str(tmp_path / "back")]) == 0
    back = ArticleStore.open(tmp_path / "back")
    rows = np.arange(demo.n_chunks)
    np.testing.assert_allclose(back.gather(rows), l2_normalize(demo.gather(rows)), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(back.offsets, demo.offsets)
    assert back.texts == demo.texts

    part = split_by_ranges(demo, {"val": [[int(demo.article_ids[0]), int(demo.article_ids[9])]]})
    part.save(tmp_path / "split.json")
    assert main(["data", "export", str(DEMO_STORE), "--out", str(tmp_path / "val.npz"),
                 "--split-file", str(tmp_path / "split.json"), "--part", "val"]) == 0
    seqs = read_sequences_npz(tmp_path / "val.npz")
    m = windows_for_sequences(demo, seqs)
    expect = make_windows(demo, part.positions(demo, "val"), context_len=5).target_rows
    assert m.usable.all() and np.array_equal(m.windows().target_rows, expect)
    capsys.readouterr()
