"""The 5CAT gate battery (A-E) as gate plugins, registered through `register_gates`.

Each gate reads predictions from the shared evaluation pass (lvm_core/evaluation/battery.py), measures
its metrics per split and judges them against thresholds declared as Params, so a plan may
override any of them (`[gates] thresholds = { "A.val.mean_plus1" = 0.5 }`). Defaults are the
original tool's. Offsets here count from the LAST CONTEXT chunk l (k = +1 is the true target);
legacy mode counts from the target, as the original did (docs/5cat.md).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from workbench.api import (MODEL, OFFSETS, ArticleBlock, Check, Param, SplitPredictions, SplitSamples,
                           Verdict, article_blocks, hookimpl, paired_intervals, rank_summaries, split_kind,
                           within_article_ranks_both as ranks_both)

NAN = float("nan")


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else NAN


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of unit rows (predictions and SplitSamples.unit_rows are unit already)."""
    return np.einsum("ij,ij->i", a, b)


def _split_params(metric_defaults: Mapping[str, tuple[float, float, str]]) -> tuple[Param, ...]:
    """val.<metric> and ood.<metric> Params from {metric: (val default, ood default, help)}."""
    out = []
    for metric, (val, ood, help_) in metric_defaults.items():
        out.append(Param(f"val.{metric}", "float", val, f"{help_} (VAL and every split not named ood)"))
        out.append(Param(f"ood.{metric}", "float", ood, f"{help_} (the OOD split)"))
    return tuple(out)


def _article_blocks(s: SplitSamples, idx: np.ndarray) -> list[ArticleBlock]:
    """lvm_core.evaluation.metrics.article_blocks of the samples idx, cached on the split so every
    predictor (model, baselines, oracle) reuses the normalised chunk vectors."""
    return s.memo(("article_blocks", idx.tobytes()), lambda: article_blocks(s.store, s.rows[idx]))


