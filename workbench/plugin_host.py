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
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pluggy

import lvm_core
from lvm_core.errors import InputError
from lvm_core.params import Param

from . import hookspecs
from .plugin_checks import hook_problems, item_problems

ENTRY_POINT_GROUP = "lvm_workbench"
BUILTIN_PACKAGE = "lvm_plugins"
BUILTIN_DIST = "lvm-workbench"
LOCAL_DIST = "(local module)"  # the distribution of a plan-local plugin module
IN_PROCESS_DIST = "(in-process)"  # the distribution of a plugin object registered by the caller


def provenance(dist: str, version: str) -> str:
    """'(dist version)' for messages; a placeholder distribution such as '(local module)' is
    already in parentheses and carries no version, so it is shown once, as it is."""
    if not dist:
        return ""
    if dist.startswith("("):
        return dist
    return f"({dist} {version})".replace(" )", ")")


def plugin_origin(plugin: str, dist: str, version: str) -> str:
    """'plugin NAME (dist version)': how every message names where a plugin came from."""
    return f"plugin {plugin} {provenance(dist, version)}".rstrip()

#: registry hook name -> item kind
KINDS: dict[str, str] = {
    "register_corpus_readers": "corpus_reader",
    "register_embedders": "embedder",
    "register_diagnostics": "diagnostic",
    "register_models": "model",
    "register_losses": "loss",
    "register_gates": "gate",
}
EVENT_HOOKS = ("on_run_start", "on_step_logged", "on_epoch_end", "on_eval_end", "on_checkpoint", "on_run_end")
HOOK_NAMES = (*KINDS, *EVENT_HOOKS)


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


DISABLE_SWITCH = "LVM_WORKBENCH_DISABLE_PLUGINS"


@dataclass
class PluginProblem:
    """A plugin that failed to load, to register, or a check at registration; such a plugin is
    disabled (none of its items is used) and shown by `plugins`, the CLI and the Plugins screen."""

    plugin: str
    stage: str
    error: str
    dist: str = ""
    version: str = ""

    @property
    def switch(self) -> str:
        """The setting that disables this plugin (and silences the warning)."""
        return f"{DISABLE_SWITCH}={self.plugin.split(' ', 1)[0]}"

    def line(self) -> str:
        """One line for people: plugin, distribution and version, what failed, the switch."""
        return (f"{plugin_origin(self.plugin, self.dist, self.version)} disabled, {self.stage}: {self.error} "
                f"(to stop loading it: {self.switch})")

    def to_json(self) -> dict[str, str]:
        return {"plugin": self.plugin, "stage": self.stage, "error": self.error, "distribution": self.dist,
                "version": self.version, "switch": self.switch}


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
    def emit(self, hook: str, log_for: Callable[[str], Any] | None = None, **kwargs: Any) -> list[PluginProblem]:
        """Call an event hook on every plugin, isolating failures; returns the failures.
        `log_for(plugin)` gives each plugin its own `log` callback."""
        failures: list[PluginProblem] = []
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            args = {k: kwargs.get(k) for k in impl.argnames}  # an argument this event lacks is None
            if "log" in impl.argnames and log_for is not None:
                args["log"] = log_for(impl.plugin_name)
            try:
                impl.function(**args)
            except Exception as exc:  # noqa: BLE001 - a plugin's bug must not stop training
                dist, version = self.dists.get(impl.plugin_name, ("?", "?"))
                failures.append(PluginProblem(impl.plugin_name, hook, f"{type(exc).__name__}: {exc}", dist, version))
        return failures

    # ---- registration --------------------------------------------------------------------
    def add(self, obj: object, name: str, dist: str, version: str) -> bool:
        """Register a plugin object unless its hooks fail a check (then it is disabled)."""
        self.dists[name] = (dist, version)
        problems = hook_problems(obj, HOOK_NAMES, self.pm.parse_hookimpl_opts)
        if problems:
            self._disable(name, "check of its hooks", "; ".join(problems))
            return False
        try:
            self.pm.register(obj, name=name)
        except Exception as exc:  # noqa: BLE001 - pluggy's own validation (e.g. an argument no hook has)
            self._disable(name, "check of its hooks", f"{type(exc).__name__}: {exc}")
            return False
        return True

    @property
    def disabled(self) -> list[str]:
        """Names of the plugins disabled by a problem (their items are not registered)."""
        return sorted({p.plugin for p in self.problems})

    def origin(self, plugin: str) -> str:
        """'plugin NAME (dist version)' for messages."""
        return plugin_origin(plugin, *self.dists.get(plugin, ("?", "?")))

    def _disable(self, plugin: str, stage: str, error: str) -> None:
        """Record the problem and drop every item the plugin registered: a plugin is used whole or not at all."""
        dist, version = self.dists.get(plugin, ("?", "?"))
        self.problems.append(PluginProblem(plugin, stage, error, dist, version))
        for kind in self.items.values():
            for name in [n for n, item in kind.items() if item.plugin == plugin]:
                del kind[name]

    def _collect(self) -> None:
        pending: dict[str, list[Item]] = {}
        failed: set[str] = set()
        for hook_name, kind in KINDS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                plugin = impl.plugin_name
                if plugin in failed:
                    continue
                dist, version = self.dists.get(plugin, ("?", "?"))
                mine = pending.setdefault(plugin, [])

                def register(name: str, obj: Any, *, description: str = "", params: Sequence[Param] = (),
                             _plugin: str = plugin, _dist: str = dist, _version: str = version,
                             _kind: str = kind, _mine: list[Item] = mine) -> None:
                    problems = item_problems(_kind, name, obj, tuple(params))
                    if problems:
                        raise _RegistrationProblem("; ".join(problems))
                    doc = description or (getattr(obj, "__doc__", None) or "").strip().split("\n")[0]
                    _mine.append(Item(_kind, name, obj, doc, tuple(params), _plugin, _dist, _version))

                try:
                    impl.function(register=register)
                except _RegistrationProblem as exc:
                    failed.add(plugin)
                    self._disable(plugin, f"check at {hook_name}", str(exc))
                except Exception as exc:  # noqa: BLE001 - report the plugin, keep the others
                    failed.add(plugin)
                    self._disable(plugin, hook_name, f"{type(exc).__name__}: {exc}")
        for plugin, items in pending.items():  # built-ins first: they were registered first
            if plugin not in failed:
                self._add_items(plugin, items)

    def _add_items(self, plugin: str, items: list[Item]) -> None:
        """Add a plugin's items, or none of them when one name is taken (naming both plugins)."""
        for it in items:
            existing = self.items[it.kind].get(it.name)
            twice = [o for o in items if o is not it and o.kind == it.kind and o.name == it.name]
            if existing is not None or twice:
                other = existing or twice[0]
                self._disable(plugin, "name collision",
                              f"{it.kind} {it.name!r} is already registered by {self.origin(other.plugin)}; "
                              "rename one of them")
                return
        for it in items:
            self.items[it.kind][it.name] = it


