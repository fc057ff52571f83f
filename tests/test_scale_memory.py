"""What the trainer reads from the store at scale: never every train window at once."""

from __future__ import annotations

import numpy as np

from lvm_core.data.store import write_store
from lvm_core.data.windows import Windows, make_windows
from lvm_core.models.fitted import MAX_FIT_WINDOWS, fit_baselines
from lvm_core.models.ridge_stream import CHUNK_WINDOWS
from lvm_core.training import validation as train_validation


def test_baseline_fit_gathers_only_its_seeded_subset_and_fits_the_same(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    lengths = [30] * 800  # 800 articles, 25 windows each: 20,000 < 20,000 + some
    lengths += [30] * 10
    store = write_store(tmp_path / "s", rng.normal(size=(sum(lengths), 4)), lengths, list(range(len(lengths))),
                        dtype="float32")
    w = make_windows(store, None, 5)
    assert len(w) > MAX_FIT_WINDOWS
    gathered: list[int] = []
    real_batch = Windows.batch

    def counting_batch(self, idx=None):
        out = real_batch(self, idx) if idx is not None else real_batch(self)
        gathered.append(len(out[0]))
        return out

    monkeypatch.setattr(Windows, "batch", counting_batch)
    fitted = train_validation.fit_eval_baselines(w, seed=3)
    assert 0 < max(gathered) <= CHUNK_WINDOWS  # chunks of the seeded subset, never len(w) at once
    monkeypatch.setattr(Windows, "batch", real_batch)
    ctx, tgt = w.batch()
    direct = fit_baselines(ctx, tgt, w.article_pos, seed=3)  # the full gather, subsampled inside
    assert fitted.record == direct.record and fitted.record["of_windows"] == len(w)
    probe = ctx[:50]
    for name in ("ridge", "frame_weights"):
        np.testing.assert_array_equal(fitted.predictors[name](probe), direct.predictors[name](probe))
