"""The original toolchain's NPZ formats (reference/lnsp-reference.md section 2), in and out.

- Article NPZ (`vectors`|`embeddings`|`X`, `article_indices`|`article_ids`, optional
  `chunk_indices`|`seq_idx`, `concept_texts`, `article_titles`, `cpe_ids`) -> ArticleStore,
  rows grouped by article and sorted by chunk index, L2-normalised (as the original loader did).
- Sequence NPZs (`context_sequences`|`contexts`|`context`|`X`, `target_vectors`|`targets`|
  `target`|`y`, optional `article_ids`, `target_indices`) -> SequenceSet.
- Export: a store's windows to the VAL/OOD `_compat` layout (`contexts`, `targets`,
  `article_ids`, `target_indices` = chunk index of the target), and a whole store as an
  article NPZ, so old tools can read our data.
- Checks: `validate_legacy_articles` and `validate_sequences` (with the shared report and
  check helpers of lvm_core/data/checks.py, which never imports this module).

Files are always opened with allow_pickle=False. An object array (the original `metadata`
dicts, `context_texts`) is refused with a message naming the key; only an explicit
`trust_pickle=True` (`--trust-pickle`) loads it, through `_load_pickled_key`, the one place
that unpickles.
"""

from __future__ import annotations

import pickle  # only through _DataOnlyUnpickler below
import warnings
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..atomic import atomic_path
from ..data.checks import ValidationReport, check_article_chunks, check_finite_and_nonzero, check_index_array, check_vector_array, first_few
from ..data.store import ArticleStore, l2_normalize, write_store
from ..data.windows import Windows
from ..errors import InputError

Warn = Callable[[str], None]

ARTICLE_KEYS: dict[str, tuple[str, ...]] = {
    "vectors": ("vectors", "embeddings", "X"),
    "article_ids": ("article_indices", "article_ids"),
    "chunk_indices": ("chunk_indices", "seq_idx"),
    "texts": ("concept_texts",),
    "titles": ("article_titles",),
    "cpe_ids": ("cpe_ids",),
}
SEQUENCE_KEYS: dict[str, tuple[str, ...]] = {
    "contexts": ("context_sequences", "contexts", "context", "X"),
    "targets": ("target_vectors", "targets", "target", "y"),
    "article_ids": ("article_ids",),
    "target_indices": ("target_indices",),
}
REQUIRED_ARTICLE_ROLES = ("vectors", "article_ids")
REQUIRED_SEQUENCE_ROLES = ("contexts", "targets")
METADATA_KEY = "metadata"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
NPY_MAGIC = b"\x93NUMPY"


@dataclass
class LegacyArticles:
    """An article NPZ as read: arrays as stored (not yet grouped, sorted or normalised)."""

    vectors: np.ndarray
    article_ids: np.ndarray
    chunk_indices: np.ndarray | None
    texts: list[str] | None
    titles: list[str] | None
    cpe_ids: list[str] | None
    source: str
    keys: dict[str, str]  # role -> the NPZ key it was read from


@dataclass
class SequenceSet:
    """Sequences as the original files hold them: full context copies and targets.

    target_indices are chunk indices of the targets inside their articles (the original
    meaning), not row numbers.
    """

    contexts: np.ndarray  # (N, L, D)
    targets: np.ndarray  # (N, D)
    article_ids: np.ndarray | None = None  # (N,) int64
    target_indices: np.ndarray | None = None  # (N,) int64
    source: str = "<memory>"
    keys: dict[str, str] = field(default_factory=lambda: {r: names[0] for r, names in SEQUENCE_KEYS.items()})

    @property
    def n(self) -> int:
        return int(self.contexts.shape[0])

    @property
    def context_len(self) -> int:
        return int(self.contexts.shape[1])

    @property
    def dim(self) -> int:
        return int(self.contexts.shape[2])

    def normalized(self) -> "SequenceSet":
        """A float32 copy with unit-length contexts and targets (what every consumer expects)."""
        return replace(self, contexts=l2_normalize(self.contexts), targets=l2_normalize(self.targets))


