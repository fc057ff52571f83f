"""The plugin host: loads built-in and third-party plugins and owns the registries.

Loading order:
1. every module of `lvm_plugins` (the built-ins, the `plugins/` folder), through the same hooks
   a third-party plugin uses;
2. the entry-point group ``lvm_workbench`` (unless ``LVM_WORKBENCH_LOAD_PLUGINS`` names the
   distributions to load: a comma list, empty for none);
3. ``LVM_WORKBENCH_DISABLE_PLUGINS=a,b`` blocks plugins by name;
4. extra modules given by the caller (a plan's ``[plugins] modules``).

Registry hooks are called one plugin at a time so every item knows which plugin (and which
distribution and version) it came from, and so a plugin that raises is reported by name while
the others still load.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata as md
import os
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import pluggy

import lvm_core
from lvm_core.errors import InputError
from lvm_core.params import Param

from . import hookspecs

ENTRY_POINT_GROUP = "lvm_workbench"
BUILTIN_PACKAGE = "lvm_plugins"
BUILTIN_DIST = "lvm-workbench"

#: registry hook name -> item kind
KINDS: dict[str, str] = {
    "register_corpus_readers": "corpus_reader",
    "register_embedders": "embedder",
    "register_diagnostics": "diagnostic",
    "register_models": "model",
    "register_losses": "loss",
    "register_gates": "gate",
}
EVENT_HOOKS = ("on_run_start", "on_epoch_end", "on_eval_end", "on_checkpoint", "on_run_end")


class PluginError(InputError):
    """A plugin broke a rule of the host (for example two plugins registered one name)."""


@dataclass(frozen=True)
class Item:
    """One registered thing: a loss, a gate, a model, an embedder, a reader or a diagnostic."""

    kind: str
    name: str
    obj: Any
    description: str
    params: tuple[Param, ...]
    plugin: str
    dist: str
    version: str

    def param_defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}


@dataclass
class PluginProblem:
    """A plugin that failed to load or to register, kept so the UI can show it."""

    plugin: str
    stage: str
    error: str


@dataclass
class PluginHost:
    pm: pluggy.PluginManager
    items: dict[str, dict[str, Item]] = field(default_factory=lambda: {k: {} for k in KINDS.values()})
    problems: list[PluginProblem] = field(default_factory=list)
    dists: dict[str, tuple[str, str]] = field(default_factory=dict)  # plugin name -> (dist, version)

    # ---- lookup --------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        return sorted(self.items[kind])

    def get(self, kind: str, name: str, *, source: str = "plan", where: str | None = None) -> Item:
        """The item, or an InputError that lists the known names (and a close match)."""
        try:
            return self.items[kind][name]
        except KeyError:
            known = self.names(kind)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InputError(source, f"unknown {kind} {name!r} (known: {', '.join(known) or 'none'}){hint}", where) from None

    def all_items(self) -> Iterable[Item]:
        for kind in KINDS.values():
            yield from (self.items[kind][n] for n in sorted(self.items[kind]))

    # ---- events --------------------------------------------------------------------------
    def emit(self, hook: str, **kwargs: Any) -> list[PluginProblem]:
        """Call an event hook on every plugin, isolating failures; returns the failures."""
        failures: list[PluginProblem] = []
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            args = {k: kwargs[k] for k in impl.argnames if k in kwargs}
            try:
                impl.function(**args)
            except Exception as exc:  # noqa: BLE001 - a plugin's bug must not stop training
                failures.append(PluginProblem(impl.plugin_name, hook, f"{type(exc).__name__}: {exc}"))
        return failures

    # ---- registration --------------------------------------------------------------------
    def _collect(self) -> None:
        for hook_name, kind in KINDS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                plugin = impl.plugin_name
                dist, version = self.dists.get(plugin, ("?", "?"))

                def register(name: str, obj: Any, *, description: str = "", params: Sequence[Param] = (),
                             _plugin: str = plugin, _dist: str = dist, _version: str = version,
                             _kind: str = kind) -> None:
                    existing = self.items[_kind].get(name)
                    if existing is not None:
                        raise PluginError(
                            f"plugin {_plugin}",
                            f"{_kind} {name!r} is already registered by plugin {existing.plugin} "
                            f"({existing.dist} {existing.version}); rename one of them",
                        )
                    doc = description or (getattr(obj, "__doc__", None) or "").strip().split("\n")[0]
                    self.items[_kind][name] = Item(_kind, name, obj, doc, tuple(params), _plugin, _dist, _version)

                try:
                    impl.function(register=register)
                except PluginError:
                    raise
                except Exception as exc:  # noqa: BLE001 - report the plugin, keep the others
                    self.problems.append(PluginProblem(plugin, hook_name, f"{type(exc).__name__}: {exc}"))


def _builtin_modules() -> list[str]:
    pkg = importlib.import_module(BUILTIN_PACKAGE)
    return sorted(f"{BUILTIN_PACKAGE}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def _own_version() -> str:
    try:
        return md.version(BUILTIN_DIST)
    except md.PackageNotFoundError:
        return lvm_core.__version__


def _env_list(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return [x.strip() for x in raw.split(",") if x.strip()]


def load_plugins(
    extra_modules: Sequence[str] = (),
    *,
    entry_points: bool = True,
    extra_plugins: Sequence[tuple[str, object]] = (),
) -> PluginHost:
    """Build a host with the built-ins, the installed third-party plugins and any extras.

    `extra_plugins` are (name, object) pairs registered directly (tests use throw-away classes).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    host = PluginHost(pm)
    for name in _env_list("LVM_WORKBENCH_DISABLE_PLUGINS") or []:
        pm.set_blocked(name)

    own = _own_version()
    for mod_name in _builtin_modules():
        short = mod_name.rsplit(".", 1)[1]
        try:
            pm.register(importlib.import_module(mod_name), name=f"builtin.{short}")
            host.dists[f"builtin.{short}"] = (BUILTIN_DIST, own)
        except Exception as exc:  # noqa: BLE001
            host.problems.append(PluginProblem(mod_name, "import", f"{type(exc).__name__}: {exc}"))

    if entry_points:
        _load_entry_points(host)

    for mod_name in extra_modules:
        try:
            pm.register(importlib.import_module(mod_name), name=mod_name)
            host.dists[mod_name] = ("(local module)", "")
        except Exception as exc:  # noqa: BLE001
            raise InputError(mod_name, f"plugin module failed to import ({type(exc).__name__}: {exc})") from None
    for name, obj in extra_plugins:
        pm.register(obj, name=name)
        host.dists[name] = ("(in-process)", "")

    pm.check_pending()
    host._collect()
    return host


def _load_entry_points(host: PluginHost) -> None:
    """Entry points of group lvm_workbench, one at a time so a broken one is named, not fatal."""
    only = _env_list("LVM_WORKBENCH_LOAD_PLUGINS")
    for dist in md.distributions():
        dist_name = dist.metadata["Name"]
        if only is not None and dist_name not in only:
            continue
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP:
                continue
            if host.pm.get_plugin(ep.name) is not None or host.pm.is_blocked(ep.name):
                continue
            try:
                host.pm.register(ep.load(), name=ep.name)
                host.dists[ep.name] = (dist_name, dist.version)
            except Exception as exc:  # noqa: BLE001
                host.problems.append(PluginProblem(f"{ep.name} ({dist_name})", "import", f"{type(exc).__name__}: {exc}"))


_default_host: PluginHost | None = None


def default_host() -> PluginHost:
    """A process-wide host for CLI commands (the TUI and tests build their own)."""
    global _default_host
    if _default_host is None:
        _default_host = load_plugins()
    return _default_host

