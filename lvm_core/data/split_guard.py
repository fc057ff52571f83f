"""Which articles a checkpoint was trained on, so evaluation never scores a model on them unasked.

Why: `5cat` once scored the quickstart checkpoint on its whole store (its training articles
included) without a word, and its numbers looked better than on the val articles. A checkpoint
knows its split when it sits in a run folder beside `split.json`, or when its metadata records
the split's sha256 and the data fingerprint of its store. `resolve_checkpoint_split` answers for
one checkpoint (the CLI, the in-training gates and the TUI Gates screen call it);
`training_overlap` says how many evaluated articles the training part holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import InputError
from .store import ArticleStore
from .windows import Split

TRAIN_PART = "train"


@dataclass(frozen=True)
class CheckpointSplit:
    """What a checkpoint says about its training data.

    split: the run's Split when its split.json was found and matches the recorded sha256;
    path: that split.json; sha256: the split hash the checkpoint records ("" when none);
    data: the store fingerprint it records (lvm_core.data.store.ArticleStore.fingerprint), or {}.
    """

    split: Split | None
    path: Path | None
    sha256: str
    data: Mapping[str, Any]

    @property
    def known(self) -> bool:
        """True when the checkpoint records a split (even if its split.json is not found)."""
        return bool(self.sha256) or self.split is not None

    def trained_on(self, store: ArticleStore) -> bool:
        """Whether `store` is (by its article ids and offsets) the store this checkpoint trained on."""
        ids = self.data.get("ids_sha256")
        return bool(ids) and ids == store.fingerprint()["ids_sha256"]

    def describe(self) -> str:
        if self.split is not None:
            return f"{self.path} (sha256 {self.split.sha256()[:12]})"
        if self.sha256:
            return f"sha256 {self.sha256[:12]} recorded, split.json not found"
        return "unknown"


def resolve_checkpoint_split(checkpoint: str | Path, meta: Mapping[str, Any]) -> CheckpointSplit:
    """The split of the checkpoint at `checkpoint` with metadata `meta`: split.json of its run
    folder (found up to three folders above the file: checkpoints/ and generation folders sit
    between) when its hash matches the one recorded, else only the recorded hash."""
    sha = str(meta.get("split_sha256") or "")
    data = meta.get("data") if isinstance(meta.get("data"), Mapping) else {}
    here = Path(checkpoint).resolve().parent
    for folder in (here, *list(here.parents)[:3]):
        candidate = folder / "split.json"
        if candidate.is_file():
            split = Split.load(candidate)
            if not sha or split.sha256() == sha:
                return CheckpointSplit(split, candidate, sha or split.sha256(), data)
            break
    return CheckpointSplit(None, None, sha, data)


def training_overlap(known: CheckpointSplit, store: ArticleStore, positions: np.ndarray | None) -> int | None:
    """How many of the evaluated articles (`positions` in `store`, None = all) the checkpoint
    trained on: 0 when `store` is not its training store; None when it cannot be told (the
    store is the training store but the split itself is unknown)."""
    if not known.trained_on(store):
        return 0
    if known.split is None:
        return None
    if TRAIN_PART not in known.split.parts:
        return 0
    evaluated = store.article_ids[np.arange(store.n_articles) if positions is None else positions]
    return int(np.isin(evaluated, known.split.parts[TRAIN_PART]).sum())


def refuse_overlap(flag: str, value: str, known: CheckpointSplit, overlap: int | None, n_articles: int) -> InputError:
    """The one-line refusal for an evaluation set that holds training articles."""
    if overlap is None:
        return InputError(value, f"the checkpoint was trained on part of this store (split {known.describe()}); "
                          f"pass --split-file with its split.json, or --allow-train-overlap", flag)
    return InputError(value, f"{overlap} of its {n_articles} evaluated articles are in the checkpoint's training "
                      f"part (split {known.describe()}); evaluate its val part, or pass --allow-train-overlap", flag)
