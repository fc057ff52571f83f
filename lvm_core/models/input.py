"""What a model is fed, in one place: trainer validation and the 5CAT battery read the same
tensors and run the model the same way, so one checkpoint on one sample set gets one cos and
one set of ranks whichever screen shows them (issue 9).

The input is the stored context vectors as float32, exactly as training feeds them: never
renormalised. (5CAT once fed L2-renormalised contexts, about 1e-5 away from the stored float16
rows, enough to flip near-ties in the ranks; `--legacy` still does, as the original did.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.store import ArticleStore


def model_contexts(store: ArticleStore, target_rows: np.ndarray, context_len: int) -> np.ndarray:
    """Contexts (N, L, D) float32 of the windows whose targets are `target_rows`: rows t-L..t-1,
    gathered in one indexing call."""
    rows = np.asarray(target_rows, dtype=np.int64)
    return store.gather(rows[:, None] + np.arange(-context_len, 0, dtype=np.int64)[None, :])


def forward(model: Any, contexts: np.ndarray, device: Any, batch_size: int) -> np.ndarray:
    """Predictions (N, D) float32 of `model` in eval mode without autograd, `batch_size` rows at a
    time; the model's train/eval mode is restored afterwards."""
    import torch

    was_training = model.training
    model.eval()
    out = np.empty((contexts.shape[0], contexts.shape[2]), dtype=np.float32)
    try:
        with torch.inference_mode():
            for start in range(0, contexts.shape[0], batch_size):
                chunk = np.ascontiguousarray(contexts[start:start + batch_size], dtype=np.float32)
                out[start:start + len(chunk)] = model(torch.from_numpy(chunk).to(device)).float().cpu().numpy()
    finally:
        model.train(was_training)
    return out
