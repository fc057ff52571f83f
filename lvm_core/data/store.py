"""ArticleStore: one matrix of chunk vectors with article boundaries, stored as plain .npy files.

Layout of a store directory (format version 1)::

    manifest.json     embedder, corpus provenance, counts, format version (StoreManifest)
    vectors.npy       (N, D) float16 or float32, L2-normalised rows, article after article
    offsets.npy       (A + 1,) int64: rows of article i are offsets[i]:offsets[i + 1]
    article_ids.npy   (A,) int64: the id of each article (as in the original NPZs)
    chunk_index.npy   (N,) int64: the chunk index of each row inside its article (sorted)
    articles.json     optional: [{"id", "title", "source"}] per article
    texts.jsonl       optional: one JSON string per row, the chunk text

Rows of one article are contiguous and sorted by chunk index, so a window is just the row of its
target: its context is the L rows before it. Everything is memory-mapped on open; nothing is
read until it is used.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TextIO

import numpy as np

from ..atomic import atomic_dir
from ..errors import InputError
from ..progress import Progress

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: manifest.extra key of the NaN/Inf record: {"count": rows holding NaN or Inf, "rows": the first
#: few, "vectors_npy": the size and mtime of the vectors.npy it describes}
NONFINITE_KEY = "nonfinite_rows"
RECORDED_ROWS = 10


def nonfinite_record(vectors: np.ndarray, npy: Path) -> dict[str, Any]:
    """The manifest record of the rows of `vectors` (as saved in `npy`) that hold NaN or Inf."""
    block = 1 << 16  # a block at a time: no (N, D) mask beside a large matrix
    bad = [start + np.flatnonzero(~np.isfinite(vectors[start:start + block]).all(axis=1))
           for start in range(0, len(vectors), block)]
    rows = np.concatenate(bad) if bad else np.zeros(0, np.int64)
    return {"count": int(len(rows)), "rows": [int(r) for r in rows[:RECORDED_ROWS]], "vectors_npy": _file_stamp(npy)}


def _file_stamp(path: Path) -> dict[str, int]:
    """Size and modification time: a file rewritten after its record was made no longer matches."""
    st = path.stat()
    return {"bytes": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


@dataclass
class StoreManifest:
    """What a store is made of: enough to tell whether two stores are comparable."""

    dim: int
    n_chunks: int
    n_articles: int
    dtype: str
    embedder: dict[str, Any] = field(default_factory=dict)  # name, dim, weights_sha256, pooling
    corpus: dict[str, Any] = field(default_factory=dict)  # source, package, version, reader
    text_sha256: str | None = None
    created: str = ""
    format_version: int = FORMAT_VERSION
    normalized: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any], source: str) -> "StoreManifest":
        required = ("dim", "n_chunks", "n_articles", "dtype")
        missing = [k for k in required if k not in obj]
        if missing:
            raise InputError(source, f"expected keys {list(required)}, missing {missing}")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise InputError(source, f"unknown manifest keys {unknown}")
        _check_manifest_types(obj, source)
        if obj.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
            raise InputError(
                source, f"format_version {obj['format_version']} is newer than this tool ({FORMAT_VERSION})"
            )
        return cls(**obj)


#: the JSON type each manifest key must have (checked when a store is opened, so a hand-edited
#: manifest is one clear line, never a traceback further on)
_MANIFEST_TYPES: dict[str, tuple[type, ...]] = {
    "dim": (int,), "n_chunks": (int,), "n_articles": (int,), "dtype": (str,), "embedder": (dict,),
    "corpus": (dict,), "text_sha256": (str, type(None)), "created": (str,), "format_version": (int,),
    "normalized": (bool,), "extra": (dict,)}


def _check_manifest_types(obj: dict[str, Any], source: str) -> None:
    for key, types in _MANIFEST_TYPES.items():
        if key not in obj:
            continue
        value = obj[key]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            want = " or ".join("null" if t is type(None) else {"int": "an integer", "str": "a string", "dict": "an object",
                                                               "bool": "true or false"}[t.__name__] for t in types)
            raise InputError(source, f"expected {want}, got {json.dumps(value)[:40]}", f"key {key!r}")
        if types == (int,) and value < 0:
            raise InputError(source, f"expected a non-negative integer, got {value}", f"key {key!r}")


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows of `x` scaled to unit length (zero rows stay zero), in float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):  # a NaN/Inf row stays non-finite (recorded, then refused)
        return x / np.maximum(norms, eps)


def text_hash(texts: Iterable[str]) -> str:
    """sha256 over the chunk texts in order: two stores with equal hashes hold the same text."""
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


class ArticleStore:
    """A read-only, memory-mapped article store. Open with `ArticleStore.open(path)`."""

    def __init__(
        self,
        path: Path,
        manifest: StoreManifest,
        vectors: np.ndarray,
        offsets: np.ndarray,
        article_ids: np.ndarray,
        chunk_index: np.ndarray,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.vectors = vectors
        self.offsets = offsets
        self.article_ids = article_ids
        self.chunk_index = chunk_index

    # ---- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, *, check: bool = True) -> "ArticleStore":
        """Open a store directory memory-mapped. `check` runs the cheap structural checks."""
        path = Path(path)
        if not path.exists():
            raise InputError(str(path), "no such store (expected a directory with manifest.json)")
        if not path.is_dir() or not (path / MANIFEST).is_file():
            raise InputError(str(path), "not an article store: expected a directory with manifest.json")
        try:
            raw = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(str(path / MANIFEST), f"not valid JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise InputError(str(path / MANIFEST), "expected a JSON object")
        manifest = StoreManifest.from_json(raw, str(path / MANIFEST))
        arrays = {name: _load_npy(path / f"{name}.npy", mmap=(name == "vectors"))
                  for name in ("vectors", "offsets", "article_ids", "chunk_index")}
        store = cls(path, manifest, **arrays)
        if check:
            store.check_structure()
        return store

    def check_structure(self) -> None:
        """Shapes, dtypes and offsets agree with each other and with the manifest."""
        src = str(self.path)
        v, off, ids, ci = self.vectors, self.offsets, self.article_ids, self.chunk_index
        if v.ndim != 2:
            raise InputError(src, f"vectors.npy: expected rank 2 (N, D), got shape {v.shape}")
        if v.dtype not in (np.float16, np.float32):
            raise InputError(src, f"vectors.npy: expected float16 or float32, got {v.dtype}")
        n, d = v.shape
        if d != self.manifest.dim:
            raise InputError(src, f"vectors.npy has dimension {d} but manifest.json says dim {self.manifest.dim}")
        if n != self.manifest.n_chunks:
            raise InputError(src, f"vectors.npy has {n} rows but manifest.json says n_chunks {self.manifest.n_chunks}")
        if off.ndim != 1 or off.shape[0] != ids.shape[0] + 1:
            raise InputError(src, f"offsets.npy: expected shape ({ids.shape[0] + 1},), got {off.shape}")
        if off[0] != 0 or off[-1] != n or np.any(np.diff(off) <= 0):
            raise InputError(src, "offsets.npy: expected strictly increasing offsets from 0 to N (no empty article)")
        for name, arr in (("offsets", off), ("article_ids", ids), ("chunk_index", ci)):
            if arr.dtype.kind not in "iu":
                raise InputError(src, f"{name}.npy: expected integers, got {arr.dtype}")
        if ci.shape != (n,):
            raise InputError(src, f"chunk_index.npy: expected shape ({n},), got {ci.shape}")
        if len(ids) != self.manifest.n_articles:
            raise InputError(src, f"article_ids.npy has {len(ids)} ids but manifest.json says n_articles {self.manifest.n_articles}")
        if len(np.unique(ids)) != len(ids):
            raise InputError(src, "article_ids.npy: duplicate article ids")
        self.nonfinite_record()  # a malformed NaN/Inf record is refused here, not when a run starts

    def nonfinite_rows(self, block: int = 1 << 16, progress: Callable[[int, int], None] | None = None) -> tuple[int, int]:
        """(how many rows hold a NaN or Inf, the first such row or -1): streamed over the
        memory map a block at a time, so a large store is checked without loading it whole."""
        n = self.vectors.shape[0]
        count, first = 0, -1
        for start in range(0, n, block):
            bad = ~np.isfinite(np.asarray(self.vectors[start:start + block])).all(axis=1)
            k = int(bad.sum())
            if k and first < 0:
                first = start + int(np.argmax(bad))
            count += k
            if progress is not None:
                progress(min(start + block, n), n)
        return count, first

    def nonfinite_record(self) -> dict[str, Any] | None:
        """The NaN/Inf rows `write_store` recorded in the manifest ({"count", "rows"}), or None
        for a store without one (written before the record existed, by hand) or whose
        vectors.npy was rewritten after the record was made (another size or time)."""
        rec = self.manifest.extra.get(NONFINITE_KEY)
        if rec is None:
            return None
        ok = (isinstance(rec, dict) and isinstance(rec.get("count"), int) and not isinstance(rec["count"], bool)
              and rec["count"] >= 0 and isinstance(rec.get("rows"), list)
              and all(isinstance(r, int) and not isinstance(r, bool) and 0 <= r < self.n_chunks for r in rec["rows"])
              and len(rec["rows"]) <= rec["count"])
        if not ok:
            raise InputError(str(self.path / MANIFEST), f'expected {{"count": N, "rows": [the first row numbers, at '
                             f'most {RECORDED_ROWS}], "vectors_npy": {{...}}}}, got {json.dumps(rec)[:60]}',
                             f"key 'extra.{NONFINITE_KEY}'")
        return rec if rec.get("vectors_npy") == _file_stamp(self.path / "vectors.npy") else None

    def refuse_nonfinite(self, progress_stream: TextIO | None = None, block: int = 1 << 16) -> None:
        """Bad input when any row holds NaN or Inf: training on it would diverge. The manifest's
        record (written by `data build` / `data import`) is trusted; a store without one is
        scanned `block` rows at a time, with a progress bar on `progress_stream` (stderr) when
        that takes more than one block."""
        rec = self.nonfinite_record()
        if rec is None:
            bar = (Progress(self.n_chunks, f"checking {self.path.name}/vectors.npy for NaN/Inf", progress_stream)
                   if self.n_chunks > block else None)
            count, first = self.nonfinite_rows(block, None if bar is None else
                                               lambda done, total: bar.update(done - bar.done))
            if bar is not None:
                bar.close()
            where = f"first: row {first}; found by a scan, manifest.json has no current record"
        else:
            count, rows = rec["count"], rec["rows"]
            where = (f"row{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows))}{', ...' if count > len(rows) else ''}"
                     "; recorded in manifest.json when the store was written")
        if count:
            raise InputError(str(self.path), f"{count} row(s) of vectors.npy hold NaN or Inf ({where}); "
                             "a run would diverge (`lvm-workbench data validate` lists them)")

    # ---- shape ---------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def n_chunks(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def n_articles(self) -> int:
        return int(self.article_ids.shape[0])

    @cached_property
    def lengths(self) -> np.ndarray:
        """Chunks per article, (A,) int64."""
        return np.diff(self.offsets)

    @cached_property
    def row_article(self) -> np.ndarray:
        """For each row, the position (0..A-1) of its article. (N,) int64."""
        return np.repeat(np.arange(self.n_articles, dtype=np.int64), self.lengths)

    @cached_property
    def article_position(self) -> dict[int, int]:
        """Article id -> position 0..A-1."""
        return {int(a): i for i, a in enumerate(self.article_ids)}

    def rows_of(self, article_pos: int) -> slice:
        return slice(int(self.offsets[article_pos]), int(self.offsets[article_pos + 1]))

    def row_for(self, article_id: int, chunk: int) -> int | None:
        """Row holding chunk index `chunk` of article `article_id`, or None."""
        pos = self.article_position.get(int(article_id))
        if pos is None:
            return None
        sl = self.rows_of(pos)
        idx = np.searchsorted(self.chunk_index[sl], chunk)
        if idx < sl.stop - sl.start and self.chunk_index[sl.start + idx] == chunk:
            return sl.start + int(idx)
        return None

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """Vectors at `rows` (any shape of int indices) as float32."""
        return np.asarray(self.vectors[rows], dtype=np.float32)

    # ---- optional side data --------------------------------------------------------------
    @cached_property
    def articles(self) -> list[dict[str, Any]] | None:
        p = self.path / "articles.json"
        if not p.exists():
            return None
        return json.loads(p.read_text(encoding="utf-8"))

    @cached_property
    def texts(self) -> list[str] | None:
        p = self.path / "texts.jsonl"
        if not p.exists():
            return None
        texts = []
        try:
            with p.open(encoding="utf-8") as fh:
                for i, line in enumerate(fh, 1):
                    texts.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(str(p), f"expected one JSON string per line ({type(exc).__name__})", f"line {len(texts) + 1}") from None
        return texts

    def title(self, article_pos: int) -> str:
        arts = self.articles
        if arts and "title" in arts[article_pos]:
            return str(arts[article_pos]["title"])
        return f"article {int(self.article_ids[article_pos])}"

    def fingerprint(self) -> dict[str, Any]:
        """A small description of the data for run records (no full-file hash: stores can be GBs)."""
        m = self.manifest
        return {
            "path": str(self.path),
            "dim": self.dim,
            "n_chunks": self.n_chunks,
            "n_articles": self.n_articles,
            "dtype": str(self.vectors.dtype),
            "embedder": m.embedder.get("name"),
            "text_sha256": m.text_sha256,
            "ids_sha256": hashlib.sha256(np.ascontiguousarray(self.article_ids).tobytes()
                                         + np.ascontiguousarray(self.offsets).tobytes()).hexdigest(),
        }


def _load_npy(path: Path, *, mmap: bool) -> np.ndarray:
    if not path.is_file():
        raise InputError(str(path), "missing (every store needs vectors, offsets, article_ids, chunk_index)")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputError(str(path), "holds a pickled object array; stores hold numeric arrays only") from None
        raise InputError(str(path), f"not a readable .npy file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise InputError(str(path), f"not a readable .npy file ({exc})") from None


def write_store(
    path: str | Path,
    vectors: np.ndarray,
    article_lengths: Sequence[int] | np.ndarray,
    article_ids: Sequence[int] | np.ndarray,
    *,
    chunk_index: np.ndarray | None = None,
    texts: Sequence[str] | None = None,
    articles: Sequence[dict[str, Any]] | None = None,
    embedder: dict[str, Any] | None = None,
    corpus: dict[str, Any] | None = None,
    dtype: str = "float16",
    normalize: bool = True,
    extra: dict[str, Any] | None = None,
    unit_length: bool = False,
) -> ArticleStore:
    """Write a store atomically (to a temporary directory, then renamed) and open it.
    `unit_length`: the vectors are normalised already (joined shard stores) and are written
    bit for bit, with the manifest saying they are normalised."""
    path = Path(path)
    vecs = l2_normalize(vectors) if normalize and not unit_length else np.asarray(vectors, dtype=np.float32)
    lengths = np.asarray(article_lengths, dtype=np.int64)
    ids = np.asarray(article_ids, dtype=np.int64)
    if vecs.ndim != 2:
        raise ValueError(f"vectors must be (N, D), got {vecs.shape}")
    if lengths.sum() != vecs.shape[0] or len(lengths) != len(ids):
        raise ValueError("article_lengths must sum to N and match article_ids")
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    if chunk_index is None:
        chunk_index = np.concatenate([np.arange(n, dtype=np.int64) for n in lengths]) if len(lengths) else np.zeros(0, np.int64)
    if texts is not None and len(texts) != vecs.shape[0]:
        raise ValueError("texts must have one entry per row")
    manifest = StoreManifest(
        dim=int(vecs.shape[1]),
        n_chunks=int(vecs.shape[0]),
        n_articles=int(len(ids)),
        dtype=dtype,
        embedder=dict(embedder or {}),
        corpus=dict(corpus or {}),
        text_sha256=text_hash(texts) if texts is not None else None,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        normalized=normalize or unit_length,
        extra=dict(extra or {}),
    )
    with np.errstate(over="ignore"):  # checked as stored: a float16 cast can overflow to Inf
        stored = vecs.astype(dtype)
    with atomic_dir(path) as tmp:
        np.save(tmp / "vectors.npy", stored)
        manifest.extra[NONFINITE_KEY] = nonfinite_record(stored, tmp / "vectors.npy")
        np.save(tmp / "offsets.npy", offsets)
        np.save(tmp / "article_ids.npy", ids)
        np.save(tmp / "chunk_index.npy", np.asarray(chunk_index, dtype=np.int64))
        if articles is not None:
            (tmp / "articles.json").write_text(json.dumps(list(articles), ensure_ascii=False) + "\n", encoding="utf-8")
        if texts is not None:
            with (tmp / "texts.jsonl").open("w", encoding="utf-8") as fh:
                for t in texts:
                    fh.write(json.dumps(t, ensure_ascii=False) + "\n")
        (tmp / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8")
    return ArticleStore.open(path)
