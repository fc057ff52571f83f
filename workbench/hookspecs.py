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
"""

from __future__ import annotations

import pluggy

PROJECT = "lvm_workbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---- registry hooks ------------------------------------------------------------------------

@hookspec
def register_corpus_readers(register):
    """Register corpus readers: ``reader(source: str, **params) -> lvm_core.corpus.Corpus``.

    A Corpus yields ordered Documents (id, title, text) and records where the text came from
    (package name and version, file hashes), which goes into the store manifest.
    """


@hookspec
def register_embedders(register):
    """Register text embedders: ``factory(**params) -> lvm_core.embedding.Embedder``.

    An Embedder has `name`, `dim`, `weights_sha256` and ``encode(texts) -> (n, dim) float32``
    with unit-norm rows. A factory whose dependencies are missing raises
    lvm_core.embedding.EmbedderUnavailable with the exact install command.
    """


@hookspec
def register_diagnostics(register):
    """Register data diagnostics: ``fn(store, split, *, context_len, **params) -> dict``.

    The dict is JSON-ready: numbers, lists and short strings; `lvm-workbench diagnose` prints and
    saves it.
    """


@hookspec
def register_models(register):
    """Register model architectures: ``builder(dim, context_len, **params) -> torch.nn.Module``.

    The module maps contexts (B, L, dim) to predictions (B, dim) with unit-norm rows. The
    architecture name and params are stored in every checkpoint, so a model rebuilds from its
    checkpoint alone.
    """


@hookspec
def register_losses(register):
    """Register loss strategies: ``factory(**params) -> strategy``.

    ``strategy(batch, model) -> dict[str, Tensor]`` returns named scalar terms; the trainer
    logs each term and sums them with the weights (and schedules) of the plan.
    """


@hookspec
def register_gates(register):
    """Register evaluation gates (the 5CAT battery and others): ``factory(**params) -> gate``."""


# ---- event hooks ---------------------------------------------------------------------------

@hookspec
def on_run_start(run, plan, log):
    """A run starts (or resumes). `run` describes the run directory; `plan` is the resolved plan."""


@hookspec
def on_epoch_end(run, epoch, step, metrics, log):
    """An epoch of training ended at optimizer step `step`; `metrics` holds its train averages."""


@hookspec
def on_eval_end(run, epoch, step, metrics, log):
    """Validation (and gates, when due) ended at optimizer step `step`; `metrics` holds the values and baselines."""


@hookspec
def on_checkpoint(run, path, tag, metrics, log):
    """A checkpoint was written (`tag` is "last" or "best")."""


@hookspec
def on_run_end(run, status, log):
    """A run ended with `status`: completed, stopped, failed or diverged."""
