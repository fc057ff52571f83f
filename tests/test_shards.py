"""`data build --shard I/N` + `data merge` against a single build of the bundled KJV demo corpus
(the corpus and the document limits of examples/data/kjv-minilm; potion-base-8m embeds it in
seconds, MiniLM would take a minute on 2 cores)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lvm_core.data.shards import parse_shard, shard_range
from lvm_core.data.store import ArticleStore
from lvm_core.errors import InputError
from workbench import cli

DEMO_ARGS = ["data", "build", "--reader", "kjv", "--embedder", "potion-base-8m", "--split-chunks", "30",
             "--max-docs", "40", "--no-cache", "--quiet"]
VOLATILE = {"created"}  # the manifest fields that differ between two builds of the same data
VOLATILE_EXTRA = {"embed_seconds", "merged_from"}


def manifest(path) -> dict:
    m = json.loads((path / "manifest.json").read_text())
    m = {k: v for k, v in m.items() if k not in VOLATILE}
    m["extra"] = {k: v for k, v in m["extra"].items() if k not in VOLATILE_EXTRA}
    m["extra"]["nonfinite_rows"].pop("vectors_npy")  # the time its vectors.npy was written
    return m


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    assert cli.main([*DEMO_ARGS, "--out", str(root / "single")]) == 0
    for i in range(3):
        assert cli.main([*DEMO_ARGS, "--shard", f"{i}/3", "--out", str(root / f"shard{i}")]) == 0
    # shards given out of order: the merge puts them back
    assert cli.main(["data", "merge", str(root / "shard2"), str(root / "shard0"), str(root / "shard1"),
                     "--out", str(root / "merged")]) == 0
    return root


def test_shard_and_merge_equals_the_single_build(builds):
    single, merged = ArticleStore.open(builds / "single"), ArticleStore.open(builds / "merged")
    assert single.n_articles == 40 and single.n_chunks > 1000
    for name in ("vectors", "offsets", "article_ids", "chunk_index"):
        a, b = np.asarray(getattr(single, name)), np.asarray(getattr(merged, name))
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), name
    assert single.texts == merged.texts and single.articles == merged.articles
    assert manifest(builds / "single") == manifest(builds / "merged")
    fa, fb = ({k: v for k, v in s.fingerprint().items() if k not in ("path", "created")} for s in (single, merged))
    assert fa == fb


def test_each_shard_holds_its_contiguous_documents_only(builds):
    single = ArticleStore.open(builds / "single")
    starts = []
    for i in range(3):
        shard = ArticleStore.open(builds / f"shard{i}")
        info = shard.manifest.extra["shard"]
        lo, hi = info["documents"]
        assert (info["index"], info["count"], info["total_documents"]) == (i, 3, 40)
        assert shard.article_ids.tolist() == list(range(lo, hi))
        rows = slice(int(single.offsets[lo]), int(single.offsets[hi]))
        assert np.asarray(shard.vectors).tobytes() == np.asarray(single.vectors[rows]).tobytes()
        starts.append((lo, hi))
    assert starts == [(0, 13), (13, 26), (26, 40)]


def test_merge_refuses_missing_duplicate_and_foreign_shards(builds, capsys):
    out = builds / "bad"
    assert cli.main(["data", "merge", str(builds / "shard0"), str(builds / "shard1"), "--out", str(out)]) == 2
    assert cli.main(["data", "merge", str(builds / "shard0"), str(builds / "shard0"), str(builds / "shard1"),
                     str(builds / "shard2"), "--out", str(out)]) == 2
    assert cli.main(["data", "merge", str(builds / "single"), "--out", str(out)]) == 2
    err = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert len(err) == 3
    assert "shard(s) 2/3 missing" in err[0]
    assert "shard 0/3 is given twice" in err[1]
    assert "not a shard store" in err[2]
    assert not out.exists()


def test_merge_refuses_to_overwrite(builds, capsys):
    assert cli.main(["data", "merge", str(builds / "shard0"), "--out", str(builds / "single")]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["3/3", "1", "a/b", "-1/2", "0/0", "1/2/3"])
def test_bad_shard_spec_is_one_line(text):
    with pytest.raises(InputError, match="expected I/N with 0 <= I < N"):
        parse_shard(text)


def test_shard_ranges_tile_the_documents_once():
    for n_docs in (1, 2, 7, 40, 41):
        for count in range(1, min(n_docs, 6) + 1):
            ranges = [shard_range(n_docs, i, count) for i in range(count)]
            assert [d for lo, hi in ranges for d in range(lo, hi)] == list(range(n_docs))
            assert all(hi > lo for lo, hi in ranges)
    with pytest.raises(InputError, match="5 shards for 4 documents"):
        shard_range(4, 0, 5)
