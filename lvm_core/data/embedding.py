"""Embedders and the embedding cache.

An Embedder turns chunk texts into unit-length float32 rows. Vectors of different embedders
(or of different weights under one name) are not interchangeable, so every embedder states its
name, dimension and the sha256 of its weights, and the cache keys every vector by those plus
the sha256 of the chunk text.

Cache layout (append-only, no pickle)::

    CACHE_DIR/<name>-<weights_sha256[:16]>/
        meta.json               name, dim, weights_sha256
        shard-000001.npy        (n, dim) float32 vectors
        shard-000001.keys.npy   (n,) |S64 hex sha256 of each chunk text; written last, so a
                                shard without its keys file (an interrupted write) is ignored
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Protocol, Sequence, runtime_checkable

import numpy as np

from ..atomic import atomic_path, write_json
from ..errors import InputError


@runtime_checkable
class Embedder(Protocol):
    """What the builder needs from an embedding model."""

    name: str
    dim: int
    weights_sha256: str
    pooling: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32 rows of unit length."""
        ...


class EmbedderUnavailable(InputError):
    """The embedder's package is not installed; the message ends with the exact install command."""

    def __init__(self, embedder: str, missing: str, install_command: str) -> None:
        self.install_command = install_command
        super().__init__(f"embedder {embedder!r}", f"{missing} is not installed; install it with: {install_command}")


def default_cache_dir() -> Path:
    """LVM_WORKBENCH_CACHE, else $XDG_CACHE_HOME/lvm-workbench, else ~/.cache/lvm-workbench."""
    env = os.environ.get("LVM_WORKBENCH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lvm-workbench"


def describe(embedder: Embedder) -> dict[str, object]:
    """The manifest record of an embedder."""
    return {"name": embedder.name, "dim": int(embedder.dim), "weights_sha256": embedder.weights_sha256,
            "pooling": getattr(embedder, "pooling", ""), "normalized": True}


def file_sha256(path: str | os.PathLike[str], block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def check_weights(path: Path, expected: str) -> str:
    """The weights file's sha256, or an InputError if it is not the file this embedder was made for."""
    if not path.is_file():
        raise InputError(str(path), "weights file missing (reinstall the package)")
    got = file_sha256(path)
    if got != expected:
        raise InputError(str(path), f"sha256 {got} does not match the published weights {expected}")
    return got


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Vectors already computed for one embedder (name + weights hash), keyed by chunk-text sha256."""

    def __init__(self, root: str | os.PathLike[str], embedder: Embedder) -> None:
        self.dim = int(embedder.dim)
        self.dir = Path(root) / f"{embedder.name}-{embedder.weights_sha256[:16]}"
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = {"name": embedder.name, "dim": self.dim, "weights_sha256": embedder.weights_sha256}
        meta_path = self.dir / "meta.json"
        if meta_path.exists():
            try:
                old = json.loads(meta_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                raise InputError(str(meta_path), "not valid JSON (delete the cache directory)") from None
            if old != meta:
                raise InputError(str(meta_path), f"belongs to {old}, not to {meta} (delete the cache directory)")
        else:
            write_json(meta_path, meta)
        self._index: dict[str, tuple[int, int]] = {}
        self._shards: dict[int, np.ndarray] = {}
        numbers = [int(p.name.split("-")[1].split(".")[0]) for p in self.dir.glob("shard-*.npy")]
        self._next = max(numbers, default=0) + 1  # never reuse a number, even an orphan's
        for keys_path in sorted(self.dir.glob("shard-*.keys.npy")):
            shard = int(keys_path.name.split("-")[1].split(".")[0])
            vec_path = self.dir / f"shard-{shard:06d}.npy"
            try:
                keys = np.load(keys_path, allow_pickle=False)
                vecs = np.load(vec_path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError):
                continue  # a damaged shard is re-embedded, never trusted
            if keys.ndim != 1 or vecs.shape != (len(keys), self.dim):
                continue
            self._shards[shard] = vecs
            for row, k in enumerate(keys):
                self._index.setdefault(k.decode("ascii"), (shard, row))

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def get(self, keys: Sequence[str]) -> np.ndarray:
        """Vectors for `keys` (each must be present), (len(keys), dim) float32."""
        out = np.empty((len(keys), self.dim), np.float32)
        for i, k in enumerate(keys):
            shard, row = self._index[k]
            out[i] = self._shards[shard][row]
        return out

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Append one shard (vectors first, keys last: the keys file commits the shard)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(keys), self.dim):
            raise ValueError(f"expected vectors of shape ({len(keys)}, {self.dim}), got {vectors.shape}")
        if not len(keys):
            return
        shard = self._next
        self._next += 1
        vec_path = self.dir / f"shard-{shard:06d}.npy"
        with atomic_path(vec_path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, vectors)
        with atomic_path(self.dir / f"shard-{shard:06d}.keys.npy") as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.array([k.encode("ascii") for k in keys], dtype="S64"))
        self._shards[shard] = vectors
        for row, k in enumerate(keys):
            self._index.setdefault(k, (shard, row))


def embed_with_cache(
    embedder: Embedder,
    texts: Sequence[str],
    cache: EmbeddingCache | None,
    *,
    batch_size: int = 256,
    progress: "Iterable[None] | object | None" = None,
) -> np.ndarray:
    """Vectors for `texts`, embedding only texts the cache lacks, saving every batch as it finishes.

    `progress`, if given, has ``update(n)``: it is told about cached rows at once and about new
    rows batch by batch. An interrupted run keeps every finished batch.
    """
    keys = [text_sha256(t) for t in texts]
    out = np.empty((len(texts), int(embedder.dim)), np.float32)
    todo: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        if cache is not None and k in cache:
            continue
        todo.setdefault(k, []).append(i)
    if cache is not None:
        done = [i for i, k in enumerate(keys) if k not in todo]
        if done:
            out[done] = cache.get([keys[i] for i in done])
            if progress is not None:
                progress.update(len(done), cached=True)  # type: ignore[attr-defined]
    pending = list(todo)
    for start in range(0, len(pending), batch_size):
        batch_keys = pending[start:start + batch_size]
        batch_texts = [texts[todo[k][0]] for k in batch_keys]
        vecs = np.asarray(embedder.encode(batch_texts), dtype=np.float32)
        if vecs.shape != (len(batch_texts), int(embedder.dim)):
            raise RuntimeError(f"embedder {embedder.name} returned shape {vecs.shape} for {len(batch_texts)} texts")
        if cache is not None:
            cache.add(batch_keys, vecs)
        n_rows = 0
        for k, v in zip(batch_keys, vecs):
            out[todo[k]] = v
            n_rows += len(todo[k])
        if progress is not None:
            progress.update(n_rows)  # type: ignore[attr-defined]
    return out
