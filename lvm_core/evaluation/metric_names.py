"""One name per number: the names of the margins and rank metrics, and the map from old names.

Two margins and two candidate sets once shared a name, so "margin -0.126" (trainer) and
"margin -0.156" (gate A) stood side by side meaning different things (issue 9). Now:

| name                    | what it is                                                            |
|-------------------------|-----------------------------------------------------------------------|
| margin_vs_last          | cos(pred, target) - cos(pred, last context chunk), per sample, mean  |
| margin_vs_best_offset   | gate A: mean cos at k = +1 minus the best mean cos at another offset |
| R@k_article, MRR_article | rank of the target among every chunk of its article (context too)   |
| R@k_no_context, MRR_no_context | the same with the L context chunks before the target removed  |

`chance_<metric>` and `candidates_<set>` follow the same suffixes. The trainer logs both
candidate sets; gate B reports both and judges the one `B.candidates` picks.

Run folders written before the rename still load: every reader of metrics.jsonl passes its
records through `upgrade_metrics` (this module is the ONE place that maps old to new), and a
plan naming an old metric gets it through `current_name` with a note (workbench/plan/load.py).
"""

from __future__ import annotations

from typing import Any, Mapping

#: the trainer's per-split metric names before the rename -> now (keys "<split>/<m>", "<split>/<baseline>/<m>")
TRAINER_RENAMED = {
    "margin": "margin_vs_last",
    "R@1": "R@1_article", "R@5": "R@5_article", "MRR": "MRR_article",
    "chance_R@1": "chance_R@1_article", "chance_R@5": "chance_R@5_article", "chance_MRR": "chance_MRR_article",
    "candidates": "candidates_article",
}
#: gate metric names before the rename -> now (keys "gates/<gate>/<split>[/<predictor>]/<m>")
GATE_RENAMED = {
    "A": {"margin": "margin_vs_best_offset"},
    # B's unsuffixed numbers were the verdict's set, the context removed unless B.candidates said otherwise
    "B": {**{m: f"{m}_no_context" for m in ("R@1", "R@5", "MRR", "chance_R@1", "chance_R@5", "chance_MRR")},
          "candidates": "candidates_no_context",
          **{f"without_context/{m}": f"{m}_no_context" for m in ("R@1", "R@5", "MRR", "chance_R@1", "chance_R@5",
                                                                  "chance_MRR", "candidates")},
          **{f"article/{m}": f"{m}_article" for m in ("R@1", "R@5", "MRR", "chance_R@1", "chance_R@5",
                                                      "chance_MRR", "candidates")}},
}
#: top-level key families that are not eval splits (their last part may be "margin": a loss stat)
NOT_SPLITS = ("loss", "train", "w", "gates", "plugin", "lr")
RANK_SETS = ("article", "no_context")


def rank_metric_names(candidate_set: str) -> tuple[str, ...]:
    """The rank numbers of one candidate set, as logged: R@1_<set>, ..., candidates_<set>."""
    return tuple(f"{m}_{candidate_set}" for m in ("R@1", "R@5", "MRR", "chance_R@1", "chance_R@5", "chance_MRR",
                                                  "candidates"))


def current_name(key: str) -> str:
    """The name a metric has now, given a name from before the rename (other names unchanged).

    'val/margin' -> 'val/margin_vs_last', 'ood/copy_last/R@5' -> 'ood/copy_last/R@5_article',
    'gates/A/val/margin' -> 'gates/A/val/margin_vs_best_offset',
    'gates/B/val/R@5' -> 'gates/B/val/R@5_no_context'."""
    parts = key.split("/")
    if len(parts) < 2:
        return key
    if parts[0] == "gates":
        renamed = GATE_RENAMED.get(parts[1] if len(parts) > 1 else "", {})
        for old, new in sorted(renamed.items(), key=lambda kv: -kv[0].count("/")):  # article/R@1 before R@1
            n = old.count("/") + 1
            if len(parts) >= 3 + n and "/".join(parts[-n:]) == old:
                return "/".join([*parts[:-n], new])
        return key
    if parts[0] in NOT_SPLITS or len(parts) > 3:
        return key
    new = TRAINER_RENAMED.get(parts[-1])
    return key if new is None else "/".join([*parts[:-1], new])


def current_threshold(key: str) -> str:
    """A gate threshold key ('A.val.margin') under its current name ('A.val.margin_vs_best_offset');
    plans written before the rename keep working."""
    gate, _, rest = key.partition(".")
    kind, _, metric = rest.partition(".")
    new = GATE_RENAMED.get(gate, {}).get(metric) if gate == "A" else None
    return f"{gate}.{kind}.{new}" if new else key


def upgrade_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """`metrics` with every old name replaced by its current one; a current name already
    present wins over an old one mapped onto it, and an explicit old name over an alias (an old
    record held B's "without_context/R@5" and its alias "R@5" for the verdict's set)."""
    out = {k: v for k, v in metrics.items() if current_name(k) == k}
    for k, v in sorted(metrics.items(), key=lambda kv: -kv[0].count("/")):
        new = current_name(k)
        if new != k:
            out.setdefault(new, v)
    return out


def upgrade_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A metrics.jsonl / events.jsonl record with its metric names brought up to date: the
    "metrics" of EvalDone/StepLogged/EpochEnded lines, the "best" of RunEnded, a checkpoint's
    "metric"."""
    out = dict(record)
    if isinstance(out.get("metrics"), Mapping):
        out["metrics"] = upgrade_metrics(out["metrics"])
    if isinstance(out.get("best"), Mapping) and isinstance(out["best"].get("metric"), str):
        out["best"] = {**out["best"], "metric": current_name(out["best"]["metric"])}
    if isinstance(out.get("metric"), str):
        out["metric"] = current_name(out["metric"])
    return out
