"""`lvm-workbench data import-checkpoint OLD.pt --out NEW.safetensors`: re-home an original
lnsp-phase-4 checkpoint (transformer, lstm, gru, amn) in our safetensors format, without
executing pickle code (lvm_core/legacy/checkpoint.py), so old models can be re-scored. The new
checkpoint records the plugin behind its architecture and is read back through the shared loader
(workbench/checkpoint_plugins.py) before the command reports success."""

from __future__ import annotations

import argparse
from pathlib import Path

from lvm_core.errors import InputError
from lvm_core.legacy.checkpoint import legacy_model
from lvm_core.training.checkpoint import save_checkpoint

from ..checkpoint_plugins import META_KEY, checkpoint_plugins, load_checkpoint_model
from ..plugin_host import default_host

NAME = "import-checkpoint"
HELP = "convert an original .pt checkpoint to .safetensors (weights-only load, nothing executed)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="OLD.pt", help="original checkpoint dict with model_state_dict")
    parser.add_argument("--out", required=True, metavar="NEW.safetensors", help="where to write the checkpoint")
    parser.add_argument("--context-len", type=int, default=5, help="context length the model was trained with (default 5)")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    target = out if out.name.endswith(".safetensors") else out.with_name(out.name + ".safetensors")
    if target.exists() and not args.force:
        raise InputError(str(target), "already exists (use --force to replace it)")
    host = default_host()
    model, meta = legacy_model(args.checkpoint, context_len=args.context_len)
    meta[META_KEY] = checkpoint_plugins(host, meta["arch"], [])  # the plugin behind its architecture
    path = save_checkpoint(out, model, meta)
    load_checkpoint_model(path, host=host)  # rebuilt by the shared loader, as 5cat and the TUI will
    print(f"wrote {path}")
    return 0
