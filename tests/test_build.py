"""The build pipeline: document limits, pseudo-documents, cache reuse, interruption, atomic output, CLI."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from lvm_core.data.build import BuildConfig, _split, build_store, chunk_corpus, select_spread
from lvm_core.data.corpus import Corpus, Document
from lvm_core.data.store import ArticleStore, text_hash
from lvm_core.progress import Progress
from workbench import cli

from ._builder_helpers import CountingEmbedder, vector_of


def sentence(doc: int, i: int) -> str:
    """Ten plain words, unique per (doc, i), ending a sentence."""
    return f"Document number{doc} sentence number{i} holds some plain words to read."


def doc_with(doc: int, n_sentences: int) -> Document:
    paras = [" ".join(sentence(doc, k) for k in range(i, min(i + 3, n_sentences)))
             for i in range(0, n_sentences, 3)]
    return Document(f"d{doc}", f"Doc {doc}", "\n\n".join(paras))


def corpus_of(sizes: list[int]) -> Corpus:
    return Corpus([doc_with(i, n) for i, n in enumerate(sizes)], {"reader": "test", "source": "memory"})


def test_chunk_corpus_counts_and_min_chunks():
    # chunk_words=20: two 10-word sentences per chunk, so n sentences -> ceil(n / 2) chunks.
    corpus = corpus_of([6, 12, 5, 0])
    kept, counts = chunk_corpus(corpus, BuildConfig(chunk_words=20, min_chunks=4))
    assert [(d.document.id, len(d.chunks)) for d in kept] == [("d1", 6)]
    assert counts == {"documents_read": 4, "documents_with_prose": 3, "chunks_read": 3 + 6 + 3,
                      "documents_too_short": 3, "documents_eligible": 1, "documents_kept": 1, "chunks_kept": 6}
    assert kept[0].chunks[0] == sentence(1, 0) + " " + sentence(1, 1)


def test_select_spread_hand_cases():
    items = list(range(10))
    assert select_spread(items, 3) == [0, 4, 9]  # linspace 0, 4.5, 9 -> rounded half to even
    assert select_spread(items, 4) == [0, 3, 6, 9]
    assert select_spread(items, 1) == [0]
    assert select_spread(items, 0) == []
    assert select_spread(items, 20) == items


def test_split_into_pseudo_documents_merges_a_short_tail():
    assert [len(p) for p in _split(list(range(70)), 30, 10)] == [30, 30, 10]  # a tail of 10 is long enough
    assert [len(p) for p in _split(list(range(69)), 30, 10)] == [30, 39]
    assert [len(p) for p in _split(list(range(65)), 30, 10)] == [30, 35]
    assert [len(p) for p in _split(list(range(75)), 30, 10)] == [30, 30, 15]
    assert [len(p) for p in _split(list(range(30)), 30, 10)] == [30]
    pieces = _split(list(range(65)), 30, 10)
    assert sum(pieces, []) == list(range(65))  # order and content kept


def test_max_docs_max_chunks_and_split_chunks_in_chunk_corpus():
    corpus = corpus_of([20, 8, 8, 8, 8])  # 10, 4, 4, 4, 4 chunks at chunk_words=20
    kept, _ = chunk_corpus(corpus, BuildConfig(chunk_words=20, min_chunks=4, split_chunks=4))
    assert [(d.document.id, d.part, len(d.chunks)) for d in kept] == [
        ("d0", 0, 4), ("d0", 1, 6), ("d1", 0, 4), ("d2", 0, 4), ("d3", 0, 4), ("d4", 0, 4)]
    assert [d.title for d in kept[:3]] == ["Doc 0 (part 1 of 2)", "Doc 0 (part 2 of 2)", "Doc 1"]
    kept, counts = chunk_corpus(corpus, BuildConfig(chunk_words=20, min_chunks=4, max_docs=3, max_chunks_per_doc=5))
    assert [(d.document.id, len(d.chunks)) for d in kept] == [("d0", 5), ("d2", 4), ("d4", 4)]
    assert counts["documents_eligible"] == 5 and counts["chunks_kept"] == 13


def test_build_store_writes_rows_article_by_article_with_manifest(tmp_path):
    corpus = corpus_of([12, 3, 8])
    emb = CountingEmbedder()
    store = build_store(corpus, emb, tmp_path / "s", config=BuildConfig(chunk_words=20, min_chunks=4, dtype="float32"),
                        cache_dir=tmp_path / "cache", quiet=True)
    again = ArticleStore.open(tmp_path / "s")
    assert again.n_articles == 2 and list(again.lengths) == [6, 4] and list(again.article_ids) == [0, 1]
    texts = again.texts
    assert texts[6] == sentence(2, 0) + " " + sentence(2, 1)  # row 6 = first chunk of the second kept doc
    np.testing.assert_allclose(again.gather(np.array([6]))[0], vector_of(texts[6]), atol=1e-6)
    assert again.articles[1] == {"id": 1, "title": "Doc 2", "source": "d2", "doc_id": "d2", "part": 0}
    m = again.manifest
    assert m.embedder == {"name": "counting", "dim": 8, "weights_sha256": "0" * 64,
                          "pooling": "sha256 of the text", "normalized": True}
    assert m.corpus["reader"] == "test" and len(m.corpus["source_sha256"]) == 64
    assert m.text_sha256 == text_hash(texts)
    assert m.extra["counts"]["documents_too_short"] == 1
    assert m.extra["chunk_words"]["max"] == 20
    assert store.n_chunks == len(emb.encoded) == 10


def test_rerun_and_interrupted_build_reuse_the_cache_and_never_leave_half_a_store(tmp_path):
    corpus = corpus_of([12, 12, 12])  # 18 chunks at chunk_words=20
    cfg = BuildConfig(chunk_words=20, min_chunks=4, batch_size=5)
    out = tmp_path / "s"
    old = build_store(corpus_of([12]), CountingEmbedder(), out, config=cfg, quiet=True)  # an existing store
    old_hash = old.manifest.text_sha256

    flaky = CountingEmbedder(fail_after=10)  # two batches of 5 succeed, the third is interrupted
    with pytest.raises(KeyboardInterrupt):
        build_store(corpus, flaky, out, config=cfg, cache_dir=tmp_path / "cache", quiet=True)
    assert ArticleStore.open(out).manifest.text_sha256 == old_hash  # the old store is untouched
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []  # no temporary left

    resumed = CountingEmbedder()
    store = build_store(corpus, resumed, out, config=cfg, cache_dir=tmp_path / "cache", quiet=True)
    assert len(resumed.encoded) == 18 - 10 and store.n_chunks == 18
    rerun = CountingEmbedder()
    build_store(corpus, rerun, tmp_path / "s2", config=cfg, cache_dir=tmp_path / "cache", quiet=True)
    assert rerun.encoded == []
    np.testing.assert_array_equal(ArticleStore.open(tmp_path / "s2").vectors[:], store.vectors[:])


def test_progress_line_has_rate_and_eta_hand_computed():
    plain = Progress(150, "embedding", io.StringIO())
    # a start time whose sums are exact: (start + 100) - start must be 100 exactly, or a rate
    # on a rounding edge (0.25 below) goes either way with the clock (issue 11)
    plain.start = 1024.0
    plain.done, plain.cached = 50, 0
    assert plain.line(now=plain.start + 10) == "embedding: 50/150 chunks, 5.0 chunks/s, ETA 0:20"
    plain.cached = 30  # cached rows count as done but not toward the rate: 20 new in 10 s
    assert plain.line(now=plain.start + 10) == "embedding: 50/150 chunks, 2.0 chunks/s, ETA 0:50, 30 cached"

    class Tty(io.StringIO):
        def isatty(self):
            return True

    bar = Progress(100, "emb", Tty())
    bar.start = 1024.0
    bar.done = 25
    assert bar.line(now=bar.start + 100) == "emb [######..................] 25/100 0.2 chunks/s ETA 5:00"


def _jsonl(tmp_path, n_docs=3, n_sentences=30):
    f = tmp_path / "docs.jsonl"
    with f.open("w", encoding="utf-8") as fh:
        for d in range(n_docs):
            fh.write(json.dumps({"id": f"doc{d}", "title": f"T{d}",
                                 "text": " ".join(sentence(d, i) for i in range(n_sentences))}) + "\n")
    return f


def test_cli_build_and_info_with_potion(tmp_path, capsys):
    src = _jsonl(tmp_path)
    out = tmp_path / "store"
    args = ["data", "build", "--reader", "jsonl", "--source", str(src), "--embedder", "potion-base-8m",
            "--out", str(out), "--chunk-words", "30", "--min-chunks", "5", "--cache", str(tmp_path / "c"), "--quiet"]
    assert cli.main(args) == 0
    assert "3 documents, 30 chunks, 256-D float16" in capsys.readouterr().out
    store = ArticleStore.open(out)
    assert store.manifest.embedder["name"] == "potion-base-8m"
    assert store.manifest.extra["builder"]["config"]["chunk_words"] == 30

    assert cli.main(args) == 2  # exists: refuses without --force, one line
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {out}: already exists (pass --force to replace it; it is replaced only when the build succeeds)"]
    assert cli.main(args + ["--force", "--max-docs", "2"]) == 0
    capsys.readouterr()
    assert ArticleStore.open(out).n_articles == 2

    assert cli.main(["data", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_articles"] == 2 and info["windows"] == 2 * (10 - 5)
    assert info["chunks_per_article"]["median"] == 10 and info["words_per_chunk"]["max"] == 30
    assert cli.main(["data", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "embedder   potion-base-8m (256-D" in text and "corpus     jsonl:" in text


@pytest.mark.parametrize("extra, message", [
    (["--reader", "nope"], "--reader: unknown corpus_reader 'nope'"),
    (["--reader", "jsonl", "--param", "x"], "--param: expected KEY=VALUE, got 'x'"),
    (["--reader", "kjv", "--param", "unit=verse"], "--param: kjv.unit: expected one of ['book', 'chapter']"),
    (["--reader", "jsonl", "--min-chunks", "500"], "no document has at least 500 chunks"),
])
def test_cli_build_bad_input_is_one_line_exit_2(tmp_path, capsys, extra, message):
    src = _jsonl(tmp_path)
    code = cli.main(["data", "build", "--source", str(src), "--embedder", "potion-base-8m", "--quiet",
                     "--out", str(tmp_path / "o"), "--cache", str(tmp_path / "c"), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]
    assert not (tmp_path / "o").exists()


def test_cli_pools_several_sources_into_one_store(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _jsonl(tmp_path / "a", n_docs=2)
    b = _jsonl(tmp_path / "b", n_docs=1)
    out = tmp_path / "pool"
    assert cli.main(["data", "build", "--reader", "jsonl", "--source", str(a), "--source", str(b), "--quiet",
                     "--embedder", "potion-base-8m", "--out", str(out), "--chunk-words", "30", "--min-chunks", "5",
                     "--no-cache"]) == 0
    store = ArticleStore.open(out)
    assert [x["doc_id"] for x in store.articles] == ["doc0", "doc1", "doc0"]  # a's documents, then b's
    corpus = store.manifest.corpus
    assert corpus["reader"] == "jsonl" and corpus["source"] == [str(a), str(b)]
    assert [p["source"] for p in corpus["parts"]] == [str(a), str(b)]
    assert corpus["parts"][0]["file_sha256"] != corpus["parts"][1]["file_sha256"]
    assert cli.main(["data", "info", str(out)]) == 0
    assert f"corpus     jsonl: {a}, {b}\n" in capsys.readouterr().out


def test_one_duration_format_and_one_bar():
    from lvm_core.progress import format_duration, progress_bar

    assert [format_duration(s) for s in (0, 59.4, 65, 3599.6, 3725)] == ["0:00", "0:59", "1:05", "1:00:00", "1:02:05"]
    assert [format_duration(s) for s in (None, float("nan"), float("inf"), -1)] == ["-"] * 4
    assert progress_bar(0.25, 8) == "[##......]"
    assert progress_bar(0.0, 4) == "[....]" and progress_bar(1.5, 4) == "[####]" and progress_bar(float("nan"), 4) == "[....]"
