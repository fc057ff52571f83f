"""`lvm-workbench`: the TUI with no arguments, a headless run with --run, or a subcommand.

Subcommands live one per module in workbench/commands/; each module has NAME, HELP,
`add_arguments(parser)` and `run(args) -> int`, and is found automatically.
Every failure prints one line (--debug shows the traceback): bad input exits 2, a refusal of the
machine (no space, permission, read-only, missing device) 4, anything unexpected 1 with its
traceback kept in a file (workbench/exit_codes.py lists them all).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from lvm_core.errors import BAD_PATH_ERRNOS, EnvironmentProblem, InputError, InputErrors, PluginFault, os_error_line
from lvm_core.failures import failure_reason

from . import commands, exit_codes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lvm-workbench",
        description="Train, watch and gate next-embedding models. With no arguments, opens the workbench screen.",
        # no abbreviations: the top-level parser would read a subcommand's `5cat --seed 1` as an
        # ambiguous short form of its own --seeds / --seed-splits and refuse it
        allow_abbrev=False,
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
        return exit_codes.ENVIRONMENT if isinstance(exc, EnvironmentProblem) else exit_codes.BAD_INPUT
    except PluginFault as exc:  # a plugin's bug, named in one line
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return exit_codes.INTERRUPTED
    except OSError as exc:  # the machine refused (or a path that is not there): one line
        if debug:
            raise
        print(f"error: {os_error_line(exc)}", file=sys.stderr)
        return exit_codes.BAD_INPUT if exc.errno in BAD_PATH_ERRNOS else exit_codes.ENVIRONMENT
    except Exception as exc:  # a bug: one line here, the traceback in a file
        if debug:
            raise
        where = getattr(exc, "traceback_file", None) or _keep_traceback_elsewhere(exc)
        print(f"error: unexpected {failure_reason(exc)} (a bug; traceback in {where}; --debug prints it)", file=sys.stderr)
        return exit_codes.ERROR


def _keep_traceback_elsewhere(exc: BaseException) -> str:
    """A command with no run folder keeps its traceback in the temp folder."""
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="lvm-workbench-traceback-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("".join(traceback.format_exception(exc)))
    return path


if __name__ == "__main__":
    sys.exit(main())