class _RegistrationProblem(Exception):
    """A registered item failed a check (workbench/plugin_checks.py)."""


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
    plugin_paths: Sequence[str | Path] = (),
) -> PluginHost:
    """Build a host with the built-ins, the installed third-party plugins and any extras.

    `extra_modules` (a plan's [plugins] modules) are looked up first in `plugin_paths` (the
    plan's folder, --plugin-path). `extra_plugins` are (name, object) pairs registered directly
    (tests use throw-away classes). A plugin that fails a check is disabled and listed in
    `host.problems`; the others keep working.
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
            host.add(importlib.import_module(mod_name), f"builtin.{short}", BUILTIN_DIST, own)
        except Exception as exc:  # noqa: BLE001
            host.problems.append(PluginProblem(mod_name, "import", f"{type(exc).__name__}: {exc}", BUILTIN_DIST, own))

    if entry_points:
        _load_entry_points(host)

    plugin_paths = [*plugin_paths, *(_env_paths())]
    for mod_name in extra_modules:
        try:
            module = _import_local(mod_name, plugin_paths)
        except Exception as exc:  # noqa: BLE001
            where = f" (looked in {', '.join(str(p) for p in plugin_paths)} and sys.path)" if plugin_paths else ""
            raise InputError(mod_name, f"plugin module failed to import ({type(exc).__name__}: {exc}){where}") from None
        host.add(module, mod_name, LOCAL_DIST, "")
    for name, obj in extra_plugins:
        host.add(obj, name, IN_PROCESS_DIST, "")

    host._collect()
    return host


PLUGIN_PATH_ENV = "LVM_WORKBENCH_PLUGIN_PATH"  # folders of local plugin modules; `--plugin-path` sets it


def _env_paths() -> list[str]:
    return [p for p in os.environ.get(PLUGIN_PATH_ENV, "").split(os.pathsep) if p]


def _import_local(mod_name: str, paths: Sequence[str | Path]) -> Any:
    """Import a plan-local plugin module, looking first in `paths` (the plan's folder,
    --plugin-path), then on sys.path."""
    import sys

    extra = [str(Path(p).resolve()) for p in paths if str(Path(p).resolve()) not in sys.path]
    sys.path[:0] = extra
    try:
        return importlib.import_module(mod_name)
    finally:
        for p in extra:
            sys.path.remove(p)


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
                obj = ep.load()
            except Exception as exc:  # noqa: BLE001
                host.problems.append(PluginProblem(f"{ep.name} ({dist_name})", "import", f"{type(exc).__name__}: {exc}",
                                                   dist_name, dist.version))
                continue
            host.add(obj, ep.name, dist_name, dist.version)


def warn_problems(host: PluginHost, stream: Any = None) -> None:
    """One warning line per disabled plugin (CLI commands call this; the TUI shows them in red)."""
    import sys

    for p in host.problems:
        print(f"warning: {p.line()}", file=stream or sys.stderr)


_default_host: PluginHost | None = None


def default_host() -> PluginHost:
    """A process-wide host for CLI commands (the TUI and tests build their own)."""
    global _default_host
    if _default_host is None:
        _default_host = load_plugins()
    return _default_host

