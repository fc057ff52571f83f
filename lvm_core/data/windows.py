"""Windows as indices and splits by article.

A window is the row of its target chunk: the context is the `context_len` rows before it, all in
the same article (rows of an article are contiguous and sorted, see store.py). So a batch is one
fancy-indexing gather, `vectors[target_rows[:, None] + arange(-L, 0)]`, never a Python loop, and
no window ever crosses an article boundary.

A split assigns whole articles to named parts ("train", "val", "test", "ood"...). It is made once
from a declared rule (explicit article-id ranges, or seeded fractions), written into the run with
its hash, and read back from there: nothing re-splits silently.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import InputError
from ..models.input import model_contexts
from .store import ArticleStore


@dataclass(frozen=True)
class Windows:
    """Windows of one store: target rows plus the context length."""

    store: ArticleStore
    target_rows: np.ndarray  # (W,) int64, row of the target chunk
    context_len: int

    def __len__(self) -> int:
        return int(self.target_rows.shape[0])

    @property
    def last_rows(self) -> np.ndarray:
        """Row of the last context chunk of each window (k = 0 in 5CAT's offsets)."""
        return self.target_rows - 1

    @property
    def article_pos(self) -> np.ndarray:
        """Article position (0..A-1) of each window."""
        return self.store.row_article[self.target_rows]

    def context_rows(self, idx: np.ndarray | slice | None = None) -> np.ndarray:
        rows = self.target_rows if idx is None else self.target_rows[idx]
        return rows[:, None] + np.arange(-self.context_len, 0, dtype=np.int64)[None, :]

    def batch(self, idx: np.ndarray | slice | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(contexts (B, L, D), targets (B, D)) as float32, gathered in one indexing call each."""
        rows = self.target_rows if idx is None else self.target_rows[idx]
        ctx = model_contexts(self.store, rows, self.context_len)  # what 5CAT feeds the model too
        tgt = self.store.gather(rows)
        return ctx, tgt

    def subset(self, idx: np.ndarray) -> "Windows":
        return Windows(self.store, self.target_rows[idx], self.context_len)


def make_windows(
    store: ArticleStore, article_positions: np.ndarray | None = None, context_len: int = 5
) -> Windows:
    """Every window whose context and target lie inside one article, for the given articles."""
    if context_len < 1:
        raise ValueError("context_len must be >= 1")
    if article_positions is None:
        article_positions = np.arange(store.n_articles)
    starts = store.offsets[article_positions]
    ends = store.offsets[np.asarray(article_positions) + 1]
    firsts = starts + context_len  # first valid target row
    counts = np.maximum(ends - firsts, 0)
    total = int(counts.sum())
    if total == 0:
        return Windows(store, np.zeros(0, dtype=np.int64), context_len)
    # rows = concat(range(first, end)) without a Python loop over articles
    rep_first = np.repeat(firsts, counts)
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return Windows(store, (rep_first + within).astype(np.int64), context_len)


@dataclass(frozen=True)
class Split:
    """Named parts of a store, each a sorted array of article ids."""

    parts: dict[str, np.ndarray]
    rule: dict[str, Any]

    def ids(self, name: str) -> np.ndarray:
        if name not in self.parts:
            raise InputError("split", f"no part named {name!r}; parts are {sorted(self.parts)}")
        return self.parts[name]

    def positions(self, store: ArticleStore, name: str) -> np.ndarray:
        """Article positions in `store` of the part's ids (ids not in the store are an error)."""
        pos = store.article_position
        ids = self.ids(name)
        missing = [int(a) for a in ids if int(a) not in pos]
        if missing:
            raise InputError(str(store.path), f"split part {name!r} names {len(missing)} article ids not in the store (first {missing[:3]})")
        return np.array([pos[int(a)] for a in ids], dtype=np.int64)

    def sha256(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.parts):
            h.update(name.encode())
            h.update(np.ascontiguousarray(self.parts[name], dtype=np.int64).tobytes())
        return h.hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "sha256": self.sha256(),
            "parts": {k: [int(x) for x in v] for k, v in self.parts.items()},
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], source: str = "split") -> "Split":
        try:
            parts = {k: np.asarray(sorted(v), dtype=np.int64) for k, v in obj["parts"].items()}
            split = cls(parts, dict(obj.get("rule", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(source, f"expected {{'parts': {{name: [ids]}}, 'rule': ...}} ({exc})") from None
        if "sha256" in obj and obj["sha256"] != split.sha256():
            raise InputError(source, "split hash does not match its article ids (edited by hand?)")
        return split

    def save(self, path: str | Path) -> None:
        from ..atomic import write_json

        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "Split":
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")), str(path))
        except json.JSONDecodeError as exc:
            raise InputError(str(path), f"not valid JSON ({exc})") from None


def split_by_ranges(store: ArticleStore, ranges: Mapping[str, Sequence[Sequence[int]]], rest: str | None = "train") -> Split:
    """Parts from inclusive article-id ranges, e.g. {"val": [[4000, 4499]], "ood": [[1500, 1999]]}.

    Articles in no range go to `rest` (or are dropped when rest is None). When `rest` is itself
    given ranges, those ranges are the whole part and articles in no range are dropped: an
    explicit declaration is never widened or replaced. Overlapping ranges are an error: an
    article is in exactly one part.
    """
    if rest is not None and rest in ranges:
        rest = None
    ids = np.asarray(store.article_ids, dtype=np.int64)
    owner = np.full(ids.shape, "", dtype=object)
    for name, rs in ranges.items():
        for r in rs:
            if len(r) != 2 or r[0] > r[1]:
                raise InputError("split", f"range {list(r)} for {name!r}: expected [first, last] with first <= last")
            hit = (ids >= r[0]) & (ids <= r[1])
            clash = hit & (owner != "") & (owner != name)
            if np.any(clash):
                other = owner[np.argmax(clash)]
                raise InputError("split", f"range {list(r)} for {name!r} overlaps part {other!r}")
            owner[hit] = name
    parts: dict[str, np.ndarray] = {name: np.sort(ids[owner == name]) for name in ranges}
    if rest is not None:
        parts[rest] = np.sort(ids[owner == ""])
    return Split(parts, {"kind": "ranges", "ranges": {k: [list(map(int, r)) for r in v] for k, v in ranges.items()}, "rest": rest})


def split_by_fractions(store: ArticleStore, fractions: Mapping[str, float], seed: int = 0) -> Split:
    """Seeded random assignment of whole articles to parts by fraction (fractions sum to 1)."""
    total = sum(fractions.values())
    if not np.isclose(total, 1.0, atol=1e-6) or any(f < 0 for f in fractions.values()):
        raise InputError("split", f"fractions must be >= 0 and sum to 1, got {dict(fractions)} (sum {total:g})")
    ids = np.sort(np.asarray(store.article_ids, dtype=np.int64))
    order = np.random.default_rng(seed).permutation(len(ids))
    names = list(fractions)
    bounds = np.round(np.cumsum([fractions[n] for n in names]) * len(ids)).astype(int)
    parts, start = {}, 0
    for name, end in zip(names, bounds):
        parts[name] = np.sort(ids[order[start:end]])
        start = end
    return Split(parts, {"kind": "fractions", "fractions": dict(fractions), "seed": seed})
