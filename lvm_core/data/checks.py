"""Validation on load: every problem in a store or an NPZ as one line naming the file and key.

The original toolchain asserted "all finite" and moved on; windows that pointed at the wrong
row, zero vectors and duplicated chunks went unnoticed until a gate looked odd. Here each check
reports what it found (counts and the first row numbers) so a user can find the bad rows, and
errors (the data cannot be used as is) are kept apart from warnings (it can, but look).
A report is plain data, ready for JSON (`to_json`), and `raise_for_errors` turns it into the
one-line InputError the CLI prints with exit code 2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .store import ArticleStore

ERROR = "error"
WARNING = "warning"
FIRST = 5  # how many example row numbers a problem line shows
BLOCK_ROWS = 65536  # rows scanned at a time, so a 584k x 768 store is never read whole
UNIT_NORM_TOLERANCE = 1e-2  # float16 rows are unit length to about 1e-3


@dataclass(frozen=True)
class Problem:
    """One finding: its level, the file, the key (or line) inside it, and what is wrong."""

    level: str
    source: str
    where: str
    message: str

    def line(self) -> str:
        parts = [self.level, self.source] + ([self.where] if self.where else []) + [self.message]
        return ": ".join(parts)

    def to_json(self) -> dict[str, str]:
        return {"level": self.level, "source": self.source, "where": self.where, "message": self.message}


@dataclass
class ValidationReport:
    """All problems found in one file or store, plus a few counts describing it."""

    source: str
    kind: str  # "store", "articles-npz" or "sequences-npz"
    problems: list[Problem] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def error(self, where: str, message: str, source: str | None = None) -> None:
        self.problems.append(Problem(ERROR, source or self.source, where, message))

    def warning(self, where: str, message: str, source: str | None = None) -> None:
        self.problems.append(Problem(WARNING, source or self.source, where, message))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "ok": self.ok,
            "n_errors": len(self.errors),
            "n_warnings": len(self.warnings),
            "problems": [p.to_json() for p in self.problems],
            "stats": self.stats,
        }

    def raise_for_errors(self) -> None:
        """Raise the first error as a one-line InputError (saying how many more there are)."""
        errs = self.errors
        if not errs:
            return
        first = errs[0]
        more = f" (and {len(errs) - 1} more problem(s); see `lvm-workbench data validate`)" if len(errs) > 1 else ""
        raise InputError(first.source, first.message + more, first.where)


# ---- array checks shared by stores and NPZs ------------------------------------------------
def first_few(idx: np.ndarray) -> str:
    """The first few indices of `idx`, for a message (", ..." when there are more)."""
    shown = ", ".join(str(int(i)) for i in idx[:FIRST])
    return shown + (", ..." if len(idx) > FIRST else "")


def check_vector_array(report: ValidationReport, where: str, x: np.ndarray, *, rank: int, shape: str) -> bool:
    """Float dtype, the expected rank, at least one row and one dimension. True if usable."""
    if x.dtype.kind != "f":
        report.error(where, f"expected float vectors {shape}, got dtype {x.dtype}")
        return False
    if x.ndim != rank:
        report.error(where, f"expected rank {rank} {shape}, got shape {x.shape}")
        return False
    if 0 in x.shape:
        report.error(where, f"expected a non-empty array {shape}, got shape {x.shape}")
        return False
    return True


def check_finite_and_nonzero(report: ValidationReport, where: str, x: np.ndarray, *, unit_norm: bool = False) -> None:
    """NaN/Inf rows and zero vectors (errors), and rows that are not unit length (warning).

    `x` is (N, D) or (N, L, D); for (N, L, D) a row is a sequence and any bad vector in it
    makes the row bad. Scanned in blocks so a memory-mapped store is never loaded whole.
    """
    bad_finite, bad_zero, bad_norm = [], [], []
    for start in range(0, x.shape[0], BLOCK_ROWS):
        block = np.asarray(x[start:start + BLOCK_ROWS], dtype=np.float32)
        # one pass: NaN/Inf make the squared norm non-finite; the rare flagged vectors are then
        # checked exactly (a huge but finite vector can overflow float32 when squared)
        norms = np.sqrt(np.einsum("...d,...d->...", block, block))
        finite = np.isfinite(norms)
        if not finite.all():
            finite[~finite] = np.isfinite(block[~finite]).all(axis=-1)
        zero = finite & (norms < 1e-8)
        off_unit = finite & ~zero & (np.abs(norms - 1.0) > UNIT_NORM_TOLERANCE)
        if block.ndim == 3:
            finite, zero, off_unit = finite.all(axis=1), zero.any(axis=1), off_unit.any(axis=1)
        bad_finite.append(start + np.flatnonzero(~finite))
        bad_zero.append(start + np.flatnonzero(zero))
        bad_norm.append(start + np.flatnonzero(off_unit))
    nonfinite, zeros, off = (np.concatenate(b) if b else np.zeros(0, np.int64) for b in (bad_finite, bad_zero, bad_norm))
    noun = "sequences" if x.ndim == 3 else "rows"
    if len(nonfinite):
        report.error(where, f"{len(nonfinite)} {noun} with NaN or Inf values (first: {first_few(nonfinite)})")
    if len(zeros):
        report.error(where, f"{len(zeros)} {noun} with a zero vector, which has no direction (first: {first_few(zeros)})")
    if unit_norm and len(off):
        report.warning(where, f"{len(off)} {noun} are not unit length although the store says normalized (first: {first_few(off)})")


def check_index_array(report: ValidationReport, where: str, ids: np.ndarray, n: int) -> bool:
    """An integer vector with one entry per row. True if usable."""
    if ids.dtype.kind not in "iu":
        report.error(where, f"expected integers, got dtype {ids.dtype}")
        return False
    if ids.shape != (n,):
        report.error(where, f"expected shape ({n},) (one per row), got {ids.shape}")
        return False
    return True


def check_article_chunks(report: ValidationReport, where: str, article_ids: np.ndarray, chunks: np.ndarray) -> None:
    """Duplicate (article, chunk) pairs are errors; gaps in an article's chunk indices warnings.

    Gaps matter because offsets count rows: a window over a gap is not 5 consecutive chunks.
    """
    if len(chunks) == 0:
        return
    negative = np.flatnonzero(chunks < 0)
    if len(negative):
        report.error(where, f"{len(negative)} negative chunk indices (first rows: {first_few(negative)})")
    order = np.lexsort((chunks, article_ids))
    a, c = article_ids[order], chunks[order]
    same = a[1:] == a[:-1]
    dup = np.flatnonzero(same & (c[1:] == c[:-1]))
    if len(dup):
        pairs = ", ".join(f"({int(a[i])}, {int(c[i])})" for i in dup[:FIRST])
        report.error(where, f"{len(dup)} duplicate (article, chunk) pairs (first: {pairs})")
    gap = np.flatnonzero(same & (c[1:] - c[:-1] > 1))
    if len(gap):
        arts = np.unique(a[gap])
        i = gap[0]
        report.warning(where, f"{len(arts)} articles have gaps in their chunk indices "
                              f"(first: article {int(a[i])} jumps from chunk {int(c[i])} to {int(c[i + 1])}); "
                              "windows are built over rows, so they span the gap")


# ---- stores --------------------------------------------------------------------------------
def validate_store(store: ArticleStore | str | Path) -> ValidationReport:
    """Every check on a store directory: structure, side files, vectors, chunk indices."""
    path = store.path if isinstance(store, ArticleStore) else Path(store)
    report = ValidationReport(str(path), "store")
    if not isinstance(store, ArticleStore):
        try:
            store = ArticleStore.open(path, check=False)
        except InputError as exc:
            report.error(exc.where or "", exc.message, exc.source)
            return report
    try:
        store.check_structure()
    except InputError as exc:
        report.error(exc.where or "", exc.message, exc.source)
        return report
    report.stats.update(n_chunks=store.n_chunks, n_articles=store.n_articles, dim=store.dim,
                        dtype=str(store.vectors.dtype), embedder=store.manifest.embedder.get("name"))
    check_finite_and_nonzero(report, "vectors.npy", store.vectors, unit_norm=store.manifest.normalized)
    ci = np.asarray(store.chunk_index)
    if ci.dtype.kind not in "iu":
        report.error("chunk_index.npy", f"expected integers, got dtype {ci.dtype}")
    else:
        unsorted = np.flatnonzero((np.diff(ci) < 0) & (store.row_article[1:] == store.row_article[:-1]))
        if len(unsorted):
            arts = np.unique(store.article_ids[store.row_article[unsorted]])
            report.error("chunk_index.npy", f"{len(arts)} articles are not sorted by chunk index "
                                            f"(first: article {int(arts[0])}); rows must be in chunk order")
        check_article_chunks(report, "chunk_index.npy", store.article_ids[store.row_article], ci)
    _check_side_files(report, store)
    return report


def _check_side_files(report: ValidationReport, store: ArticleStore) -> None:
    """texts.jsonl has one line per row and articles.json one entry per article."""
    texts = store.path / "texts.jsonl"
    if texts.exists():
        with texts.open("rb") as fh:
            n_lines = sum(1 for _ in fh)
        if n_lines != store.n_chunks:
            report.error("texts.jsonl", f"expected {store.n_chunks} lines (one per row), got {n_lines}")
    arts = store.path / "articles.json"
    if arts.exists():
        try:
            entries = json.loads(arts.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            report.error("articles.json", f"not valid JSON ({exc})")
            return
        if not isinstance(entries, list) or len(entries) != store.n_articles:
            got = len(entries) if isinstance(entries, list) else type(entries).__name__
            report.error("articles.json", f"expected a list of {store.n_articles} entries (one per article), got {got}")


# ---- original-format NPZs ------------------------------------------------------------------
