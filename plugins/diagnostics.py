"""Built-in data diagnostics, registered through the public `register_diagnostics` hook.

Each is ``fn(store, split, *, context_len, **params) -> dict`` (lvm_core.evaluation.diagnostics); the
Params declared here are what `lvm-workbench diagnose --set NAME.KEY=VALUE` and plans may set.
"""

from __future__ import annotations

from workbench.api import Param, diagnostics as d, hookimpl

_PART = Param("part", "str", "val", "split part the numbers are computed on")
_TRAIN = Param("train_part", "str", "train", "split part that fitted models (ridge, probe) learn from")
_SEED = Param("seed", "int", 0, "seed of the sampling")
_SAMPLES = Param("max_samples", "int", 5000, "most windows sampled (spread across articles)", min=1)


@hookimpl
def register_diagnostics(register):
    register(
        "split_hygiene", d.split_hygiene,
        description="articles in two parts, near-duplicate chunks across parts, short articles",
        params=(
            Param("threshold", "float", 0.98, "cosine above which two chunks count as near-duplicates", min=-1.0, max=1.0),
            Param("max_rows", "int", 20000, "most chunks of each later part checked against earlier parts", min=1),
            Param("block", "int", 2048, "rows per block of the blocked similarity search", min=1),
            Param("examples", "int", 5, "near-duplicate pairs listed per pair of parts", min=0),
            _SEED,
        ),
    )
    register(
        "direction_profile", d.direction_profile,
        description="cos(c_i, t) by position, first-vs-last signal, coherence, offset profile (symmetric by construction)",
        params=(_PART, _SAMPLES,
                Param("max_rows", "int", 50000, "most chunks (whole articles) in the offset profile", min=1),
                _SEED),
    )
    register(
        "pair_order_probe", d.pair_order_probe,
        description="logistic probe of (x_t, x_t+1) vs reversed pairs on held-out articles: can order be detected?",
        params=(_PART, _TRAIN,
                Param("max_pairs", "int", 20000, "most adjacent pairs per part (spread across articles)", min=1),
                Param("l2", "float", 1e-2, "L2 penalty of the logistic regression", min=0.0),
                Param("max_iter", "int", 200, "L-BFGS iterations", min=1),
                _SEED),
    )
    register(
        "baselines", d.baseline_metrics,
        description="copy-last, context mean, linear extrapolation and ridge: cos, margin, within-article rank",
        params=(_PART, _TRAIN, _SAMPLES,
                Param("ridge", "bool", True, "fit and score the ridge baseline"),
                Param("ridge_alpha", "float", 0.0, "ridge penalty; 0 chooses one of ridge_alphas on held-out train articles", min=0.0),
                Param("ridge_alphas", "list", list(d.RIDGE_ALPHAS), "penalties tried when ridge_alpha is 0"),
                Param("ridge_max_train", "int", 20000, "most train windows the ridge is fitted on", min=1),
                _SEED),
    )