def within_article_ranks_both(s: SplitSamples, idx: np.ndarray, pred: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Gate B's ranks for both candidate sets (lvm_core.evaluation.metrics.within_article_ranks_both)."""
    return ranks_both(s.store, pred, s.rows[idx], s.context_len, blocks=_article_blocks(s, idx))


class _SplitThresholdGate:
    """A gate judged per split with `>=` thresholds from val.* / ood.* params."""

    key = ""
    title = ""
    judged: tuple[str, ...] = ()

    def __init__(self, **thresholds: Any) -> None:
        self.thresholds = dict(thresholds)

    def judge(self, metrics: Mapping[str, Mapping[str, float]]) -> Verdict:
        checks = [Check(split, m, ">=", float(self.thresholds[f"{split_kind(split)}.{m}"]), values.get(m, NAN))
                  for split, values in metrics.items() for m in self.judged]
        return Verdict(checks)


class OffsetSweep(_SplitThresholdGate):
    """A: mean cos(pred, chunk at offset k) for k = -3..+3; +1 must be the peak by a margin."""

    key = "A"
    title = "offset sweep"
    judged = ("mean_plus1", "margin_vs_best_offset")
    PARAMS = _split_params({"mean_plus1": (0.50, 0.48, "minimum mean cos at k = +1 (the true next chunk)"),
                            "margin_vs_best_offset": (0.12, 0.10, "minimum mean(+1) minus the best other offset")})

    def variants(self, context_len: int, horizon: int, legacy: bool) -> list[str]:
        return ["base"]

    def measure(self, preds: SplitPredictions) -> dict[str, float]:
        s = preds.samples
        idx = s.subset(self.key)
        pred = preds["base"][idx]
        # ours: anchor = last context row (target - 1), so k = +1 is the target; legacy: the target
        shift = 0 if s.legacy else -1
        means = {k: _mean(_cos(pred, s.unit_rows(k + shift)[idx])) for k in OFFSETS}
        others = [v for k, v in means.items() if k != 1]
        out = {f"k={k:+d}" if k else "k=0": v for k, v in means.items()}
        out["mean_plus1"] = means[1]
        out["margin_vs_best_offset"] = means[1] - max(others) if len(idx) else NAN
        out["best_k"] = float(max(means, key=lambda k: -np.inf if np.isnan(means[k]) else means[k]))
        out["samples"] = float(len(idx))
        return out


class Retrieval(_SplitThresholdGate):
    """B: rank of the target among its article's chunks (whole article, and without the context)."""

    key = "B"
    title = "within-article retrieval"
    RANKS = ("R@1", "R@5", "MRR")
    PARAMS = _split_params({"R@1": (0.60, 0.55, "minimum recall at 1 of the candidate set B.candidates picks"),
                            "R@5": (0.95, 0.92, "minimum recall at 5 of the candidate set B.candidates picks"),
                            "MRR": (0.80, 0.75, "minimum mean reciprocal rank of the candidate set B.candidates picks")}) + (
        Param("candidates", "str", "no_context",
              "candidate set the verdict uses: no_context (the article minus the L context chunks; its numbers "
              "are R@1_no_context, ...) or article (every chunk, the original's, R@1_article, ...; legacy mode "
              "always uses it); without_context is the old spelling of no_context",
              choices=("no_context", "article", "without_context")),)

    def variants(self, context_len: int, horizon: int, legacy: bool) -> list[str]:
        return ["base"]

    def chosen(self, legacy: bool) -> str:
        """The candidate set the verdict reads."""
        if legacy:
            return "article"
        return "article" if self.thresholds.get("candidates", "no_context") == "article" else "no_context"

    def measure(self, preds: SplitPredictions) -> dict[str, float]:
        s = preds.samples
        idx = s.subset(self.key)
        out = rank_summaries(within_article_ranks_both(s, idx, preds["base"][idx]))
        out["samples"] = float(len(idx))
        self.legacy = s.legacy  # judge reads it: legacy always judges the article set
        return out

    def judge(self, metrics: Mapping[str, Mapping[str, float]]) -> Verdict:
        checks = []
        for split, values in metrics.items():
            cset = self.chosen(getattr(self, "legacy", False))
            checks += [Check(split, f"{m}_{cset}", ">=", float(self.thresholds[f"{split_kind(split)}.{m}"]),
                             values.get(f"{m}_{cset}", NAN)) for m in self.RANKS]
        return Verdict(checks)


class Ablations:
    """C: how much cos(pred, target) drops when the context is shuffled, reversed, thinned,
    flattened to the last frame, or its last frame swapped for another article's chunk."""

    key = "C"
    title = "context ablations"
    PARAMS = (
        Param("shuffled", "float", -0.15, "maximum delta for a shuffled context (a non-identity permutation)"),
        Param("reversed", "float", -0.10, "maximum delta for the reversed context"),
        Param("loo_avg", "float", -0.08, "maximum mean delta of leave-one-out (frames 0..L-2, padded with the last)"),
        Param("repeat_last", "float", 0.05, "maximum delta when every frame is the last frame"),
        Param("cross_article", "float", 0.05, "maximum delta when the last frame comes from another article"),
    )
    TOLERANT = ("shuffled", "reversed", "loo_avg")  # the original allowed 1e-6 on these three

    def __init__(self, **thresholds: Any) -> None:
        self.thresholds = dict(thresholds)

    def variants(self, context_len: int, horizon: int, legacy: bool) -> list[str]:
        loo = range(context_len if legacy else context_len - 1)
        return ["base", "shuffled", "reversed", *[f"loo_{i}" for i in loo], "repeat_last", "cross_article"]

    def measure(self, preds: SplitPredictions) -> dict[str, float]:
        s = preds.samples
        idx = s.subset(self.key)
        target = s.unit_rows(0)[idx]
        base = _cos(preds["base"][idx], target)

        def delta(name: str) -> np.ndarray | None:
            p = preds[name]
            return None if p is None else _cos(p[idx], target) - base

        out: dict[str, float] = {"base_cos": _mean(base)}
        loo_names = [n for n in preds.variants if n.startswith("loo_")]
        loo = [delta(n) for n in sorted(loo_names, key=lambda n: int(n[4:]))]
        for name in ("shuffled", "reversed", "repeat_last", "cross_article"):
            d = delta(name)
            out[name] = NAN if d is None else _mean(d)
        for n, d in zip(sorted(loo_names, key=lambda n: int(n[4:])), loo):
            out[n] = _mean(d)
        out["loo_avg"] = _mean(np.mean(np.stack(loo), axis=0)) if loo else NAN
        out["samples"] = float(len(idx))
        return out

    def judge(self, metrics: Mapping[str, Mapping[str, float]]) -> Verdict:
        checks = [Check(split, m, "<=", float(self.thresholds[m]), values.get(m, NAN),
                        1e-6 if m in self.TOLERANT else 0.0)
                  for split, values in metrics.items() for m in ("shuffled", "reversed", "loo_avg",
                                                                 "repeat_last", "cross_article")]
        return Verdict(checks)


class Rollout(_SplitThresholdGate):
    """D: feed predictions back for H steps; step h is scored against the chunk h after l."""

    key = "D"
    title = "rollout"
    judged = ("avg_cos",)
    PARAMS = _split_params({"avg_cos": (0.45, 0.42, "minimum mean over steps 1..H of cos(step h, chunk l + h)")})

    def variants(self, context_len: int, horizon: int, legacy: bool) -> list[str]:
        return [f"rollout_{h}" for h in range(1, horizon + 1)]

    def measure(self, preds: SplitPredictions) -> dict[str, float]:
        s = preds.samples
        idx = s.subset(self.key)
        out: dict[str, float] = {}
        per_step = []
        for h in range(1, s.horizon + 1):
            truth = s.unit_rows(h if s.legacy else h - 1)[idx]  # legacy scored step h against t + h
            c = _cos(preds[f"rollout_{h}"][idx], truth)
            per_step.append(c)
            out[f"cos@h={h}"] = _mean(c)
        out["avg_cos"] = _mean(np.mean(np.stack(per_step), axis=0)) if len(idx) else NAN
        out["horizon"] = float(s.horizon)
        out["samples"] = float(len(idx))
        return out


class CoherenceBins:
    """E: cos(pred, target) by context coherence bin; VAL and OOD normal-bin means must agree."""

    key = "E"
    title = "coherence bins"
    PARAMS = (
        Param("max_normal_delta", "float", 0.05, "maximum |normal-bin mean (VAL) - normal-bin mean (OOD)|"),
        Param("low", "float", 0.45, "coherence below this is the low bin"),
        Param("high", "float", 0.55, "coherence above this is discarded by the original (reported as high)"),
    )

    def __init__(self, **thresholds: Any) -> None:
        self.thresholds = dict(thresholds)

    def variants(self, context_len: int, horizon: int, legacy: bool) -> list[str]:
        return ["base"]

    def measure(self, preds: SplitPredictions) -> dict[str, float]:
        s = preds.samples
        idx = s.subset(self.key)
        ctx = s.unit_context()[idx]
        coherence = np.mean(np.sum(ctx[:, :-1] * ctx[:, 1:], axis=-1), axis=1) if len(idx) else np.zeros(0)
        c = _cos(preds["base"][idx], s.unit_rows(0)[idx])
        low, high = float(self.thresholds["low"]), float(self.thresholds["high"])
        bins = {"low": coherence < low, "normal": (coherence >= low) & (coherence <= high), "high": coherence > high}
        out: dict[str, float] = {}
        for name, mask in bins.items():
            out[f"{name}_mean"] = _mean(c[mask])
            out[f"{name}_n"] = float(mask.sum())
            out[f"{name}_share"] = float(mask.mean()) if len(idx) else NAN
        out["coherence_mean"] = _mean(coherence)
        out["samples"] = float(len(idx))
        return out

    def judge(self, metrics: Mapping[str, Mapping[str, float]]) -> Verdict:
        if "val" not in metrics or "ood" not in metrics:
            return Verdict([], note="needs a val and an ood split")
        delta = abs(metrics["val"]["normal_mean"] - metrics["ood"]["normal_mean"])
        low_delta = abs(metrics["val"]["low_mean"] - metrics["ood"]["low_mean"])
        return Verdict([Check("val-ood", "normal_mean_delta", "<=", float(self.thresholds["max_normal_delta"]), delta)],
                       note=f"low-bin delta {low_delta:.4f} (reported, not judged)")


class BeatsBaselines:
    """vs_baselines: beats every baseline in cosine beyond the noise: on the same samples, the
    lower end of the paired bootstrap interval (whole articles resampled) of mean cos(pred,
    target) minus the baseline's is above `min_lower`, for every baseline, on every split.

    Relative, not absolute: it is judged beside A-E and not counted in their score. A
    predictor compared with itself has a difference of exactly 0, so copy-last can never pass.
    The baselines are every predictor of the battery except the model and the oracle."""

    key = "vs_baselines"
    title = "beats the baselines"
    paired = True
    NOT_BASELINES = (MODEL, "oracle")
    PARAMS = (
        Param("min_lower", "float", 0.0, "the lower end of each interval must be strictly above this"),
        Param("level", "float", 0.95, "confidence level of the paired bootstrap intervals"),
        Param("resamples", "int", 2000, "bootstrap resamples of the articles"),
        Param("seed", "int", 0, "seed of the resampling"),
    )

    def __init__(self, **thresholds: Any) -> None:
        self.thresholds = dict(thresholds)

    def variants(self, context_len: int, horizon: int, legacy: bool) -> list[str]:
        return ["base"]

    def per_sample(self, preds: SplitPredictions) -> np.ndarray:
        """cos(pred, target) per sample (unit rows: a zero prediction scores 0, NaN stays NaN)."""
        return _cos(preds["base"], preds.samples.unit_rows(0)).astype(np.float64)

    def compare(self, s: SplitSamples, scores: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
        """For each predictor: its mean cos, each baseline's, and the interval of the gain."""
        baselines = [p for p in scores if p not in self.NOT_BASELINES]
        articles = s.store.row_article[s.rows]
        out: dict[str, dict[str, float]] = {}
        for pname, mine in scores.items():
            diffs = np.stack([mine - scores[b] for b in baselines]) if baselines else np.zeros((0, len(mine)))
            ivs = paired_intervals(diffs, articles, resamples=int(self.thresholds["resamples"]),
                                   level=float(self.thresholds["level"]), seed=int(self.thresholds["seed"]))
            m: dict[str, float] = {"cos": _mean(mine)}
            for b, iv in zip(baselines, ivs):
                m[f"{b}/cos"] = _mean(scores[b])
                m[f"gain/{b}"], m[f"gain/{b}/lo"], m[f"gain/{b}/hi"] = iv.mean, iv.lo, iv.hi
            m["samples"] = float(len(mine))
            m["articles"] = float(len(np.unique(articles)))
            out[pname] = m
        return out

    def judge(self, metrics: Mapping[str, Mapping[str, float]]) -> Verdict:
        floor = float(self.thresholds["min_lower"])
        checks = [Check(split, k, ">", floor, v) for split, values in metrics.items()
                  for k, v in values.items() if k.startswith("gain/") and k.endswith("/lo")]
        return Verdict(checks, note=f"{float(self.thresholds['level']):.0%} paired bootstrap over articles")


GATES = (OffsetSweep, Retrieval, Ablations, Rollout, CoherenceBins, BeatsBaselines)


@hookimpl
def register_gates(register):
    for cls in GATES:
        register(cls.key, cls, description=f"5CAT {cls.key}: {(cls.__doc__ or '').split(':', 1)[-1].strip().splitlines()[0]}",
                 params=cls.PARAMS)
