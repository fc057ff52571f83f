"""How far can a predictor get that only re-weights the context frames? The cos-vs-margin
front of p = normalize(sum_i w_i c_i), five weights fitted on the train split by maximising
mean cos(p, target) + mu * mean margin, scored on val and on any other stores. Such a
predictor has no domain direction of its own, so it is a fair yardstick on OOD data too.

    python benchmarks/frame_weight_frontier.py STORE SPLIT.json [OOD_STORE ...]

SPLIT.json is a run's split.json (the same articles the run trained and validated on).
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from lvm_core.data.store import ArticleStore
from lvm_core.data.windows import Split, make_windows


def windows(store: ArticleStore, positions: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor]:
    ctx, tgt = make_windows(store, positions, 5).batch()
    return torch.from_numpy(ctx), torch.from_numpy(tgt)


def score(w: torch.Tensor, ctx: torch.Tensor, tgt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean cos(p, target), mean margin cos(p, target) - cos(p, c_last)) of p = normalize(w . ctx)."""
    p = torch.nn.functional.normalize(torch.einsum("l,bld->bd", w, ctx), dim=-1)
    cos = (p * tgt).sum(1)
    return cos.mean(), (cos - (p * ctx[:, -1]).sum(1)).mean()


def main() -> int:
    torch.set_num_threads(1)
    store = ArticleStore.open(sys.argv[1])
    split = Split.load(sys.argv[2])
    train = windows(store, split.positions(store, "train"))
    sets = [("val", windows(store, split.positions(store, "val")))]
    sets += [(p, windows(ArticleStore.open(p), None)) for p in sys.argv[3:]]
    print("columns: " + " | ".join(name for name, _ in sets))
    for name, (ctx, tgt) in sets:
        cl, cm = score(torch.eye(5)[4], ctx, tgt), score(torch.full((5,), 0.2), ctx, tgt)
        print(f"  {name}: copy-last cos {cl[0]:.3f} mg {cl[1]:+.3f}; context-mean cos {cm[0]:.3f} mg {cm[1]:+.3f}")
    for mu in (0.0, 0.25, 0.5, 0.75, 1.0, 1.5):
        w = torch.full((5,), 0.2, requires_grad=True)
        opt = torch.optim.Adam([w], lr=0.02)
        for _ in range(300):
            cos, mg = score(w, *train)
            opt.zero_grad()
            (-(cos + mu * mg)).backward()
            opt.step()
        w = (w / w.sum()).detach()
        cells = "  ".join(f"cos {c:.3f} mg {m:+.3f}" for c, m in (score(w, *s) for _, s in sets))
        print(f"mu {mu:4.2f} w {np.array2string(w.numpy(), precision=3)}  {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
