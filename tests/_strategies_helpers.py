"""Tiny hand-checkable batches and models for the strategy tests (2-D unit vectors at known angles)."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from lvm_core.training.batch import Batch


def unit(angle: float) -> list[float]:
    """The 2-D unit vector at `angle` radians."""
    return [math.cos(angle), math.sin(angle)]


def make_batch(vectors: Sequence[Sequence[float]], lengths: Sequence[int], target_rows: Sequence[int],
               context_len: int, *, with_store: bool = True) -> Batch:
    """A Batch over an in-memory store: rows `vectors`, articles of `lengths` (contiguous rows).

    gather(rows) returns the rows' vectors; row_article(rows) their article position, -1 outside
    the store, the contract of lvm_core.training.batch.Batch.
    """
    V = torch.tensor(vectors, dtype=torch.float64)
    offsets = torch.tensor([0, *torch.cumsum(torch.tensor(lengths), 0).tolist()])
    rows = torch.tensor(target_rows, dtype=torch.int64)
    ctx_rows = rows[:, None] + torch.arange(-context_len, 0)[None, :]

    def row_article(r: torch.Tensor) -> torch.Tensor:
        art = torch.bucketize(r, offsets[1:], right=True)
        return torch.where((r >= 0) & (r < V.shape[0]), art, torch.full_like(r, -1))

    def gather(r: torch.Tensor) -> torch.Tensor:
        return V[r]

    return Batch(contexts=V[ctx_rows], targets=V[rows], article=row_article(rows), target_rows=rows,
                 gather=gather if with_store else None, row_article=row_article if with_store else None)


class Rotate(nn.Module):
    """2-D model: the last context chunk rotated by a learnable angle theta (unit output).

    Rolled out h steps it predicts angle(c_last) + h * theta, so every step is hand-computable.
    """

    def __init__(self, theta: float) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(theta, dtype=torch.float64))

    def forward(self, ctx: torch.Tensor) -> torch.Tensor:
        last = ctx[:, -1, :]
        phi = torch.atan2(last[:, 1], last[:, 0]) + self.theta
        return torch.stack([torch.cos(phi), torch.sin(phi)], dim=-1)


class Fixed(nn.Module):
    """Returns given (B, D) predictions as a parameter, whatever the context."""

    def __init__(self, preds: Sequence[Sequence[float]]) -> None:
        super().__init__()
        self.preds = nn.Parameter(torch.tensor(preds, dtype=torch.float64))

    def forward(self, ctx: torch.Tensor) -> torch.Tensor:
        return self.preds


class FixedSamples(nn.Module):
    """A 'sampling model' whose samples are a given (B, m, D) parameter."""

    def __init__(self, samples: Sequence) -> None:
        super().__init__()
        self.samples = nn.Parameter(torch.tensor(samples, dtype=torch.float64))

    def forward(self, ctx: torch.Tensor) -> torch.Tensor:
        return self.samples.mean(dim=1)

    def sample(self, ctx: torch.Tensor, m: int) -> torch.Tensor:
        assert m == self.samples.shape[1]
        return self.samples


def store_batch(store, target_rows, context_len: int) -> Batch:
    """A Batch gathered from an ArticleStore (float64, on the CPU), as the trainer builds one."""
    import numpy as np

    rows = torch.as_tensor(np.asarray(target_rows, dtype=np.int64))
    row_art = torch.from_numpy(np.asarray(store.row_article))
    n = row_art.shape[0]

    def gather(r: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(store.gather(r.numpy())).double()

    def row_article(r: torch.Tensor) -> torch.Tensor:
        inside = (r >= 0) & (r < n)
        return torch.where(inside, row_art[r.clamp(0, n - 1)], torch.full_like(r, -1))

    ctx_rows = rows[:, None] + torch.arange(-context_len, 0)[None, :]
    return Batch(contexts=gather(ctx_rows), targets=gather(rows), article=row_article(rows), target_rows=rows,
                 gather=gather, row_article=row_article)


class NextChunkOracle(nn.Module):
    """Predicts the store chunk that follows the one equal to the last context frame.

    Rolled out, it walks the article row by row, so a correctly indexed rollout scores it 1.0 at
    every step inside the article. Use it on windows whose chunks have no duplicate in the store.
    """

    def __init__(self, vectors: torch.Tensor) -> None:
        super().__init__()
        self.vectors = torch.nn.functional.normalize(vectors, dim=1)

    def forward(self, ctx: torch.Tensor) -> torch.Tensor:
        last = torch.nn.functional.normalize(ctx[:, -1, :], dim=1)
        row = (last @ self.vectors.T).argmax(dim=1)
        return self.vectors[(row + 1).clamp(max=self.vectors.shape[0] - 1)]
