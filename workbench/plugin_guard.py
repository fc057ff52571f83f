"""Calls into plugins, guarded: an exception or a wrong type, shape or dtype becomes one
PluginFault line naming the plugin, its distribution and version, the item and the step, instead
of a traceback from deep inside torch or numpy. Every kind is covered: losses (each term, each
step), gates, diagnostics, models (one probe forward when built or loaded), embedders (each
batch), corpus readers, and event hooks (workbench/plugin_host.py `emit`, isolated per plugin).

Non-finite values: loss terms are found by the trainer at its log steps without a device wait,
and named there by the term's origin; NaN/Inf rows an embedder gives are recorded in the store's
manifest and named by `data build` (a run refuses such a store); an event hook's `log` refuses
them. An InputError a plugin raises (a bad source, a bad parameter) is already one clear line
and passes through as bad input."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch

from lvm_core.errors import InputError, PluginFault

from .plugin_host import Item, plugin_origin


def origin(item: Item) -> str:
    """'plugin P (dist version)' of an item, for messages."""
    return plugin_origin(item.plugin, item.dist, item.version)


def guard_loss(item: Item, strategy: Callable[..., Any]) -> Callable[..., dict[str, torch.Tensor]]:
    """The strategy, checked: it must return {str: scalar floating tensor}."""
    who = f"loss {item.name!r} of {origin(item)}"

    def guarded(batch: Any, model: Any) -> dict[str, torch.Tensor]:
        step = getattr(batch, "step", "?")
        try:
            terms = strategy(batch, model)
        except PluginFault:
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's bug becomes one named line
            raise PluginFault(f"{who} raised at step {step}: {type(exc).__name__}: {_first_line(exc)}") from exc
        if not isinstance(terms, Mapping):
            raise PluginFault(f"{who} returned {type(terms).__name__} at step {step}; expected a dict of named scalar tensors")
        for key, value in terms.items():
            if not isinstance(key, str) or not isinstance(value, torch.Tensor):
                raise PluginFault(f"{who}, term {key!r}, at step {step}: expected a str key and a torch.Tensor value, "
                                  f"got {type(value).__name__}")
            if value.dim() != 0:
                raise PluginFault(f"{who}, term {key!r}, at step {step}: returned shape {tuple(value.shape)}; "
                                  "expected a scalar (reduce it, e.g. .mean())")
            if not value.is_floating_point():
                raise PluginFault(f"{who}, term {key!r}, at step {step}: returned dtype {value.dtype}; "
                                  "expected a floating tensor")
        return dict(terms)

    guarded.__wrapped__ = strategy  # type: ignore[attr-defined]
    return guarded


def guard_call(what: str, item: Item, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """fn(*args, **kwargs), its exception turned into one PluginFault line (gates, diagnostics,
    embedders, readers)."""
    try:
        return fn(*args, **kwargs)
    except (PluginFault, InputError):
        raise
    except Exception as exc:  # noqa: BLE001
        raise PluginFault(f"{who(item)} raised in {what}: {type(exc).__name__}: {_first_line(exc)}") from exc


def who(item: Item) -> str:
    """"diagnostic 'x' of plugin P (dist version)": the item and where it came from."""
    return f"{item.kind.replace('_', ' ')} {item.name!r} of {origin(item)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


class GuardedGate:
    """A gate whose variants/measure/judge calls name the plugin when they fail."""

    _GUARDED = ("variants", "measure", "judge")

    def __init__(self, gate: Any, item: Item) -> None:
        object.__setattr__(self, "_gate", gate)
        object.__setattr__(self, "_item", item)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._gate, name)
        if name in self._GUARDED and callable(value):
            return lambda *a, **kw: guard_call(name, self._item, value, *a, **kw)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._gate, name, value)


def gate_lookup(host: Any, source: str) -> Callable[[str], Item]:
    """`resolve_gates`'s lookup: registered gates whose factory and calls are guarded."""
    import dataclasses

    def lookup(name: str) -> Item:
        item = host.get("gate", name, source=source)
        return dataclasses.replace(item, obj=lambda **kw: GuardedGate(guard_call("its factory", item, item.obj, **kw), item))

    return lookup


