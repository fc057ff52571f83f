"""Finding article stores to offer in the dataset picker, and describing one (no Textual here).

Offered: the bundled stores (examples/data/ of the source tree), stores under ./data and ./runs'
sibling folders of the current directory, and the stores opened recently (kept in a small JSON
file under $LVM_WORKBENCH_STATE_DIR, default ~/.local/state/lvm-workbench).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lvm_core.atomic import write_json
from lvm_core.data.store import MANIFEST, ArticleStore
from lvm_core.errors import InputError

BUNDLED = Path(__file__).resolve().parents[2] / "examples" / "data"
RECENT_MAX = 8


def state_dir() -> Path:
    env = os.environ.get("LVM_WORKBENCH_STATE_DIR")
    return Path(env) if env else Path.home() / ".local" / "state" / "lvm-workbench"


def _stores_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p.resolve() for p in folder.iterdir() if (p / MANIFEST).is_file())


def recent_stores() -> list[Path]:
    path = state_dir() / "recent.json"
    try:
        items = json.loads(path.read_text(encoding="utf-8")).get("stores", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [Path(p) for p in items if isinstance(p, str) and (Path(p) / MANIFEST).is_file()]


def remember_store(path: Path) -> None:
    """Put `path` first in the recent list (best effort: a read-only home is not an error)."""
    items = [str(path.resolve())] + [str(p) for p in recent_stores() if p.resolve() != path.resolve()]
    try:
        write_json(state_dir() / "recent.json", {"stores": items[:RECENT_MAX]})
    except OSError:
        pass


def _identity(path: Path) -> tuple[str, bytes]:
    """What makes two store folders the same store: the folder name and the manifest's bytes
    (a second checkout of the bundled data is not a second choice)."""
    try:
        return path.name, (path / MANIFEST).read_bytes()
    except OSError:
        return path.name, str(path.resolve()).encode()


def known_stores(cwd: Path | None = None) -> list[Path]:
    """Bundled, local and recent stores, each once (by path and by content), in that order."""
    cwd = cwd or Path.cwd()
    seen: dict[Path, None] = {}
    ids: set[tuple[str, bytes]] = set()
    for p in [*_stores_in(BUNDLED), *_stores_in(cwd / "data"), *_stores_in(cwd / "examples" / "data"), *recent_stores()]:
        key = _identity(p)
        if p.resolve() in seen or key in ids:
            continue
        ids.add(key)
        seen[p.resolve()] = None
    return list(seen)


def describe_store(path: Path) -> tuple[ArticleStore, str]:
    """Open a store and say what it holds in a few lines (InputError if it is not one)."""
    if path.suffix == ".npz":
        raise InputError(str(path), "an original NPZ: import it first with `lvm-workbench data import` (it becomes a store directory)")
    store = ArticleStore.open(path)
    m = store.manifest
    emb = m.embedder.get("name", "?")
    corpus = m.corpus.get("source") or m.corpus.get("package") or "?"
    version = m.corpus.get("version")
    lines = [
        f"embedder {emb}   dim {store.dim}   {m.dtype}",
        f"{store.n_articles} articles   {store.n_chunks} chunks   "
        f"{store.n_chunks / max(store.n_articles, 1):.1f} chunks/article",
        f"corpus {corpus}{' ' + str(version) if version else ''}   created {m.created or '?'}",
    ]
    return store, "\n".join(lines)
