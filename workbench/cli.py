"""`lvm-workbench`: the TUI with no arguments, a headless run with --run, or a subcommand.

Subcommands live one per module in workbench/commands/; each module has NAME, HELP,
`add_arguments(parser)` and `run(args) -> int`, and is found automatically.
Bad input (lvm_core.errors.InputError) prints one line and exits 2; --debug shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from lvm_core.errors import InputError, InputErrors, PluginFault

from . import commands, exit_codes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lvm-workbench",
        description="Train, watch and gate next-embedding models. With no arguments, opens the workbench screen.",
    )
    # --plan is the same option: torchrun's own parser takes `--run` for its ambiguous `--run-path`
    parser.add_argument("--run", "--plan", dest="run", metavar="PLAN",
                        help="run a TOML plan headless (train, evaluate, gates); under torchrun write --plan")
    parser.add_argument("--run-dir", metavar="DIR", help="with --run: write the run here instead of runs/<name>-<time>")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run from its last checkpoint")
    parser.add_argument("--seeds", metavar="S,S,...", help="with --run: one run per seed into a group of sibling run "
                                                          "directories (overrides the plan's seeds key)")
    parser.add_argument("--seed-splits", action="store_true",
                        help="with --seeds: each seed also seeds the train/val split (the plan key seed_splits)")
    parser.add_argument("--from", dest="resume_from", default="last", metavar="last|best|step-N",
                        help="with --resume: the checkpoint to continue from (default: the newest complete one)")
    parser.add_argument("--device", help="cpu, cuda, cuda:N, mps or auto (overrides the plan)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--plugin-path", action="append", default=[], metavar="DIR",
                        help="a folder of local plugin modules ([plugins] modules, a checkpoint's local model); "
                             "repeatable; the plan's own folder is always searched")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_command_modules(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    if args.plugin_path:
        from .plugin_host import PLUGIN_PATH_ENV

        given = [os.path.abspath(p) for p in args.plugin_path]
        os.environ[PLUGIN_PATH_ENV] = os.pathsep.join([*given, *filter(None, os.environ.get(PLUGIN_PATH_ENV, "").split(os.pathsep))])
    try:
        if getattr(args, "_handler", None) is not None:
            return int(args._handler(args))
        if args.run or args.resume:
            from . import headless

            return int(headless.run_from_args(args))
        from .tui.app import run_app

        return int(run_app())
    except InputError as exc:
        if debug:
            raise
        lines = exc.lines() if isinstance(exc, InputErrors) else [exc.line()]
        for line in lines:
            print(f"error: {line}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    except PluginFault as exc:  # a plugin's bug, named in one line
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return exit_codes.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