# ---- models ------------------------------------------------------------------------------

def check_model(item: Item, model: torch.nn.Module, dim: int, context_len: int) -> None:
    """One forward pass of a (2, context_len, dim) batch, before the model is trained or scored:
    it must give a (2, dim) floating tensor. Run in eval mode, without gradients and with the
    random state put back, so the run's numbers do not change."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    probe = torch.full((2, context_len, dim), dim ** -0.5, device=device)
    training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            out = guard_call(f"a forward pass of a ({2}, {context_len}, {dim}) batch", item, model, probe)
    finally:
        model.train(training)
    problem = _tensor_problem(out, (2, dim))
    if problem:
        raise PluginFault(f"{who(item)} returned {problem} for a (2, {context_len}, {dim}) context batch; "
                          f"expected a (2, {dim}) floating tensor (one predicted vector per sample)")


def _tensor_problem(out: Any, shape: tuple[int, ...]) -> str:
    """'' when `out` is a floating tensor or array of `shape`, else what it is."""
    if not isinstance(out, (torch.Tensor, np.ndarray)):
        return f"a {type(out).__name__}"
    if tuple(out.shape) != shape:
        return f"shape {tuple(out.shape)}"
    floating = out.is_floating_point() if isinstance(out, torch.Tensor) else out.dtype.kind == "f"
    return "" if floating else f"dtype {out.dtype}"


# ---- embedders and corpus readers ---------------------------------------------------------

class GuardedEmbedder:
    """An embedder whose `encode` names the plugin when it raises or gives a wrong shape or
    dtype (rows `first`-`last` of the texts in the message); other attributes pass through."""

    def __init__(self, embedder: Any, item: Item) -> None:
        self._embedder, self._item, self._done = embedder, item, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._embedder, name)

    def encode(self, texts: Any) -> np.ndarray:
        first, self._done = self._done, self._done + len(texts)
        what = f"encode of texts {first}-{first + len(texts) - 1}"
        out = guard_call(what, self._item, self._embedder.encode, texts)
        problem = _tensor_problem(out, (len(texts), int(self._embedder.dim)))
        if problem:
            raise PluginFault(f"{who(self._item)} returned {problem} in {what}; expected a "
                              f"({len(texts)}, {int(self._embedder.dim)}) float array (one row per text)")
        return np.asarray(out.detach().cpu() if isinstance(out, torch.Tensor) else out, dtype=np.float32)


def embedder_from(item: Item, params: Mapping[str, Any]) -> GuardedEmbedder:
    """The registered embedder built from its params, its calls guarded."""
    return GuardedEmbedder(guard_call("its factory", item, item.obj, **params), item)


def read_corpus(item: Item, source: str, params: Mapping[str, Any]) -> Any:
    """A corpus reader's Corpus for `source`, or one line naming the reader."""
    from lvm_core.data.corpus import Corpus

    corpus = guard_call(f"reading {source!r}", item, item.obj, source, **params)
    if not isinstance(corpus, Corpus):
        raise PluginFault(f"{who(item)} returned {type(corpus).__name__} reading {source!r}; "
                          "expected an lvm_core.data.corpus.Corpus")
    return corpus


# ---- diagnostics --------------------------------------------------------------------------

def run_diagnostic(item: Item, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """A diagnostic's result dict, or one line naming it. (NaN in a result is a number the data
    leaves undefined, shown as such; it is not a fault.)"""
    result = guard_call("its run", item, item.obj, *args, **kwargs)
    if not isinstance(result, Mapping) or not all(isinstance(k, str) for k in result):
        raise PluginFault(f"{who(item)} returned {type(result).__name__}; expected a dict with str keys "
                          "(numbers, strings, lists and dicts of them)")
    return dict(result)
