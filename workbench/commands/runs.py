"""`lvm-workbench runs ls [DIR]`, `runs show RUN` and `runs compare RUN...`: the runs on disk,
read from their files.

There is no database: every run directory describes itself (run.json, metrics.jsonl, gates.json),
so listing and showing are reads, and a run a headless process is still writing shows as running.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lvm_core.atomic import write_json, write_text
from lvm_core.errors import InputError
from lvm_core.evaluation.compare import group_stats_of, render_csv, render_markdown, render_text, run_rows
from lvm_core.rundir import METRICS, RUN_JSON, RunDir, format_table, latest_eval, render_report
from lvm_core.run_index import scan_runs

NAME = "runs"
HELP = "list run directories (runs ls [DIR]), show one run (runs show RUN), compare runs (runs compare RUN...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="runs_action", metavar="ACTION", required=True)
    ls = sub.add_parser("ls", help="one line per run: status, progress, val cos and margin_vs_last beside copy-last")
    ls.add_argument("dir", nargs="?", default="runs", help="folder holding run directories (default: runs)")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show = sub.add_parser("show", help="a run's status, data, best checkpoint, last metrics beside the baselines, gates")
    show.add_argument("run", help="a run directory")
    show.add_argument("--json", action="store_true", help="print run.json plus the last evaluation as JSON")
    cmp_ = sub.add_parser("compare", help="the comparison table of several runs beside their baselines, and their plan differences")
    cmp_.add_argument("runs", nargs="+", metavar="RUN", help="run directories or seed-group directories (--seeds)")
    cmp_.add_argument("--markdown", metavar="OUT.md", help="also write the table and the plan differences as Markdown")
    cmp_.add_argument("--csv", metavar="OUT.csv", help="also write the table as CSV (full precision)")
    cmp_.add_argument("--json", metavar="OUT.json", help="also write the rows and the seed-group statistics as JSON")
    cmp_.add_argument("--at", choices=("last", "best"), default="last",
                      help="which evaluation of each run: the last (default; the one the gates judged) or the best checkpoint's")


def _fmt(v: object, spec: str = ".4f") -> str:
    return "-" if v is None else format(v, spec) if isinstance(v, (int, float)) else str(v)


def list_runs(root: Path) -> list[dict]:
    """A summary of every run directory under `root` (seed groups' members too), newest first:
    lvm_core.run_index's reading, the one the TUI's Runs screen lists."""
    if not root.is_dir():
        raise InputError(str(root), "no such folder (runs are written to ./runs by default)")
    out = []
    for s in scan_runs(root):
        if s.problem:
            out.append({"run": s.label, "status": f"unreadable ({s.problem})"})
            continue
        last = s.val
        out.append({"run": s.label, "status": s.status, "model": s.arch or None, "epoch": s.epoch, "epochs": s.epochs,
                    "created": s.created or None, "val/cos": last.get("val/cos"),
                    "val/margin_vs_last": last.get("val/margin_vs_last"),
                    "val/R@5_no_context": last.get("val/R@5_no_context"),
                    "val/copy_last/margin_vs_last": last.get("val/copy_last/margin_vs_last"),
                    "best": s.best.get("value")})
    return out


def run(args: argparse.Namespace) -> int:
    if args.runs_action == "ls":
        rows = list_runs(Path(args.dir))
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        if not rows:
            print(f"no runs in {args.dir}")
            return 0
        table = [["RUN", "STATUS", "MODEL", "EPOCH", "VAL COS", "MARGIN_VS_LAST", "R@5_NO_CONTEXT",
                  "COPY-LAST MARGIN_VS_LAST", "BEST"]]
        for r in rows:
            epoch = f"{_fmt(r.get('epoch'), '')}/{_fmt(r.get('epochs'), '')}" if r.get("epochs") else "-"
            table.append([r["run"], str(r.get("status")), str(r.get("model") or "-"), epoch, _fmt(r.get("val/cos")),
                          _fmt(r.get("val/margin_vs_last"), "+.4f"), _fmt(r.get("val/R@5_no_context")),
                          _fmt(r.get("val/copy_last/margin_vs_last"), "+.4f"), _fmt(r.get("best"))])
        print(format_table(table))
        return 0

    if args.runs_action == "compare":
        rows = run_rows(args.runs, at=args.at)
        print(render_text(rows), end="")
        if args.json:
            write_json(Path(args.json), {"runs": [{k: v for k, v in r.items() if k != "resolved"} for r in rows],
                                         "groups": group_stats_of(rows)})
        if args.markdown:
            write_text(Path(args.markdown), render_markdown(rows))
        if args.csv:
            write_text(Path(args.csv), render_csv(rows))
        return 0

    path = Path(args.run)
    rd = RunDir(path)
    info = rd.read_json(RUN_JSON)
    last = latest_eval(rd.read_jsonl(METRICS))
    if args.json:
        print(json.dumps({"run": info, "last_eval": last}, indent=2))
        return 0
    print(render_report(rd), end="")
    return 0
