"""NaN/Inf rows are found before training (issue 11): `data build` and `data import` record them
in the manifest, a run trusts that record instead of rescanning the store, and a store without a
current record is scanned with the project's progress display. Refused with their count."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from lvm_core.data.build import BuildConfig, build_store
from lvm_core.data.store import NONFINITE_KEY, ArticleStore, write_store
from lvm_core.errors import InputError
from tests._builder_helpers import CountingEmbedder
from tests.conftest import make_tiny_store
from tests.test_build import corpus_of


def _store_with_bad_rows(path, bad: dict[int, float], n: int = 40, dim: int = 4) -> ArticleStore:
    v = np.random.default_rng(0).normal(size=(n, dim))
    for row, value in bad.items():
        v[row, row % dim] = value
    return write_store(path, v, [n // 4] * 4, [1, 2, 3, 4], dtype="float32")


def _record(path) -> dict:
    return json.loads((path / "manifest.json").read_text())["extra"][NONFINITE_KEY]


def _no_scan(monkeypatch):
    def scan(*a, **k):
        raise AssertionError("vectors.npy was scanned although the manifest records its NaN/Inf rows")
    monkeypatch.setattr(ArticleStore, "nonfinite_rows", scan)


def test_write_store_records_the_rows_that_hold_nan_or_inf(tmp_path):
    store = _store_with_bad_rows(tmp_path / "s", {3: np.nan, 17: np.inf, 38: -np.inf})
    rec = _record(store.path)
    assert rec["count"] == 3 and rec["rows"] == [3, 17, 38]  # row numbers of the stored matrix
    assert store.nonfinite_record()["rows"] == [3, 17, 38]
    clean = make_tiny_store(tmp_path / "clean")
    assert _record(clean.path)["count"] == 0 and _record(clean.path)["rows"] == []


def test_the_record_is_taken_as_stored_a_float16_overflow_is_inf(tmp_path):
    v = np.ones((8, 2))
    v[5] = [1e6, 1.0]  # finite in float32, Inf in float16
    store = write_store(tmp_path / "s", v, [8], [1], dtype="float16", normalize=False)
    assert _record(store.path)["count"] == 1 and _record(store.path)["rows"] == [5]


def test_the_record_lists_at_most_ten_rows_but_counts_all(tmp_path):
    store = _store_with_bad_rows(tmp_path / "s", {r: np.nan for r in range(0, 36, 3)})
    rec = _record(store.path)
    assert rec["count"] == 12 and rec["rows"] == list(range(0, 30, 3))
    with pytest.raises(InputError, match=r"12 row\(s\) .* \(rows 0, 3, 6, 9, 12, 15, 18, 21, 24, 27, \.\.\.; recorded"):
        store.refuse_nonfinite()


def test_a_recorded_store_is_refused_with_its_count_without_a_rescan(tmp_path, monkeypatch):
    store = _store_with_bad_rows(tmp_path / "s", {3: np.nan, 9: np.inf})
    _no_scan(monkeypatch)
    with pytest.raises(InputError, match=r"2 row\(s\) of vectors.npy hold NaN or Inf \(rows 3, 9; recorded in manifest"):
        store.refuse_nonfinite()
    make_tiny_store(tmp_path / "clean").refuse_nonfinite()  # a clean record: accepted, not scanned


def test_data_build_records_nan_rows_an_embedder_gave(tmp_path, monkeypatch):
    class NanOnSecondDoc(CountingEmbedder):
        def encode(self, texts):
            out = super().encode(texts)
            out[[i for i, t in enumerate(texts) if "Document number2 " in t]] = np.nan  # document 2's chunks
            return out

    store = build_store(corpus_of([12, 3, 8]), NanOnSecondDoc(), tmp_path / "built",
                        config=BuildConfig(chunk_words=20, min_chunks=4, dtype="float32"), cache_dir=None, quiet=True)
    first, end = int(store.offsets[1]), int(store.offsets[2])  # the second kept document: rows 6-9
    rec = _record(store.path)
    assert (first, end) == (6, 10) and rec["count"] == 4 and rec["rows"] == [6, 7, 8, 9]
    _no_scan(monkeypatch)
    with pytest.raises(InputError, match=r"4 row\(s\) .*rows 6, 7, 8, 9; recorded"):
        ArticleStore.open(store.path).refuse_nonfinite()


def test_data_import_records_the_check(tmp_path, capsys):
    from workbench.cli import main

    v = np.random.default_rng(1).normal(size=(12, 4)).astype(np.float32)
    np.savez(tmp_path / "in.npz", vectors=v, article_indices=np.repeat(np.arange(2, dtype=np.int32), 6),
             chunk_indices=np.tile(np.arange(6, dtype=np.int32), 2))
    assert main(["data", "import", str(tmp_path / "in.npz"), "--out", str(tmp_path / "s")]) == 0
    assert _record(tmp_path / "s")["count"] == 0
    assert main(["data", "info", str(tmp_path / "s")]) == 0
    assert "NaN/Inf    0 rows (recorded" in capsys.readouterr().out


def _strip_record(path):
    m = json.loads((path / "manifest.json").read_text())
    del m["extra"][NONFINITE_KEY]
    (path / "manifest.json").write_text(json.dumps(m))


def test_a_store_without_a_record_is_scanned_with_a_progress_display(tmp_path):
    store = _store_with_bad_rows(tmp_path / "s", {5: np.nan, 30: np.nan})
    _strip_record(store.path)
    stream = io.StringIO()
    with pytest.raises(InputError, match=r"2 row\(s\) of vectors.npy hold NaN or Inf \(first: row 5; found by a scan"):
        ArticleStore.open(store.path).refuse_nonfinite(stream, block=16)
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith("checking s/vectors.npy for NaN/Inf: 40/40 chunks"), lines
    quiet = io.StringIO()  # one block: too quick for a display
    with pytest.raises(InputError):
        ArticleStore.open(store.path).refuse_nonfinite(quiet)
    assert quiet.getvalue() == ""


def test_a_record_made_for_another_vectors_file_is_not_trusted(tmp_path):
    store = make_tiny_store(tmp_path / "s")
    v = np.load(store.path / "vectors.npy")
    v[7, 1] = np.nan
    np.save(store.path / "vectors.npy", v)  # rewritten by hand after the record was made
    reopened = ArticleStore.open(store.path)
    assert reopened.nonfinite_record() is None
    with pytest.raises(InputError, match=r"1 row\(s\) .*first: row 7"):
        reopened.refuse_nonfinite(io.StringIO())


@pytest.mark.parametrize("bad", [{"count": "3", "rows": []}, {"count": 1, "rows": [999]}, [1],
                                 {"count": 0, "rows": [1]}, {"count": True, "rows": []}])
def test_a_malformed_record_is_one_line_when_the_store_opens(tmp_path, bad):
    store = make_tiny_store(tmp_path / "s")
    m = json.loads((store.path / "manifest.json").read_text())
    m["extra"][NONFINITE_KEY] = bad
    (store.path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(InputError) as exc:
        ArticleStore.open(store.path)
    assert exc.value.where == f"key 'extra.{NONFINITE_KEY}'" and "manifest.json" in exc.value.source


def test_a_run_on_a_large_unrecorded_store_shows_the_scan_and_refuses(tmp_path, capsys):
    from workbench.cli import main

    n = (1 << 16) + 100  # more than one block of the scan
    v = np.random.default_rng(2).normal(size=(n, 2)).astype(np.float32)
    v[[65_620, 65_600]] = np.nan
    write_store(tmp_path / "big", v, [n // 2, n - n // 2], [1, 2], dtype="float16")
    _strip_record(tmp_path / "big")
    (tmp_path / "p.toml").write_text(f'name = "big"\n[data]\nstore = "{tmp_path / "big"}"\ncontext_len = 3\n'
                                     '[model]\narch = "mlp"\n[[loss]]\nname = "mse"\n[train]\ndevice = "cpu"\n')
    assert main(["--run", str(tmp_path / "p.toml"), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"checking big/vectors.npy for NaN/Inf: {n}/{n} chunks" in err
    assert err.splitlines()[-1].startswith("error: ") and "2 row(s)" in err and "first: row 65600" in err
    assert not (tmp_path / "run" / "run.json").exists()
