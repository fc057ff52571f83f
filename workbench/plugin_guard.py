"""Calls into plugins, guarded: an exception or a wrong type, shape or dtype becomes one
PluginFault line naming the plugin, its distribution and version, the item and the step, instead
of a traceback from deep inside torch or numpy. (Non-finite loss values are found by the
trainer at its log steps without a device wait, and named there by the term's origin.)"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

from lvm_core.errors import PluginFault

from .plugin_host import Item


def origin(item: Item) -> str:
    """'plugin P (dist version)' of an item, for messages."""
    return f"plugin {item.plugin} ({item.dist} {item.version})".replace(" )", ")")


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
    except PluginFault:
        raise
    except Exception as exc:  # noqa: BLE001
        raise PluginFault(f"{item.kind} {item.name!r} of {origin(item)} raised in {what}: "
                          f"{type(exc).__name__}: {_first_line(exc)}") from exc


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
