"""Helpers shared by the builder's tests: a counting fake embedder and one cached MiniLM."""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np


class CountingEmbedder:
    """A deterministic embedder: each text's vector comes from its sha256. Counts encoded texts.

    `fail_after` makes `encode` raise once that many texts were encoded (an interrupted build).
    """

    name = "counting"
    dim = 8
    weights_sha256 = "0" * 64
    pooling = "sha256 of the text"

    def __init__(self, fail_after: int | None = None) -> None:
        self.encoded: list[str] = []
        self.fail_after = fail_after

    def encode(self, texts):
        if self.fail_after is not None and len(self.encoded) + len(texts) > self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.encoded.extend(texts)
        return np.stack([vector_of(t) for t in texts])


def vector_of(text: str, dim: int = 8) -> np.ndarray:
    raw = np.frombuffer(hashlib.sha256(text.encode()).digest()[:dim], dtype=np.uint8).astype(np.float32) - 127.5
    return raw / np.linalg.norm(raw)


@lru_cache(maxsize=1)
def minilm():
    """One MiniLM per test session (loading takes seconds)."""
    import torch

    torch.set_num_threads(2)
    from lvm_plugins.embedders import MiniLMEmbedder

    return MiniLMEmbedder()
