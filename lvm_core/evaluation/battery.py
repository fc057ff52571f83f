"""The shared evaluation pass behind the 5CAT battery: sample once, predict each input variant
once in large batches, let every gate and baseline read the same predictions.

Why: the original 5CAT predicted one sample at a time and recomputed the base prediction five
times, so it was cut from 5000 to 1000 samples; each of its gates also picked its own subset.
Here a split's samples are drawn once (seeded, spread across articles), every input variant
(base, shuffled, reversed, leave-one-out i, repeat-last, cross-article swap, rollout step h) is
built once from store rows and predicted in batches, and the gates only index into the results.

Vocabulary (rows are store rows; t = a sample's target row, l = t - 1 its last context row):

- a ``Predictor`` maps contexts (N, L, D) float32 to predictions (N, D); see `torch_predictor`;
- the baselines ``copy_last`` and ``context_mean`` are predictors too; the ``oracle`` returns
  the true next chunk of whatever it is asked (t for base and ablations, l + h at rollout
  step h), so it shows what a perfect model would score on these very samples;
- a ``Gate`` (plugins/gates.py registers A-E) names the variants it reads, measures metrics
  per split and judges them against its thresholds.

Entry point::

    gates = resolve_gates(lambda name: host.get("gate", name), thresholds={"A.val.mean_plus1": 0.5})
    result = run_battery(torch_predictor(model), {"val": (store, val_rows), "ood": (ood, ood_rows)}, gates)
    result.passed, result.score, result.to_json()

`legacy=True` reproduces the original tool's definitions (docs/5cat.md lists every difference).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterable, Mapping, Protocol, Sequence

import numpy as np

from ..data.store import ArticleStore, l2_normalize
from ..errors import InputError, InputErrors
from .metric_names import current_threshold
from .metrics import unit_predictions
from ..models import baselines as baseline_fns
from ..models.input import forward, model_contexts
from ..params import resolve_params

Predictor = Callable[[np.ndarray], np.ndarray]

SCHEMA = "lvm-workbench/gates"
SCHEMA_VERSION = 1
#: gates a battery runs unless told otherwise: A-E (the score) and the relative verdict
DEFAULT_GATES = ("A", "B", "C", "D", "E", "vs_baselines")
BASELINES = ("copy_last", "context_mean", "oracle")

#: the gates the default battery scores (DEFAULT_GATES less the relative verdict vs_baselines)
DEFAULT_SCORED = ("A", "B", "C", "D", "E")


def score_text(score: Any, max_score: Any, scored: Sequence[str]) -> str:
    """The score named by what it counts: "A-E 3/5" for the default battery, "gates 0/2 (A, CM)"
    for gates chosen in a plan or with `5cat --gate`, so a score never claims gates it did not run."""
    if tuple(scored) == DEFAULT_SCORED:
        return f"A-E {score}/{max_score}"
    if not scored:
        return "no scored gates"
    return f"gates {score}/{max_score} ({', '.join(scored)})"


MODEL = "model"
#: the metrics the original 5CAT printed, per gate (our names); legacy gates.json holds only these
LEGACY_KEYS = {
    "A": ("k=-3", "k=-2", "k=-1", "k=0", "k=+1", "k=+2", "k=+3", "margin_vs_best_offset", "samples"),
    "B": ("R@1_article", "R@5_article", "MRR_article", "samples"),
    "C": ("shuffled", "reversed", "loo_avg", "repeat_last", "cross_article", "samples"),
    "D": ("avg_cos", "samples"),
    "E": ("low_mean", "normal_mean", "low_n", "normal_n"),
}
#: offsets of gate A; ours count from the last context row, legacy from the target row
OFFSETS = (-3, -2, -1, 0, 1, 2, 3)


# ---- predictors ----------------------------------------------------------------------------

def torch_predictor(model: Any, device: str | Any = "cpu", batch_size: int = 2048) -> Predictor:
    """A Predictor running `model` in eval mode under inference_mode, `batch_size` rows at a time
    (lvm_core.models.input.forward, shared with trainer validation)."""
    import torch

    dev = torch.device(device)
    model.to(dev)
    model.eval()

    def predict(contexts: np.ndarray) -> np.ndarray:
        return forward(model, contexts, dev, batch_size)  # as trainer validation runs it

    predict.model = model  # type: ignore[attr-defined]
    return predict


#: the baselines the battery runs by name (one definition: lvm_core/models/baselines.py)
BASELINE_PREDICTORS: dict[str, Predictor] = {b: baseline_fns.BASELINES[b] for b in ("copy_last", "context_mean")}


# ---- samples -------------------------------------------------------------------------------

@dataclass
class SplitSamples:
    """The samples of one split: target rows plus, in legacy mode, each gate's own subset.

    `subsets[gate]` are indices into `rows`; a gate missing from it uses every sample (always,
    outside legacy mode). `perms` (S, L) and `cross_rows` (S,) fix the shuffled and
    cross-article inputs once, so every predictor sees the same ablated contexts.
    """

    name: str
    store: ArticleStore
    rows: np.ndarray
    context_len: int
    horizon: int
    legacy: bool
    subsets: dict[str, np.ndarray] = field(default_factory=dict)
    perms: np.ndarray | None = None
    cross_rows: np.ndarray | None = None
    _cache: dict[Any, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(len(self.rows))

    def subset(self, gate: str) -> np.ndarray:
        return self.subsets.get(gate, np.arange(len(self.rows)))

    def context_rows(self) -> np.ndarray:
        return self.rows[:, None] + np.arange(-self.context_len, 0, dtype=np.int64)[None, :]

    def article_end(self) -> np.ndarray:
        """First row after each sample's article (rows below it stay in the article)."""
        return self.store.offsets[self.store.row_article[self.rows] + 1]

    def unit_rows(self, offset: int) -> np.ndarray:
        """Unit vectors of the chunks `offset` rows after each target (S, D), gathered once and
        shared by every predictor and gate; past the article's end it repeats its last chunk
        (only legacy samples outside a gate's subset reach there)."""
        if offset not in self._cache:
            rows = np.minimum(self.rows + offset, self.article_end() - 1)
            self._cache[offset] = l2_normalize(self.store.gather(rows))
        return self._cache[offset]

    def memo(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """`compute()` once per split and `key`, then shared by every predictor the battery runs
        (model, baselines, oracle): for what a gate derives from the samples alone."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def unit_context(self) -> np.ndarray:
        """The contexts (S, L, D) with unit rows, gathered once (for measuring, e.g. coherence)."""
        if "context" not in self._cache:
            self._cache["context"] = l2_normalize(self.store.gather(self.context_rows()))
        return self._cache["context"]

    def model_context(self) -> np.ndarray:
        """The contexts (S, L, D) the model is fed: the stored vectors exactly as trainer
        validation feeds them (lvm_core.models.input.model_contexts); in legacy mode the unit
        rows, as the original L2-normalised its inputs."""
        if self.legacy:
            return self.unit_context()
        if "model_context" not in self._cache:
            self._cache["model_context"] = model_contexts(self.store, self.rows, self.context_len)
        return self._cache["model_context"]


def _eligible(store: ArticleStore, rows: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """rows + lo and rows + hi both inside the row's own article."""
    art = store.row_article[rows]
    return (rows + lo >= store.offsets[art]) & (rows + hi < store.offsets[art + 1])


def spread_sample(store: ArticleStore, rows: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Up to `n` of `rows`, seeded, spread across articles: every article gives one sample
    before any gives two (within an article the pick is random). Returned sorted."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) <= n:
        return np.sort(rows)
    rng = np.random.default_rng(seed)
    art = store.row_article[rows]
    order = np.lexsort((rng.random(len(rows)), art))  # by article, random inside
    sorted_art = art[order]
    first = np.r_[0, np.nonzero(np.diff(sorted_art))[0] + 1]
    starts = np.repeat(first, np.diff(np.r_[first, len(order)]))
    rank = np.empty(len(rows), dtype=np.int64)
    rank[order] = np.arange(len(order)) - starts  # position of each row inside its article
    art_key = rng.random(store.n_articles)[art]
    pick = np.lexsort((art_key, rank))[:n]
    return np.sort(rows[pick])


def draw_samples(name: str, store: ArticleStore, target_rows: np.ndarray, *, samples: int, horizon: int,
                 context_len: int, seed: int, legacy: bool) -> SplitSamples:
    """The split's sample set (see SplitSamples); raises InputError when nothing qualifies."""
    rows = np.asarray(target_rows, dtype=np.int64)
    if rows.ndim != 1:
        raise InputError(str(store.path), f"expected a 1-D array of target rows, got shape {rows.shape}")
    if len(rows) and (rows.min() < 0 or rows.max() >= store.n_chunks):
        raise InputError(str(store.path), f"target rows must lie in 0..{store.n_chunks - 1}")
    rows = rows[_eligible(store, rows, -context_len, 0)]  # a full context inside the article
    if legacy:
        return _legacy_samples(name, store, rows, samples=samples, horizon=horizon, context_len=context_len)
    # ours: every gate uses the same samples, so keep those with room for A (l - 3 .. l + 3)
    # and for D (l + 1 .. l + H)
    ok = _eligible(store, rows, -4, max(2, horizon - 1))
    if not np.any(ok):
        raise InputError(str(store.path), f"split {name!r}: no window has {context_len} context chunks, 3 before "
                         f"and {max(3, horizon)} after its last context chunk inside one article")
    chosen = spread_sample(store, rows[ok], samples, seed)
    out = SplitSamples(name, store, chosen, context_len, horizon, legacy=False)
    rng = np.random.default_rng([seed, 1])
    out.perms = _non_identity_perms(len(chosen), context_len, rng)
    out.cross_rows = _cross_article_rows(store, chosen, rng)
    return out


def _legacy_samples(name: str, store: ArticleStore, rows: np.ndarray, *, samples: int, horizon: int,
                    context_len: int) -> SplitSamples:
    """The original's selection: the first N windows in file order, per gate, each with its own
    skip rule (A needs t-3..t+3, B an article of >= 6 chunks, D t+1..t+H); the union is predicted.
    `rows` keep the order given (file order for a sequence NPZ)."""
    lengths = store.lengths[store.row_article[rows]]
    rules = {
        "A": _eligible(store, rows, -3, 3),
        "B": lengths >= 6,
        "C": np.ones(len(rows), dtype=bool),
        "D": _eligible(store, rows, 1, horizon),
        "E": np.ones(len(rows), dtype=bool),
    }
    firsts = {g: np.nonzero(ok)[0][:samples] for g, ok in rules.items()}
    union = np.unique(np.concatenate(list(firsts.values())))
    if len(union) == 0:
        raise InputError(str(store.path), f"split {name!r}: no window with {context_len} context chunks")
    where = {int(i): k for k, i in enumerate(union)}
    subsets = {g: np.array([where[int(i)] for i in idx], dtype=np.int64) for g, idx in firsts.items()}
    out = SplitSamples(name, store, rows[union], context_len, horizon, legacy=True, subsets=subsets)
    # shuffled: random.Random(17) shuffles list(range(L)) once per C sample, in order
    perms = np.tile(np.arange(context_len), (len(union), 1))
    rng = random.Random(17)
    for k in subsets["C"]:
        perm = list(range(context_len))
        rng.shuffle(perm)
        perms[k] = perm
    out.perms = perms
    return out


def _non_identity_perms(n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """One seeded permutation of range(length) per sample, never the identity."""
    if length < 2:
        raise InputError("5cat", "the shuffled ablation needs a context of at least 2 chunks", "context_len")
    perms = np.argsort(rng.random((n, length)), axis=1)
    ident = np.arange(length)
    bad = np.all(perms == ident, axis=1)
    while np.any(bad):
        perms[bad] = np.argsort(rng.random((int(bad.sum()), length)), axis=1)
        bad = np.all(perms == ident, axis=1)
    return perms


def _cross_article_rows(store: ArticleStore, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """For each sample, the last context row of another sample from a different article
    (None when the samples span one article: no true swap exists)."""
    art = store.row_article[rows]
    if len(np.unique(art)) < 2:
        return None
    donor = rng.permutation(len(rows))
    same = art[donor] == art
    for _ in range(50):
        if not np.any(same):
            break
        donor[same] = rng.integers(0, len(rows), int(same.sum()))
        same = art[donor] == art
    for i in np.nonzero(same)[0]:  # rare: fall back to the first sample of another article
        donor[i] = int(np.nonzero(art != art[i])[0][0])
    return rows[donor] - 1


# ---- input variants ------------------------------------------------------------------------

def static_variants(context_len: int, legacy: bool) -> list[str]:
    """Names of the variants built from the context alone (rollout steps are `rollout_h`)."""
    loo = range(context_len if legacy else context_len - 1)
    return ["base", "shuffled", "reversed", *[f"loo_{i}" for i in loo], "repeat_last", "cross_article"]


def build_variant(name: str, ctx: np.ndarray, s: SplitSamples) -> np.ndarray | None:
    """Contexts (S, L, D) for one variant, from the base contexts; None if it cannot exist."""
    if name == "base":
        return ctx
    if name == "shuffled":
        return np.take_along_axis(ctx, s.perms[:, :, None], axis=1)
    if name == "reversed":
        return np.ascontiguousarray(ctx[:, ::-1])
    if name.startswith("loo_"):
        i = int(name[4:])
        return np.concatenate([ctx[:, :i], ctx[:, i + 1:], ctx[:, -1:]], axis=1)  # padded with the last frame
    if name == "repeat_last":
        return np.repeat(ctx[:, -1:], ctx.shape[1], axis=1)
    if name == "cross_article":
        out = ctx.copy()
        if s.legacy:
            out[:, -1] = ctx[:, 0]  # the original's "cross_article": the first frame, same article
            return out
        if s.cross_rows is None:
            return None
        out[:, -1] = s.store.gather(s.cross_rows)  # stored as the rest of the context (model_context)
        return out
    raise KeyError(name)


def oracle_offset(name: str) -> int:
    """Offset from the target of what the oracle returns: the true next chunk of its input
    (the target for base and ablations, l + h at rollout step h)."""
    return int(name[len("rollout_"):]) - 1 if name.startswith("rollout_") else 0


@dataclass
class SplitPredictions:
    """One predictor's unit-norm predictions (S, D) per variant name on one split's samples.

    `bad[name]` (S,) marks predictions without a direction (non-finite or zero norm); they are
    zero rows in `variants`, so they score cos 0 and rank last (lvm_core.evaluation.metrics.unit_predictions).
    """

    samples: SplitSamples
    variants: dict[str, np.ndarray | None]
    bad: dict[str, np.ndarray] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray | None:
        return self.variants[name]

    def nonfinite(self, names: Iterable[str], idx: np.ndarray | None = None) -> int:
        """Samples (of `idx`, default all) with a prediction without a direction in any of `names`."""
        masks = [self.bad[n] for n in names if n in self.bad]
        if not masks:
            return 0
        hit = np.any(np.stack(masks), axis=0)
        return int(hit.sum() if idx is None else hit[idx].sum())


def predict_split(predictor: Predictor | str, s: SplitSamples, variants: Iterable[str],
                  ctx: np.ndarray | None = None) -> SplitPredictions:
    """Predict every requested variant once, in one batched call each.

    `predictor` is a Predictor or the name of a baseline ("copy_last", "context_mean",
    "oracle"). Rollout step h (`rollout_h`) feeds step h-1's predictions back in."""
    wanted = list(dict.fromkeys(variants))
    if ctx is None:
        ctx = s.model_context()
    is_oracle = predictor == "oracle"
    fn = BASELINE_PREDICTORS.get(predictor, predictor) if isinstance(predictor, str) else predictor
    if isinstance(fn, str) and not is_oracle:
        raise InputError("5cat", f"unknown baseline {predictor!r} (known: {', '.join(BASELINES)})")

    bad: dict[str, np.ndarray] = {}

    def run(name: str, x: np.ndarray | None) -> np.ndarray | None:
        if is_oracle:
            return s.unit_rows(oracle_offset(name))
        if x is None:
            return None
        pred = np.asarray(fn(x), dtype=np.float32)
        if pred.shape != (x.shape[0], x.shape[2]):
            raise InputError("5cat", f"the model returned shape {pred.shape} for contexts {x.shape}; "
                             f"expected ({x.shape[0]}, {x.shape[2]})")
        unit, bad[name] = unit_predictions(pred)
        return unit

    out: dict[str, np.ndarray | None] = {}
    for name in wanted:
        if name.startswith("rollout_"):
            continue
        out[name] = run(name, build_variant(name, ctx, s))
    steps = sorted(int(n[len("rollout_"):]) for n in wanted if n.startswith("rollout_"))
    if steps:
        if "base" not in out:
            out["base"] = run("base", ctx)
        window, prev = ctx, out["base"]
        out["rollout_1"] = prev
        for h in range(2, max(steps) + 1):
            window = np.concatenate([window[:, 1:], prev[:, None, :]], axis=1)
            prev = run(f"rollout_{h}", window)
            out[f"rollout_{h}"] = prev
    if "rollout_1" in out and "base" in bad:
        bad["rollout_1"] = bad["base"]
    return SplitPredictions(s, out, bad)


# ---- gates ---------------------------------------------------------------------------------

@dataclass
class Check:
    """One threshold test: `value op threshold` on one split (split "all" for cross-split).

    `nonfinite` counts the predictions without a direction that the check's metric read (set
    by the battery); any such prediction fails the check whatever its value, so a model cannot
    pass by emitting zeros or NaN (a zero row's ablation deltas are 0, its bins agree, ...)."""

    split: str
    metric: str
    op: str  # ">=", "<=" or ">" (strictly above: an interval touching 0 is not a win)
    threshold: float
    value: float
    tolerance: float = 0.0
    nonfinite: int = 0

    @property
    def passed(self) -> bool:
        if self.nonfinite or self.value is None or math.isnan(self.value):
            return False
        if self.op == ">=":
            return self.value >= self.threshold - self.tolerance
        if self.op == ">":
            return self.value > self.threshold
        return self.value <= self.threshold + self.tolerance

    def to_json(self) -> dict[str, Any]:
        out = {"split": self.split, "metric": self.metric, "op": self.op, "threshold": self.threshold,
               "value": _num(self.value), "passed": self.passed}
        if self.nonfinite:
            out["nonfinite"] = self.nonfinite
        return out


@dataclass
class Verdict:
    """A gate's checks; `passed` is None when the gate could not run (e.g. no OOD split)."""

    checks: list[Check]
    note: str = ""

    @property
    def passed(self) -> bool | None:
        if not self.checks:
            return None
        return all(c.passed for c in self.checks)


class Gate(Protocol):
    """What the battery needs from a gate plugin (plugins/gates.py has A-E).

    A *paired* gate (attribute ``paired = True``, e.g. vs_baselines) compares predictors with
    each other on the same samples: instead of `measure` the battery calls
    ``per_sample(preds) -> np.ndarray`` for every predictor and then
    ``compare(samples, {predictor: per-sample array}) -> {predictor: metrics}`` once per split.
    A paired gate is *relative*: it is judged and shown beside A-E, not counted in the score,
    and it does not run in legacy mode (the original had no such gate).
    """

    key: str  # "A": also the prefix of its thresholds in a plan ("A.val.mean_plus1")
    title: str

    def variants(self, context_len: int, horizon: int, legacy: bool) -> list[str]:
        """Prediction variants this gate reads."""

    def measure(self, preds: SplitPredictions) -> dict[str, float]:
        """Metrics on one split (use preds.samples.subset(self.key) for the samples)."""

    def judge(self, metrics: Mapping[str, Mapping[str, float]]) -> Verdict:
        """Checks against thresholds, given {split: metrics}."""


def is_relative(gate: Any) -> bool:
    """A paired gate: judged beside A-E, not counted in the score (see Gate)."""
    return bool(getattr(gate, "paired", False))


def split_kind(split: str) -> str:
    """Threshold family of a split: "ood" for the split named ood, "val" for every other."""
    return "ood" if split == "ood" else "val"


class _Lookup(Protocol):
    obj: Callable[..., Gate]
    params: Sequence[Any]


def resolve_gates(lookup: Callable[[str], _Lookup], names: Sequence[str] = DEFAULT_GATES,
                  thresholds: Mapping[str, Any] | None = None, *, source: str = "[gates]") -> list[Gate]:
    """Build gates from their registry items with plan overrides like {"A.val.mean_plus1": 0.5}.

    `lookup(name)` returns an item with `.obj` (the factory) and `.params` (declared Params):
    the workbench passes ``lambda n: host.get("gate", n)``. Every problem is reported at once.
    """
    per_gate: dict[str, dict[str, Any]] = {n: {} for n in names}
    errors: list[InputError] = []
    for key, value in (thresholds or {}).items():
        gate, _, param = current_threshold(str(key)).partition(".")  # A.val.margin: the old name
        if not param:
            errors.append(InputError(source, "expected '<gate>.<param>', e.g. 'A.val.margin_vs_best_offset'", f"thresholds.{key}"))
        elif gate not in per_gate:
            errors.append(InputError(source, f"gate {gate!r} is not chosen (chosen: {', '.join(names)}); "
                                     f"add it to [gates] use (5cat: --gate {gate})", f"thresholds.{key}"))
        else:
            per_gate[gate][param] = value
    gates: list[Gate] = []
    for name in names:
        try:
            item = lookup(name)
        except InputError as exc:
            errors.append(exc)
            continue
        values, errs = resolve_params(item.params, per_gate[name], where=f"thresholds.{name}", source=source)
        errors += errs
        if not errs:
            gates.append(_named_gate(item.obj(**values), name, getattr(item, "description", "")))
    if errors:
        raise errors[0] if len(errors) == 1 else InputErrors(source, errors)
    return gates


def _named_gate(gate: Gate, name: str, description: str) -> Gate:
    """The gate answers to its registered name (the prefix of its thresholds, its key in
    gates.json and metrics), whatever `key` its class carries; a missing title is the item's
    description."""
    if getattr(gate, "key", None) != name:
        gate.key = name
    if not getattr(gate, "title", ""):
        gate.title = description or name
    return gate


# ---- the battery ---------------------------------------------------------------------------

@dataclass
class BatteryResult:
    """Everything the battery measured, for the model and each baseline, on the same samples.

    metrics[gate][split][predictor] -> {metric: value}; verdicts[predictor][gate] -> Verdict.
    The model passes when every gate passes (the original rule); `score` counts passed gates.
    """

    gates: list[Gate]
    metrics: dict[str, dict[str, dict[str, dict[str, float]]]]
    verdicts: dict[str, dict[str, Verdict]]
    splits: dict[str, dict[str, Any]]
    config: dict[str, Any]
    timings: dict[str, float]

    @property
    def scored_gates(self) -> list[Gate]:
        """The gates the score counts (A-E); relative gates are reported beside it."""
        return [g for g in self.gates if not is_relative(g)]

    @property
    def relative_gates(self) -> list[Gate]:
        return [g for g in self.gates if is_relative(g)]

    @property
    def max_score(self) -> int:
        return len(self.scored_gates)

    def score(self, predictor: str = MODEL) -> int:
        return sum(1 for g in self.scored_gates if self.verdicts[predictor][g.key].passed)

    def passed_for(self, predictor: str = MODEL) -> bool:
        return all(self.verdicts[predictor][g.key].passed for g in self.scored_gates)

    def nonfinite(self, predictor: str = MODEL) -> dict[str, int]:
        """{split: samples with a non-finite or zero-norm prediction in any variant}."""
        return {sp: int(info.get("nonfinite", {}).get(predictor, 0)) for sp, info in self.splits.items()}

    @property
    def score_model(self) -> int:
        return self.score(MODEL)

    @property
    def passed(self) -> bool:
        return self.passed_for(MODEL)

    @property
    def predictors(self) -> list[str]:
        return list(self.verdicts)

    def to_json(self) -> dict[str, Any]:
        """The gates.json document (schema-versioned; NaN written as null)."""
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "mode": "legacy" if self.config.get("legacy") else "standard",
            "passed": self.passed,
            "score": self.score(),
            "max_score": self.max_score,
            "scored_gates": [g.key for g in self.scored_gates],
            "score_text": score_text(self.score(), self.max_score, [g.key for g in self.scored_gates]),
            "config": self.config,
            "splits": self.splits,
            "gates": {
                g.key: {
                    "title": g.title,
                    "relative": is_relative(g),
                    "passed": self.verdicts[MODEL][g.key].passed,
                    "note": self.verdicts[MODEL][g.key].note,
                    "checks": [c.to_json() for c in self.verdicts[MODEL][g.key].checks],
                    "metrics": _clean(self._json_metrics(g.key)),
                }
                for g in self.gates
            },
            "beats_baselines": self.relative_summary(),
            "baselines": {
                p: {"passed": self.passed_for(p), "score": self.score(p),
                    "gates": {k: v.passed for k, v in self.verdicts[p].items()},
                    "checks": {k: [c.to_json() for c in v.checks] for k, v in self.verdicts[p].items()}}
                for p in self.predictors if p != MODEL and not self.config.get("legacy")
            },
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }

    def _json_metrics(self, gate: str) -> dict[str, Any]:
        """A gate's metrics for gates.json; in legacy mode only what the original reported
        (the model's numbers under LEGACY_KEYS), so an old report and a new one compare key by key."""
        if not self.config.get("legacy") or gate not in LEGACY_KEYS:
            return self.metrics[gate]
        return {split: {MODEL: {k: by_pred[MODEL][k] for k in LEGACY_KEYS[gate] if k in by_pred[MODEL]}}
                for split, by_pred in self.metrics[gate].items()}

    def relative_summary(self, predictor: str = MODEL) -> dict[str, Any] | None:
        """The relative verdict of `predictor` per split, for the score line, gates.json and the
        TUI: {"gate", "passed", "splits": {split: {"passed", "vs", "mean", "lo", "hi",
        "against": {baseline: {"mean", "lo", "hi", "cos"}}}}}. "vs" is the baseline whose lower
        bound is the lowest (the comparison that decides). None without a relative gate."""
        gates = self.relative_gates
        if not gates:
            return None
        g = gates[0]
        verdict = self.verdicts[predictor][g.key]
        splits: dict[str, Any] = {}
        for split, by_pred in self.metrics[g.key].items():
            m = by_pred[predictor]
            against = {b: {"mean": _num(m[f"gain/{b}"]), "lo": _num(m[f"gain/{b}/lo"]),
                           "hi": _num(m[f"gain/{b}/hi"]), "cos": _num(m[f"{b}/cos"])}
                       for b in relative_baselines(m)}
            checks = [c for c in verdict.checks if c.split == split]
            vs = min(against, key=lambda b: -math.inf if against[b]["lo"] is None else against[b]["lo"]) if against else None
            splits[split] = {"passed": bool(checks) and all(c.passed for c in checks), "vs": vs,
                             "cos": _num(m.get("cos")),
                             **({k: against[vs][k] for k in ("mean", "lo", "hi")} if vs else {}),
                             "against": against}
        return {"gate": g.key, "passed": verdict.passed, "level": getattr(g, "thresholds", {}).get("level"),
                "splits": splits}

    def flat_metrics(self, prefix: str = "gates") -> dict[str, float]:
        """Flat names for metrics.jsonl and checkpoint selection: gates/score, gates/passed,
        gates/A/passed, gates/A/val/margin_vs_best_offset, gates/A/val/copy_last/margin_vs_best_offset, ..."""
        out: dict[str, float] = {f"{prefix}/score": float(self.score()), f"{prefix}/passed": float(self.passed)}
        for g in self.gates:
            v = self.verdicts[MODEL][g.key].passed
            out[f"{prefix}/{g.key}/passed"] = float("nan") if v is None else float(v)
            for split, by_pred in self.metrics[g.key].items():
                for pred, values in by_pred.items():
                    mid = f"{split}" if pred == MODEL else f"{split}/{pred}"
                    for name, value in values.items():
                        out[f"{prefix}/{g.key}/{mid}/{name}"] = float(value)
        return out


def run_battery(
    predictor: Predictor,
    splits: Mapping[str, tuple[ArticleStore, np.ndarray]],
    gates: Sequence[Gate],
    *,
    samples: int = 5000,
    horizon: int = 5,
    context_len: int = 5,
    seed: int = 0,
    legacy: bool = False,
    baselines: Sequence[str] = BASELINES,
    extra_baselines: Mapping[str, Predictor] | None = None,
    progress: Callable[[str], None] | None = None,
) -> BatteryResult:
    """Run the gate battery for `predictor` and the baselines on the same samples.

    splits: {"val": (store, target_rows), "ood": (store, target_rows)}: target rows of the
    windows eligible for the split (lvm_core.data.windows.make_windows(...).target_rows); splits
    named "ood" are judged with OOD thresholds, every other split with VAL thresholds.
    gates: built gate objects (`resolve_gates`). samples: per split. horizon: rollout steps (D).
    legacy: the original tool's definitions (first-N samples, offsets from the target, ...).
    extra_baselines: more baselines by name (ridge and frame weights fitted on a run's train part,
    lvm_core/models/fitted.py), judged and shown like copy-last.
    """
    if samples < 1 or horizon < 1:
        raise InputError("5cat", f"samples and horizon must be >= 1 (got {samples}, {horizon})")
    if legacy:
        gates = [g for g in gates if not is_relative(g)]
    say = progress or (lambda _msg: None)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    wanted: list[str] = []
    for g in gates:
        wanted += g.variants(context_len, horizon, legacy)
    wanted = list(dict.fromkeys(wanted))
    predictors: list[tuple[str, Predictor | str]] = [(MODEL, predictor), *[(b, b) for b in baselines],
                                                     *(extra_baselines or {}).items()]
    metrics: dict[str, dict[str, dict[str, dict[str, float]]]] = {g.key: {} for g in gates}
    split_info: dict[str, dict[str, Any]] = {}
    timings["predict_model_s"] = 0.0
    for split, (store, rows) in splits.items():
        t0 = time.perf_counter()
        s = draw_samples(split, store, rows, samples=samples, horizon=horizon, context_len=context_len,
                         seed=seed, legacy=legacy)
        ctx = s.model_context()
        split_info[split] = {
            "store": str(store.path),
            "samples": len(s),
            "articles": int(len(np.unique(store.row_article[s.rows]))),
            "eligible_windows": int(len(rows)),
            "gate_samples": {g.key: int(len(s.subset(g.key))) for g in gates},
        }
        timings[f"sample_{split}_s"] = time.perf_counter() - t0
        _battery_split(split, s, ctx, predictors, gates, wanted, (context_len, horizon, legacy), metrics,
                       split_info[split], timings, say)
    verdicts: dict[str, dict[str, Verdict]] = {}
    for pname, _ in predictors:
        verdicts[pname] = {}
        for g in gates:
            by_split = {sp: metrics[g.key][sp][pname] for sp in metrics[g.key]}
            verdicts[pname][g.key] = _fail_nonfinite(g.judge(by_split), by_split)
    timings["total_s"] = time.perf_counter() - t_all
    config = {"samples": samples, "horizon": horizon, "context_len": context_len, "seed": seed, "legacy": legacy,
              "gates": [g.key for g in gates], "baselines": [*baselines, *(extra_baselines or {})],
              "thresholds": {g.key: dict(getattr(g, "thresholds", {})) for g in gates}}
    return BatteryResult(list(gates), metrics, verdicts, split_info, config, timings)


def _battery_split(split: str, s: Any, ctx: Any, predictors: Sequence[tuple[str, Predictor | str]], gates: Sequence[Gate],
                   wanted: list[str], shape: tuple[int, int, bool], metrics: dict[str, Any], info: dict[str, Any],
                   timings: dict[str, float], say: Callable[[str], None]) -> None:
    """One split of run_battery: every predictor's variants on the split's samples `s`, each
    gate's metrics into `metrics[gate][split]`, non-finite counts into `info`, times into
    `timings`. `shape` is (context_len, horizon, legacy)."""
    context_len, horizon, legacy = shape
    per_sample: dict[str, dict[str, np.ndarray]] = {g.key: {} for g in gates if is_relative(g)}
    rel_bad: dict[str, dict[str, float]] = {}
    for pname, pred in predictors:
        say(f"{split}: predicting {len(wanted)} variants for {pname} on {len(s)} samples")
        t1 = time.perf_counter()
        preds = predict_split(pred, s, wanted, ctx)
        if pname == MODEL:
            timings["predict_model_s"] += time.perf_counter() - t1
        for g in gates:
            bad = float(preds.nonfinite(g.variants(context_len, horizon, legacy), s.subset(g.key)))
            if is_relative(g):
                per_sample[g.key][pname] = g.per_sample(preds)
                rel_bad.setdefault(g.key, {})[pname] = bad
            else:
                metrics[g.key].setdefault(split, {})[pname] = {**g.measure(preds), "nonfinite": bad}
        info.setdefault("nonfinite", {})[pname] = preds.nonfinite(preds.bad)
        del preds
    t2 = time.perf_counter()
    for g in gates:
        if is_relative(g):
            metrics[g.key][split] = g.compare(s, per_sample[g.key])
            for pname, m in metrics[g.key][split].items():
                m["nonfinite"] = rel_bad.get(g.key, {}).get(pname, 0.0)
    timings["paired_s"] = timings.get("paired_s", 0.0) + time.perf_counter() - t2


def relative_baselines(metrics: Mapping[str, float]) -> list[str]:
    """Baseline names a relative gate compared against, read from its metric keys (gain/<b>)."""
    return [k[len("gain/"):] for k in metrics if k.startswith("gain/") and k.count("/") == 1]


def _fail_nonfinite(verdict: Verdict, by_split: Mapping[str, Mapping[str, float]]) -> Verdict:
    """Mark each check with the non-finite predictions its split read (a check on a split the
    gate does not name, like E's "val-ood", read every split), so such predictions fail it."""
    counts = {sp: int(m.get("nonfinite", 0)) for sp, m in by_split.items()}
    for c in verdict.checks:
        c.nonfinite = counts[c.split] if c.split in counts else sum(counts.values())
    return verdict


def _num(x: Any) -> Any:
    if isinstance(x, (float, np.floating)):
        return None if math.isnan(float(x)) or math.isinf(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def _clean(obj: Any) -> Any:
    """JSON-ready copy: NaN -> null, numpy scalars -> Python."""
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return _num(obj)
