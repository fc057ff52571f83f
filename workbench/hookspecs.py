"""The hook specifications: everything a plugin can add to lvm-workbench.

Plugins are modules or objects with functions marked `@hookimpl`; a third-party package exposes
one through the entry-point group ``lvm_workbench``::

    [project.entry-points.lvm_workbench]
    my_loss = "my_package.plugin"

Built-in features (lvm_plugins, the `plugins/` folder) use exactly these hooks.

Registry hooks receive a ``register`` callback and may call it any number of times::

    register(name, obj, *, description="", params=(Param(...), ...))

`name` must be unique within its kind: a second plugin registering the same name is an error
that names both plugins. `params` declares what a plan may set (see lvm_core.params.Param);
the host checks plan values against it and passes them to `obj` as keyword arguments.

Event hooks are called with keyword arguments; an implementation may accept any subset of them.
They run synchronously in the training process, in every run of a process where the plugin is
loaded (docs/plugins.md has the table of when each one runs). ``log(name, value)`` writes a
number into the run's metrics.jsonl as ``plugin/<plugin>/<name>`` (a line of kind
"PluginMetrics" with the epoch and step of the event). A raising event hook is reported with its
plugin's name, distribution and version and does not stop training. Note a pluggy rule: hookimpl
parameters that have default values are never passed.

Every hook is typed below; the Protocols name what each registry hook's `obj` must be (the loss
strategy, the gate protocol, the diagnostic signature, ...). Plugins import what they need from
`workbench.api`, the one public surface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence

import pluggy

if TYPE_CHECKING:  # the types only: importing the hookspecs loads neither torch nor numpy
    from pathlib import Path

    import torch
    from torch import nn

    from lvm_core.training.batch import Batch
    from lvm_core.data.corpus import Corpus
    from lvm_core.data.embedding import Embedder
    from lvm_core.evaluation.battery import Gate
    from lvm_core.params import Param
    from lvm_core.data.store import ArticleStore
    from lvm_core.data.windows import Split

PROJECT = "lvm_workbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---- what the hooks register ---------------------------------------------------------------

class Register(Protocol):
    """The callback every registry hook receives; call it once per item."""

    def __call__(self, name: str, obj: Any, *, description: str = "", params: Sequence[Param] = ()) -> None: ...


class CorpusReader(Protocol):
    """``reader(source, **params) -> Corpus``: ordered Documents and their provenance."""

    def __call__(self, source: str, **params: Any) -> Corpus: ...


class EmbedderFactory(Protocol):
    """``factory(**params) -> Embedder`` (name, dim, weights_sha256, pooling, encode(texts))."""

    def __call__(self, **params: Any) -> Embedder: ...


class Diagnostic(Protocol):
    """The diagnostic signature: ``fn(store, split, *, context_len, **params) -> dict`` (JSON-ready)."""

    def __call__(self, store: ArticleStore, split: Split, *, context_len: int, **params: Any) -> dict[str, Any]: ...


class ModelBuilder(Protocol):
    """``builder(dim, context_len, **params) -> nn.Module`` mapping (B, L, dim) to (B, dim)."""

    def __call__(self, dim: int, context_len: int, **params: Any) -> nn.Module: ...


class LossStrategy(Protocol):
    """``strategy(batch, model) -> {term: scalar tensor}``. Read the prediction with
    ``batch.prediction(model)`` (the trainer's one forward pass); a strategy that never does
    sets ``uses_prediction = False``. Terms named ``stat/...`` are logged, never added."""

    def __call__(self, batch: Batch, model: nn.Module) -> dict[str, torch.Tensor]: ...


LossFactory = Callable[..., LossStrategy]  # factory(**params) -> strategy
GateFactory = Callable[..., "Gate"]  # factory(**params) -> gate: the gate protocol, lvm_core.evaluation.battery.Gate


class RunInfo(Protocol):
    """What event hooks receive as `run`."""

    path: Path
    name: str
    plan: dict[str, Any]


Log = Callable[[str, float], None]  # log(name, value): plugin/<plugin>/<name> in metrics.jsonl


# ---- registry hooks ------------------------------------------------------------------------

@hookspec
def register_corpus_readers(register: Register) -> None:
    """Register corpus readers (CorpusReader): ``reader(source: str, **params) -> Corpus``.

    A Corpus yields ordered Documents (id, title, text) and records where the text came from
    (package name and version, file hashes), which goes into the store manifest.
    """


@hookspec
def register_embedders(register: Register) -> None:
    """Register text embedders (EmbedderFactory): ``factory(**params) -> Embedder``.

    An Embedder has `name`, `dim`, `weights_sha256` and ``encode(texts) -> (n, dim) float32``
    with unit-norm rows. A factory whose dependencies are missing raises EmbedderUnavailable
    with the exact install command.
    """


@hookspec
def register_diagnostics(register: Register) -> None:
    """Register data diagnostics (Diagnostic): ``fn(store, split, *, context_len, **params) -> dict``.

    The dict is JSON-ready: numbers, lists and short strings; `lvm-workbench diagnose` prints and
    saves it.
    """


@hookspec
def register_models(register: Register) -> None:
    """Register model architectures (ModelBuilder): ``builder(dim, context_len, **params) -> nn.Module``.

    The module maps contexts (B, L, dim) to predictions (B, dim) with unit-norm rows. The
    architecture name and params are stored in every checkpoint, so a model rebuilds from its
    checkpoint alone.
    """


@hookspec
def register_losses(register: Register) -> None:
    """Register loss strategies (LossFactory): ``factory(**params) -> strategy`` (LossStrategy).

    ``strategy(batch, model) -> dict[str, Tensor]`` returns named scalar terms; the trainer
    logs each term and sums them with the weights (and schedules) of the plan.
    """


@hookspec
def register_gates(register: Register) -> None:
    """Register evaluation gates (GateFactory): ``factory(**params) -> gate``.

    A gate follows the gate protocol, lvm_core.evaluation.battery.Gate (``Gate`` in workbench.api):
    `key`, `title`, ``variants(context_len, horizon, legacy) -> [variant]`` (the predictions it
    reads from the shared evaluation), ``measure(preds) -> {metric: value}`` per split and
    ``judge({split: metrics}) -> Verdict``; a paired gate (``paired = True``) implements
    ``per_sample`` and ``compare`` instead of `measure`.
    """


# ---- event hooks ---------------------------------------------------------------------------

@hookspec
def on_run_start(run: RunInfo, plan: dict[str, Any], log: Log) -> None:
    """A run starts (or resumes). `run` describes the run directory; `plan` is the resolved plan."""


@hookspec
def on_step_logged(run: RunInfo, epoch: int, step: int, metrics: Mapping[str, float], log: Log) -> None:
    """A training step was logged (every `train.log_every` optimizer steps): `metrics` holds the
    averages over the steps since the last log: "loss", each term "loss/<name>", "lr" and the
    weights "w/<name>". Called often: keep it cheap."""


@hookspec
def on_epoch_end(run: RunInfo, epoch: int, step: int, metrics: Mapping[str, float], log: Log) -> None:
    """An epoch of training ended at optimizer step `step`; `metrics` holds its train averages."""


@hookspec
def on_eval_end(run: RunInfo, epoch: int, step: int, metrics: Mapping[str, float], log: Log) -> None:
    """Validation (and gates, when due) ended at optimizer step `step`; `metrics` holds the values and baselines."""


@hookspec
def on_checkpoint(run: RunInfo, path: str, tag: str, metrics: Mapping[str, float], log: Log) -> None:
    """A checkpoint was written (`tag` is "last" or "best")."""


@hookspec
def on_run_end(run: RunInfo, status: str, log: Log) -> None:
    """A run ended with `status`: completed, stopped, failed or diverged."""
