"""Checkpoints that know their plugins: which plugin (distribution, version, or local module)
defined a run's model and losses is written into every checkpoint, and every command that
loads a checkpoint goes through `load_checkpoint_model`, which loads those plugins or refuses
in one line naming the missing distribution.

Why: a model architecture from a plugin rebuilds only where that plugin is loaded; before, 5cat
on such a checkpoint said `unknown model 'mean_residual'` with no way forward.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from lvm_core.errors import InputError

from .plugin_guard import check_model
from .plugin_host import BUILTIN_DIST, IN_PROCESS_DIST, LOCAL_DIST, Item, PluginHost, load_plugins

META_KEY = "plugins"


def plugin_record(item: Item) -> dict[str, str]:
    """What a checkpoint keeps of the plugin behind one item."""
    return {"kind": item.kind, "name": item.name, "plugin": item.plugin, "distribution": item.dist,
            "version": item.version}


def checkpoint_plugins(host: PluginHost, model_arch: str, loss_names: Sequence[str]) -> list[dict[str, str]]:
    """The records of the model's and the losses' plugins (checkpoint metadata key 'plugins')."""
    items = [host.get("model", model_arch)] + [host.get("loss", n) for n in dict.fromkeys(loss_names)]
    return [plugin_record(i) for i in items]


def host_for_checkpoint(meta: dict[str, Any], source: str, plugin_paths: Sequence[str | Path] = (),
                        host: PluginHost | None = None) -> PluginHost:
    """A host that has the checkpoint's model: `host` when it already does, else one that also
    loads the checkpoint's local plugin modules (looked up in `plugin_paths`, e.g. the run's
    plan folder or --plugin-path). Raises InputError naming the missing distribution."""
    host = host or load_plugins()
    arch = meta["arch"]
    records = [r for r in meta.get(META_KEY) or [] if isinstance(r, dict)]
    rec = next((r for r in records if r.get("kind") == "model" and r.get("name") == arch), None)
    if arch in host.items["model"]:
        return host
    if rec is None:
        host.get("model", arch, source=source)  # raises: unknown model, with the known ones
    if rec.get("distribution") == LOCAL_DIST:
        try:
            host = load_plugins([rec["plugin"]], plugin_paths=plugin_paths)
        except InputError as exc:
            raise InputError(source, f"model {arch!r} comes from the local plugin module {rec['plugin']!r}, "
                                     f"which cannot be imported ({exc.message}); pass its folder with --plugin-path") from None
        if arch in host.items["model"]:
            return host
    dist, version = rec.get("distribution", "?"), rec.get("version", "")
    disabled = next((p for p in host.problems if p.plugin == rec.get("plugin")), None)
    if disabled is not None:
        raise InputError(source, f"model {arch!r} comes from {disabled.line()}")
    if dist == LOCAL_DIST:
        raise InputError(source, f"model {arch!r} comes from the local plugin module {rec['plugin']!r}, which does not "
                                 "register it any more")
    hint = "" if dist in ("?", BUILTIN_DIST, IN_PROCESS_DIST) else f" (pip install '{dist}=={version}')"
    raise InputError(source, f"model {arch!r} comes from distribution {dist} {version}, which is not installed "
                             f"or not loaded{hint}")


def load_checkpoint_model(path: str | Path, *, device: Any = "cpu", plugin_paths: Sequence[str | Path] = (),
                          host: PluginHost | None = None) -> Any:
    """Rebuild a checkpoint's model, loading the plugins it names (the shared loader of 5cat,
    runs, import and the TUI). The run folder's plan folder is searched for local modules too."""
    from lvm_core.training.checkpoint import load_model, read_checkpoint_meta

    meta = read_checkpoint_meta(path)
    paths = [*plugin_paths, *_run_plan_dir(Path(path))]
    h = host_for_checkpoint(meta, str(path), paths, host)
    item = h.get("model", meta["arch"], source=str(path))
    model = load_model(path, lambda arch: item.obj, device=device)
    check_model(item, model, int(meta["input_dim"]), int(meta["context_len"]))
    return model


def check_run_plugins(run_dir: str | Path, host: PluginHost | None = None) -> None:
    """`--resume RUN`: the plugin that defined the run's model is loaded, or one line naming the
    missing distribution (read from the run's newest checkpoint; a run without one yet has only
    its plan, which names the model)."""
    from lvm_core.training.checkpoint import read_checkpoint_meta

    ckpt = Path(run_dir) / "checkpoints" / "last.safetensors"
    if ckpt.is_file():
        host_for_checkpoint(read_checkpoint_meta(ckpt), str(ckpt), _run_plan_dir(ckpt), host)


def _run_plan_dir(path: Path) -> list[Path]:
    """The folder of the plan that made the run the checkpoint lies in (run.json 'plan_dir')."""
    import json

    for parent in list(path.resolve().parents)[:4]:
        info = parent / "run.json"
        if info.is_file():
            try:
                plan_dir = json.loads(info.read_text(encoding="utf-8")).get("plan_dir")
            except (OSError, ValueError):
                return []
            return [Path(plan_dir)] if plan_dir else []
    return []