# ---- reading -------------------------------------------------------------------------------
@contextmanager
def open_npz(path: str | Path) -> Iterator[Any]:
    """np.load(path, allow_pickle=False) with every way a file can be wrong as one InputError."""
    p = Path(path)
    src = str(p)
    if not p.exists():
        raise InputError(src, "no such file")
    if p.is_dir():
        raise InputError(src, "is a directory; expected an .npz file")
    if p.stat().st_size == 0:
        raise InputError(src, "is empty (0 bytes); expected an .npz archive")
    with p.open("rb") as fh:
        head = fh.read(8)
    if not head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC, NPY_MAGIC)):
        if head.startswith(b"\x80"):  # pickle protocol 2 and later
            raise InputError(src, "is a pickle file, not an .npz archive; refusing to unpickle it")
        raise InputError(src, f"not an .npz archive (a zip of .npy arrays): the file starts with {head!r}")
    try:
        archive = np.load(p, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputError(src, "is a pickle file, not an .npz archive; refusing to unpickle it") from None
        raise InputError(src, f"not an .npz archive ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(src, f"not a readable .npz archive ({exc}); is it truncated, or not an NPZ?") from None
    if not hasattr(archive, "files"):
        raise InputError(src, f"is a single .npy array of shape {archive.shape}; expected an .npz archive with named keys")
    try:
        yield archive
    finally:
        archive.close()


def _pick_key(archive: Any, src: str, role: str, names: tuple[str, ...], required: bool) -> str | None:
    for name in names:
        if name in archive.files:
            return name
    if required:
        raise InputError(src, f"no {role} key: expected one of {', '.join(repr(n) for n in names)}; "
                              f"the file has {sorted(archive.files)}")
    return None


def _read_key(archive: Any, src: str, key: str, trust_pickle: bool, warn: Warn | None) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as exc:
        if "object arrays" in str(exc).lower() or "allow_pickle" in str(exc):
            if not trust_pickle:
                raise InputError(src, "is an object array that only pickle can load, and unpickling runs code "
                                      "stored in the file; refused. If you trust this file, rerun with "
                                      "--trust-pickle (library: trust_pickle=True)", where=f"key {key!r}") from None
            return _load_pickled_key(src, key, warn)
        raise InputError(src, f"unreadable ({exc})", where=f"key {key!r}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise InputError(src, f"unreadable; the file may be truncated ({exc})", where=f"key {key!r}") from None


#: what a pickled object array of plain data needs: numpy's array rebuild and nothing that runs code
_DATA_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                 ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                 ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _DataOnlyUnpickler(pickle.Unpickler):
    """Rebuilds arrays of str, numbers, lists and dicts; any other global (a class, `posix.system`)
    is refused by name before it is looked up, so nothing in the file runs."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _DATA_GLOBALS:
            raise pickle.UnpicklingError(f"the file asks for {module}.{name}, which is not plain data")
        return super().find_class(module, name)


def _load_pickled_key(src: str, key: str, warn: Warn | None) -> np.ndarray:
    # The one place lvm-workbench reads a pickle, reached only with --trust-pickle
    # (trust_pickle=True) for the key that needs it: and even then only plain data is rebuilt.
    (warn or _default_warn)(f"{src}: unpickling key {key!r} because --trust-pickle was given "
                            "(plain data only: any other object in it is refused)")
    try:
        with zipfile.ZipFile(src) as zf, zf.open(f"{key}.npy") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            read_header(fh)
            arr = _DataOnlyUnpickler(fh).load()
    except pickle.UnpicklingError as exc:
        raise InputError(src, f"refused: {exc} (nothing was executed)", where=f"key {key!r}") from None
    except Exception as exc:  # a malformed pickle can raise anything
        raise InputError(src, f"could not unpickle ({type(exc).__name__}: {exc})", where=f"key {key!r}") from None
    if not isinstance(arr, np.ndarray):
        raise InputError(src, f"expected an array, got {type(arr).__name__}", where=f"key {key!r}")
    return arr


def _default_warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def _as_strings(arr: np.ndarray, src: str, key: str) -> list[str]:
    """Text arrays: numpy str ('U'), bytes ('S', UTF-8) or, when trusted, objects holding str."""
    flat = np.asarray(arr).reshape(-1)
    if flat.dtype.kind == "U":
        return [str(s) for s in flat.tolist()]
    if flat.dtype.kind == "S":
        try:
            return [b.decode("utf-8") for b in flat.tolist()]
        except UnicodeDecodeError as exc:
            raise InputError(src, f"expected UTF-8 text ({exc})", where=f"key {key!r}") from None
    if flat.dtype.kind == "O" and all(isinstance(s, str) for s in flat):
        return list(flat)
    raise InputError(src, f"expected an array of strings, got dtype {arr.dtype}", where=f"key {key!r}")


def read_articles_npz(path: str | Path, *, trust_pickle: bool = False, warn: Warn | None = None) -> LegacyArticles:
    """Read an original article NPZ as stored. Validate with `validate_legacy_articles`."""
    src = str(path)
    with open_npz(path) as z:
        keys = {role: _pick_key(z, src, role, names, role in REQUIRED_ARTICLE_ROLES) for role, names in ARTICLE_KEYS.items()}
        get = {role: _read_key(z, src, key, trust_pickle, warn) for role, key in keys.items() if key is not None}
    strings = {role: _as_strings(get[role], src, keys[role]) if role in get else None for role in ("texts", "titles", "cpe_ids")}
    return LegacyArticles(
        vectors=get["vectors"],
        article_ids=get["article_ids"],
        chunk_indices=get.get("chunk_indices"),
        texts=strings["texts"],
        titles=strings["titles"],
        cpe_ids=strings["cpe_ids"],
        source=src,
        keys={role: key for role, key in keys.items() if key is not None},
    )


def read_sequences_npz(path: str | Path, *, trust_pickle: bool = False, warn: Warn | None = None) -> SequenceSet:
    """Read a sequences NPZ as stored (arrays not normalised). Validate with `validate_sequences`.

    Article ids and target chunk indices come from `article_ids`/`target_indices`; when
    `article_ids` is absent, from the `metadata` dicts (the P6 fallback of the original 5CAT:
    `article_index`|`article_id`, `target_chunk_index`|`target_idx`), which needs pickle.
    """
    src = str(path)
    with open_npz(path) as z:
        keys = {role: _pick_key(z, src, role, names, role in REQUIRED_SEQUENCE_ROLES) for role, names in SEQUENCE_KEYS.items()}
        get = {role: _read_key(z, src, key, trust_pickle, warn) for role, key in keys.items() if key is not None}
        if keys["article_ids"] is None and METADATA_KEY in z.files:
            aids, tix = _ids_from_metadata(_read_key(z, src, METADATA_KEY, trust_pickle, warn), src)
            get["article_ids"], get["target_indices"] = aids, tix
            keys["article_ids"] = keys["target_indices"] = METADATA_KEY
    return SequenceSet(
        contexts=get["contexts"],
        targets=get["targets"],
        article_ids=get.get("article_ids"),
        target_indices=get.get("target_indices"),
        source=src,
        keys={role: key or names[0] for (role, key), names in zip(keys.items(), SEQUENCE_KEYS.values())},
    )


def _ids_from_metadata(meta: np.ndarray, src: str) -> tuple[np.ndarray, np.ndarray]:
    """(article id, target chunk index) of each sequence from the original's metadata dicts."""
    flat = np.asarray(meta, dtype=object).reshape(-1)
    aids = np.zeros(len(flat), dtype=np.int64)
    tix = np.zeros(len(flat), dtype=np.int64)
    for i, m in enumerate(flat):
        where = f"key 'metadata'[{i}]"
        if not isinstance(m, dict):
            raise InputError(src, f"expected a dict, got {type(m).__name__}", where=where)
        aid = m.get("article_index", m.get("article_id"))
        t = m.get("target_chunk_index", m.get("target_idx"))
        if aid is None or t is None:
            raise InputError(src, "expected 'article_index' (or 'article_id') and 'target_chunk_index' "
                                  f"(or 'target_idx'); it has {sorted(m)}", where=where)
        try:
            aids[i], tix[i] = int(aid), int(t)
        except (TypeError, ValueError):
            raise InputError(src, f"expected integer ids, got {aid!r} and {t!r}", where=where) from None
    return aids, tix


def load_sequences_npz(path: str | Path, *, store: ArticleStore | None = None, trust_pickle: bool = False,
                       warn: Warn | None = None) -> SequenceSet:
    """Read, validate (against `store` if given; errors raise InputError) and L2-normalise."""
    seqs = read_sequences_npz(path, trust_pickle=trust_pickle, warn=warn)
    validate_sequences(seqs, store).raise_for_errors()
    return seqs.normalized()


# ---- article NPZ -> store ------------------------------------------------------------------
def legacy_articles_to_store(arts: LegacyArticles, out: str | Path, *, dtype: str = "float32",
                             extra: dict[str, Any] | None = None) -> ArticleStore:
    """Write validated article arrays as a store: grouped by article id (ascending), each
    article sorted by chunk index (file order when there is none), rows L2-normalised."""
    aids = np.asarray(arts.article_ids, dtype=np.int64)
    n = len(aids)
    file_order = np.arange(n)
    chunks = None if arts.chunk_indices is None else np.asarray(arts.chunk_indices, dtype=np.int64)
    order = np.lexsort((file_order, file_order if chunks is None else chunks, aids))
    sorted_aids = aids[order]
    ids, first_row, lengths = np.unique(sorted_aids, return_index=True, return_counts=True)
    if chunks is None:
        chunk_index = file_order - np.repeat(first_row, lengths)
    else:
        chunk_index = chunks[order]
    texts = [arts.texts[i] for i in order] if arts.texts is not None else None
    articles = None
    if arts.titles is not None:
        titles = [arts.titles[i] for i in order[first_row]] if len(arts.titles) == n else list(arts.titles)
        articles = [{"id": int(a), "title": t, "source": arts.source} for a, t in zip(ids, titles)]
    return write_store(
        out, np.asarray(arts.vectors)[order], lengths, ids,
        chunk_index=chunk_index, texts=texts, articles=articles,
        embedder={"name": "unknown (imported)", "dim": int(arts.vectors.shape[1])},
        corpus={"source": arts.source, "format": "lnsp article npz", "keys": arts.keys},
        dtype=dtype, normalize=True, extra=dict(extra or {}),
    )


def import_articles_npz(src: str | Path, out: str | Path, *, dtype: str = "float32", trust_pickle: bool = False,
                        warn: Warn | None = None) -> ArticleStore:
    """Read, validate (errors raise InputError before anything is written) and write a store."""
    arts = read_articles_npz(src, trust_pickle=trust_pickle, warn=warn)
    validate_legacy_articles(arts).raise_for_errors()
    return legacy_articles_to_store(arts, out, dtype=dtype)


# ---- sequences <-> store windows -----------------------------------------------------------
@dataclass(frozen=True)
class SequenceMapping:
    """Where each sequence of a SequenceSet sits in a store, and whether it agrees with it."""

    store: ArticleStore
    context_len: int
    target_rows: np.ndarray  # (N,) int64: store row of (article id, target chunk index); -1 if absent
    target_cos: np.ndarray  # (N,) float32: cos(sequence target, that row); NaN where absent
    target_ok: np.ndarray  # (N,) bool: row found and cos > min_cos
    context_ok: np.ndarray  # (N,) bool: the L rows before it are in its article and equal the context

    @property
    def usable(self) -> np.ndarray:
        return self.target_ok & self.context_ok

    @property
    def n_missing(self) -> int:
        return int(np.sum(self.target_rows < 0))

    @property
    def n_target_differs(self) -> int:
        return int(np.sum((self.target_rows >= 0) & ~self.target_ok))

    @property
    def n_context_differs(self) -> int:
        return int(np.sum(self.target_ok & ~self.context_ok))

    def windows(self) -> Windows:
        """Windows of the sequences whose target and context both match the store."""
        return Windows(self.store, self.target_rows[self.usable], self.context_len)


def rows_for_pairs(store: ArticleStore, article_ids: np.ndarray, chunks: np.ndarray) -> np.ndarray:
    """Store row of each (article id, chunk index) pair, -1 where the store has no such chunk.

    Vectorised: rows are sorted by (article position, chunk index), so one searchsorted over a
    combined key finds them all.
    """
    article_ids = np.asarray(article_ids, dtype=np.int64)
    chunks = np.asarray(chunks, dtype=np.int64)
    rows = np.full(len(article_ids), -1, dtype=np.int64)
    if store.n_chunks == 0 or len(article_ids) == 0:
        return rows
    by_id = np.argsort(store.article_ids, kind="stable")
    sorted_ids = store.article_ids[by_id]
    p = np.minimum(np.searchsorted(sorted_ids, article_ids), len(sorted_ids) - 1)
    known = (sorted_ids[p] == article_ids) & (chunks >= 0)
    apos = by_id[p]
    ci = np.asarray(store.chunk_index, dtype=np.int64)
    span = int(max(ci.max(), chunks.max(initial=0))) + 1
    store_keys = store.row_article * span + ci
    query = apos * span + chunks
    r = np.minimum(np.searchsorted(store_keys, query), store.n_chunks - 1)
    hit = known & (store_keys[r] == query)
    rows[hit] = r[hit]
    return rows


def windows_for_sequences(store: ArticleStore, seqs: SequenceSet, *, min_cos: float = 0.999,
                          block: int = 4096) -> SequenceMapping:
    """Map sequences (with article_ids and target_indices) to store target rows and check them.

    Each target must equal the row its ids name (cos > min_cos), and its context the L rows
    before that row in the same article; `mapping.windows()` keeps the sequences where both
    hold, so 5CAT can run on original NPZ layouts with the store's offsets.
    """
    if seqs.article_ids is None or seqs.target_indices is None:
        raise InputError(seqs.source, "needs article_ids and target_indices (or metadata) to find sequences in a store")
    if seqs.dim != store.dim:
        raise InputError(seqs.source, f"dimension mismatch: sequences have D={seqs.dim}, store {store.path} has D={store.dim}")
    n, length = seqs.n, seqs.context_len
    rows = rows_for_pairs(store, seqs.article_ids, seqs.target_indices)
    target_cos = np.full(n, np.nan, dtype=np.float32)
    context_ok = np.zeros(n, dtype=bool)
    offsets = np.asarray(store.offsets)
    for start in range(0, n, block):
        found = start + np.flatnonzero(rows[start:start + block] >= 0)  # sequence numbers
        if len(found) == 0:
            continue
        r = rows[found]
        target_cos[found] = np.sum(l2_normalize(seqs.targets[found]) * l2_normalize(store.gather(r)), axis=-1)
        inside = found[r - length >= offsets[store.row_article[r]]]  # all L context rows in the article
        if len(inside):
            ctx_rows = rows[inside, None] + np.arange(-length, 0)[None, :]
            cos = np.sum(l2_normalize(store.gather(ctx_rows)) * l2_normalize(seqs.contexts[inside]), axis=-1)
            context_ok[inside] = np.all(cos > min_cos, axis=1)
    target_ok = (rows >= 0) & (np.nan_to_num(target_cos, nan=-2.0) > min_cos)
    return SequenceMapping(store, length, rows, target_cos, target_ok, context_ok)


# ---- export --------------------------------------------------------------------------------
def sequences_from_windows(windows: Windows) -> SequenceSet:
    """Copy a store's windows out as a SequenceSet (contexts gathered, ids and chunk indices)."""
    store = windows.store
    ctx, tgt = windows.batch()
    return SequenceSet(
        contexts=ctx, targets=tgt,
        article_ids=np.asarray(store.article_ids, dtype=np.int64)[windows.article_pos],
        target_indices=np.asarray(store.chunk_index, dtype=np.int64)[windows.target_rows],
        source=str(store.path), keys={"contexts": "contexts", "targets": "targets",
                                      "article_ids": "article_ids", "target_indices": "target_indices"},
    )


def save_sequences_npz(seqs: SequenceSet, out: str | Path) -> Path:
    """Write the VAL/OOD `_compat` layout (`contexts`, `targets`, `article_ids`,
    `target_indices`), float32 and int64, no object arrays; atomically."""
    arrays: dict[str, np.ndarray] = {
        "contexts": np.asarray(seqs.contexts, dtype=np.float32),
        "targets": np.asarray(seqs.targets, dtype=np.float32),
    }
    if seqs.article_ids is not None:
        arrays["article_ids"] = np.asarray(seqs.article_ids, dtype=np.int64)
    if seqs.target_indices is not None:
        arrays["target_indices"] = np.asarray(seqs.target_indices, dtype=np.int64)
    return _savez_atomic(out, arrays)


def export_windows_npz(windows: Windows, out: str | Path) -> Path:
    """A store's windows in the original VAL/OOD layout, readable by the original 5CAT."""
    return save_sequences_npz(sequences_from_windows(windows), out)


def export_articles_npz(store: ArticleStore, out: str | Path) -> Path:
    """A whole store as an original article NPZ (`vectors` float32, `article_indices`,
    `chunk_indices`, and `concept_texts`/`article_titles` per row when the store has them)."""
    ids_per_row = np.asarray(store.article_ids)[store.row_article]
    arrays: dict[str, np.ndarray] = {
        "vectors": np.asarray(store.vectors, dtype=np.float32),
        "article_indices": _narrow_int(ids_per_row),
        "chunk_indices": _narrow_int(np.asarray(store.chunk_index)),
    }
    if store.texts is not None:
        arrays["concept_texts"] = np.array(store.texts, dtype=str)
    if store.articles is not None:
        titles = [store.title(i) for i in range(store.n_articles)]
        arrays["article_titles"] = np.array(titles, dtype=str)[store.row_article]
    return _savez_atomic(out, arrays)


def _narrow_int(x: np.ndarray) -> np.ndarray:
    """int32 as the original wrote, unless the values need more."""
    x = np.asarray(x, dtype=np.int64)
    info = np.iinfo(np.int32)
    if len(x) == 0 or (x.min() >= info.min and x.max() <= info.max):
        return x.astype(np.int32)
    return x


def _savez_atomic(out: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    out = Path(out)
    with atomic_path(out) as tmp:
        with tmp.open("wb") as fh:  # a file object, so numpy does not append ".npz" to the name
            np.savez(fh, **arrays)
    return out


# ---- the checks of the original formats (lvm-workbench data validate, import) -------------------

def validate_legacy_articles(arts: LegacyArticles) -> ValidationReport:
    """Checks on an article NPZ as read (before it becomes a store)."""
    report = ValidationReport(arts.source, "articles-npz")
    k = arts.keys
    v = arts.vectors
    if not check_vector_array(report, f"key {k['vectors']!r}", v, rank=2, shape="(N, D)"):
        return report
    n, d = v.shape
    report.stats.update(n_chunks=n, dim=d)
    ids_ok = check_index_array(report, f"key {k['article_ids']!r}", arts.article_ids, n)
    chunks_ok = arts.chunk_indices is None or check_index_array(report, f"key {k['chunk_indices']!r}", arts.chunk_indices, n)
    check_finite_and_nonzero(report, f"key {k['vectors']!r}", v)
    if ids_ok:
        n_articles = len(np.unique(arts.article_ids))
        report.stats["n_articles"] = n_articles
        if chunks_ok and arts.chunk_indices is not None:
            check_article_chunks(report, f"key {k['chunk_indices']!r}", arts.article_ids, arts.chunk_indices)
        if arts.titles is not None and len(arts.titles) not in (n, n_articles):
            report.error(f"key {k['titles']!r}", f"expected {n} (one per row) or {n_articles} (one per article) titles, got {len(arts.titles)}")
    if arts.texts is not None and len(arts.texts) != n:
        report.error(f"key {k['texts']!r}", f"expected {n} texts (one per row), got {len(arts.texts)}")
    if arts.cpe_ids is not None and len(arts.cpe_ids) != n:
        report.error(f"key {k['cpe_ids']!r}", f"expected {n} ids (one per row), got {len(arts.cpe_ids)}")
    return report


def validate_sequences(seqs: SequenceSet, store: ArticleStore | None = None, *, min_cos: float = 0.999) -> ValidationReport:
    """Checks on a sequences NPZ; with a store, also that each target is the row it claims to be.

    A sequence's metadata (article id, target chunk index) must point at a store row equal to its
    target (cosine > `min_cos`): the original P6 data held a target that was not the chunk its
    context led to ("two different targets"). Contexts that are not the L rows before the target
    (windows across article boundaries, as the original VAL/OOD files have) are a warning.
    """
    report = ValidationReport(seqs.source, "sequences-npz")
    k = seqs.keys
    ctx_ok = check_vector_array(report, f"key {k['contexts']!r}", seqs.contexts, rank=3, shape="(N, L, D)")
    tgt_ok = check_vector_array(report, f"key {k['targets']!r}", seqs.targets, rank=2, shape="(N, D)")
    if not (ctx_ok and tgt_ok):
        return report
    n, length, d = seqs.contexts.shape
    if seqs.targets.shape[0] != n:
        report.error(f"key {k['targets']!r}", f"expected {n} targets (one per context), got {seqs.targets.shape[0]}")
    if seqs.targets.shape[1] != d:
        report.error(f"key {k['targets']!r}", f"dimension {seqs.targets.shape[1]} differs from the contexts' dimension {d}")
    if report.errors:
        return report
    report.stats.update(n_sequences=n, context_len=length, dim=d)
    check_finite_and_nonzero(report, f"key {k['contexts']!r}", seqs.contexts)
    check_finite_and_nonzero(report, f"key {k['targets']!r}", seqs.targets)
    ids_ok = seqs.article_ids is not None and check_index_array(report, f"key {k['article_ids']!r}", seqs.article_ids, n)
    tix_ok = seqs.target_indices is not None and check_index_array(report, f"key {k['target_indices']!r}", seqs.target_indices, n)
    if tix_ok and np.any(seqs.target_indices < 0):
        bad = np.flatnonzero(seqs.target_indices < 0)
        report.error(f"key {k['target_indices']!r}", f"{len(bad)} negative target indices (first: {first_few(bad)})")
        tix_ok = False
    if store is None or report.errors:
        return report
    _check_against_store(report, seqs, store, ids_ok and tix_ok, min_cos)
    return report


def _check_against_store(report: ValidationReport, seqs: SequenceSet, store: ArticleStore, have_ids: bool, min_cos: float) -> None:
    if store.dim != seqs.dim:
        report.error(f"key {seqs.keys['targets']!r}", f"dimension mismatch: sequences have D={seqs.dim} "
                                                      f"but store {store.path} has D={store.dim}")
        return
    if not have_ids:
        report.warning("", "no article_ids/target_indices (or metadata): targets cannot be checked against the store")
        return
    m = windows_for_sequences(store, seqs, min_cos=min_cos)
    report.stats.update(store=str(store.path), sequences_matched=int(m.usable.sum()))
    where = f"keys {seqs.keys['article_ids']!r}/{seqs.keys['target_indices']!r}"
    if m.n_missing:
        idx = np.flatnonzero(m.target_rows < 0)
        report.error(where, f"{m.n_missing} sequences point at an (article, chunk) that is not in store {store.path} "
                            f"(first: {first_few(idx)})")
    if m.n_target_differs:
        idx = np.flatnonzero((m.target_rows >= 0) & ~m.target_ok)
        report.error(f"key {seqs.keys['targets']!r}",
                     f"{m.n_target_differs} of {seqs.n} targets differ from the store row their metadata points to "
                     f"(cosine <= {min_cos}; first: {first_few(idx)}): the target is not the chunk the ids name")
    if m.n_context_differs:
        idx = np.flatnonzero(m.target_ok & ~m.context_ok)
        report.warning(f"key {seqs.keys['contexts']!r}",
                       f"{m.n_context_differs} of {seqs.n} contexts are not the {seqs.context_len} store rows before "
                       f"their target (first: {first_few(idx)}); e.g. windows across article boundaries")
