import json

import numpy as np
import pytest

from lvm_core.data.store import ArticleStore, write_store
from lvm_core.data.windows import Split, make_windows, split_by_fractions, split_by_ranges
from lvm_core.errors import InputError

from .conftest import make_tiny_store


def test_store_round_trip(tmp_path, tiny_store):
    s = ArticleStore.open(tiny_store.path)
    assert (s.n_chunks, s.n_articles, s.dim) == (30, 4, 16)
    assert list(s.lengths) == [8, 7, 9, 6]
    assert np.allclose(np.linalg.norm(s.gather(np.arange(30)), axis=1), 1.0, atol=1e-5)
    assert s.texts[9] == "chunk 9"
    assert s.title(1) == "Article 101"
    assert s.row_for(101, 0) == 8 and s.row_for(101, 7) is None
    assert isinstance(s.vectors, np.memmap)


def test_windows_stay_inside_articles(tiny_store):
    w = make_windows(tiny_store, context_len=5)
    # 8-5 + 7-5 + 9-5 + 6-5 windows
    assert len(w) == 3 + 2 + 4 + 1
    rows = w.context_rows()
    art = tiny_store.row_article
    assert np.all(art[rows] == art[w.target_rows][:, None])
    assert list(w.target_rows[:3]) == [5, 6, 7]
    ctx, tgt = w.batch(np.array([0]))
    assert np.allclose(ctx[0], tiny_store.gather(np.arange(0, 5)))
    assert np.allclose(tgt[0], tiny_store.gather(np.array([5]))[0])
    assert np.all(w.last_rows == w.target_rows - 1)


def test_splits_by_range_and_fraction(tiny_store, tmp_path):
    s = split_by_ranges(tiny_store, {"val": [[101, 101]], "ood": [[103, 103]]})
    assert list(s.ids("val")) == [101] and list(s.ids("train")) == [100, 102]
    s.save(tmp_path / "split.json")
    back = Split.load(tmp_path / "split.json")
    assert back.sha256() == s.sha256()
    f1 = split_by_fractions(tiny_store, {"train": 0.5, "val": 0.5}, seed=3)
    f2 = split_by_fractions(tiny_store, {"train": 0.5, "val": 0.5}, seed=3)
    assert f1.sha256() == f2.sha256()
    assert sorted(np.concatenate(list(f1.parts.values()))) == [100, 101, 102, 103]
    with pytest.raises(InputError, match="overlaps"):
        split_by_ranges(tiny_store, {"val": [[100, 101]], "ood": [[101, 102]]})


def test_edited_split_is_refused(tiny_store, tmp_path):
    s = split_by_ranges(tiny_store, {"val": [[101, 101]]})
    obj = s.to_json()
    obj["parts"]["val"] = [100]
    (tmp_path / "s.json").write_text(json.dumps(obj))
    with pytest.raises(InputError, match="hash"):
        Split.load(tmp_path / "s.json")


def test_manifest_dimension_mismatch_is_one_line(tmp_path):
    store = make_tiny_store(tmp_path / "s")
    m = json.loads((store.path / "manifest.json").read_text())
    m["dim"] = 768
    (store.path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(InputError) as err:
        ArticleStore.open(store.path)
    assert "dimension 16" in str(err.value) and "\n" not in str(err.value)


def test_write_is_atomic_and_replaces(tmp_path):
    p = tmp_path / "s"
    make_tiny_store(p, lengths=(6, 6))
    make_tiny_store(p, lengths=(7, 7, 7))
    assert ArticleStore.open(p).n_articles == 3
    assert [x.name for x in tmp_path.iterdir()] == ["s"]


def test_an_explicit_range_for_the_rest_part_is_kept_not_replaced(tiny_store):
    s = split_by_ranges(tiny_store, {"train": [[100, 101]], "val": [[102, 102]]}, rest="train")
    assert list(s.ids("train")) == [100, 101] and list(s.ids("val")) == [102]
    assert 103 not in np.concatenate(list(s.parts.values()))
