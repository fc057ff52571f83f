"""Run comparison: the original's hand-typed MODEL_COMPARISON_TABLE, made from run directories.

Every number comes from the runs' own files (run.json, plan.resolved.json, metrics.jsonl,
gates.json), so two tables made from the same runs agree, and the copy-last and context-mean
rows were measured on the very samples the model was. `plan_diff` lists the resolved-plan
keys whose values differ between the runs: what was actually changed between two ideas.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError
from .gate_report import doc_score_text
from ..rundir import EVENTS, METRICS, RUN_JSON, RunDir, format_table
from .seed_stats import SEED_KEYS, group_members, group_stats, is_group

#: (column header, key in a row); metric keys are the trainer's flat names
COLUMNS: tuple[tuple[str, str], ...] = (
    ("run", "run"), ("approach", "approach"), ("params", "n_params"), ("epoch", "epoch"),
    ("val cos", "val/cos"), ("val margin_vs_last", "val/margin_vs_last"),
    ("R@5_article", "val/R@5_article"), ("R@1_no_context", "val/R@1_no_context"),
    ("R@5_no_context", "val/R@5_no_context"), ("chance R@5_no_context", "val/chance_R@5_no_context"),
    ("copy-last cos", "val/copy_last/cos"), ("copy-last margin_vs_last", "val/copy_last/margin_vs_last"),
    ("ctx-mean cos", "val/context_mean/cos"), ("ctx-mean margin_vs_last", "val/context_mean/margin_vs_last"),
    ("ridge cos", "val/ridge/cos"), ("frame-w cos", "val/frame_weights/cos"),
    ("val vs baselines", "val/vs_baselines"),
    ("ood cos", "ood/cos"), ("ood margin_vs_last", "ood/margin_vs_last"), ("ood R@5_no_context", "ood/R@5_no_context"),
    ("ood copy-last cos", "ood/copy_last/cos"), ("ood ctx-mean cos", "ood/context_mean/cos"),
    ("ood ridge cos", "ood/ridge/cos"), ("ood frame-w cos", "ood/frame_weights/cos"),
    ("ood vs baselines", "ood/vs_baselines"),
    ("gates", "gates"), ("tripwires", "tripwires"), ("wall s", "elapsed_s"), ("status", "status"),
)
SIGNED = {"val/margin_vs_last", "val/copy_last/margin_vs_last", "val/context_mean/margin_vs_last", "ood/margin_vs_last"}
DIFF_SKIP = ("plugins", "data_fingerprints")


def approach(resolved: dict[str, Any]) -> str:
    """'arch: term + term x w (schedule)': what a person would write in the table's approach column."""
    model = resolved.get("model", {}).get("arch", "?")
    terms = []
    for loss in resolved.get("loss", []):
        t = str(loss.get("name"))
        w = loss.get("weight", 1.0)
        if w != 1.0:
            t += f" x{w:g}"
        sch = loss.get("schedule")
        if sch and sch.get("kind") == "step":
            t += f" ({sch.get('before'):g} -> {sch.get('after'):g} from epoch {sch.get('epoch')})"
        elif sch and sch.get("kind") == "linear":
            t += f" ({sch.get('start'):g} -> {sch.get('end'):g} over epochs {sch.get('start_epoch')}-{sch.get('end_epoch')})"
        if loss.get("control"):
            t += f" (share {loss['control'].get('target_share')})"
        terms.append(t)
    filters = resolved.get("data", {}).get("filter", [])
    extra = f"; {len(filters)} data filter(s)" if filters else ""
    return f"{model}: {' + '.join(terms)}{extra}"


def run_row(path: str | Path, at: str = "last") -> dict[str, Any]:
    """One run's row. `at`: "last" (the final evaluation, which the gates also judged) or
    "best" (the evaluation of the epoch the best checkpoint was selected at)."""
    run = RunDir(path)
    if not (run.path / RUN_JSON).is_file():
        raise InputError(str(run.path), "not a run directory (no run.json)")
    info = run.read_json(RUN_JSON)
    resolved = run.read_json("plan.resolved.json") if (run.path / "plan.resolved.json").is_file() else {}
    evals = [e for e in run.read_jsonl(METRICS) if e.get("kind") == "EvalDone"]
    chosen: dict[str, Any] = {}
    if evals:
        chosen = evals[-1]
        if at == "best":
            best_epoch = (info.get("best") or {}).get("epoch")
            chosen = next((e for e in evals if e.get("epoch") == best_epoch), {})
    row: dict[str, Any] = {"run": run.path.name, "path": str(run.path), "approach": approach(resolved),
                           "n_params": info.get("n_params"), "epoch": chosen.get("epoch"),
                           "status": info.get("status"), "elapsed_s": info.get("elapsed_s")}
    row.update({k: v for k, v in (chosen.get("metrics") or {}).items()})
    for split in ("val", "ood"):
        row[f"{split}/vs_baselines"] = vs_baselines_cell(row, split)
    gates_p = run.path / "gates.json"
    if gates_p.is_file():
        g = run.read_json("gates.json")
        row["gates"] = gates_cell(g)
    fired = [e for e in run.read_jsonl(EVENTS) if e.get("kind") == "Alert" and e.get("code") == "tripwire"]
    row["tripwires"] = len(fired)
    row["resolved"] = resolved
    return row


def gates_cell(doc: dict[str, Any]) -> str:
    """'3/5' for the default A-E battery, '0/2 (A, CM)' for chosen gates (the column is "gates")."""
    text = doc_score_text(doc)
    return text.split(" ", 1)[1] if text.startswith("A-E ") else text.removeprefix("gates ")


def vs_baselines_cell(metrics: dict[str, Any], split: str) -> str | None:
    """'yes +0.004 [+0.001, +0.008] ctx-mean' or 'no ...': the run's verdict against every
    baseline, shown with the gain whose lower bound is lowest (the one that decides)."""
    los = {k[len(f"{split}/gain/"):-len("/lo")]: v for k, v in metrics.items()
           if k.startswith(f"{split}/gain/") and k.endswith("/lo") and isinstance(v, (int, float))}
    if not los:
        return None
    b = min(los, key=lambda k: los[k] if los[k] == los[k] else -math.inf)
    verdict = "yes" if metrics.get(f"{split}/beats_baselines") == 1.0 else "no"
    return (f"{verdict} {_signed(metrics.get(f'{split}/gain/{b}'))} [{_signed(los[b])}, "
            f"{_signed(metrics.get(f'{split}/gain/{b}/hi'))}] vs {b}")


def _signed(v: Any) -> str:
    return "n/a" if v is None or not isinstance(v, (int, float)) or v != v else f"{v:+.4f}"


def run_rows(paths: Sequence[str | Path], at: str = "last") -> list[dict[str, Any]]:
    """Rows of run directories; a seed group's directory stands for its member runs (each row
    remembers its group in "group")."""
    rows = []
    for p in paths:
        if is_group(p):
            members = group_members(p)
            if not members:
                raise InputError(str(p), "a seed group with no finished member run yet")
            for m in members:
                rows.append({**run_row(m, at=at), "group": Path(p).name})
        else:
            rows.append(run_row(p, at=at))
    return rows


def seed_groups(rows: Sequence[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Rows that differ only in their seeds (model seed, split seed, name), in order: the
    rows of one seed group directory, or runs given one by one whose plans match."""
    groups: dict[str, list[dict[str, Any]]] = {}
    names: dict[str, str] = {}
    for r in rows:
        flat = {k: v for k, v in flat_plan(r.get("resolved") or {}).items() if k not in SEED_KEYS}
        key = r.get("group") or json.dumps(flat, sort_keys=True, default=str)
        groups.setdefault(key, []).append(r)
        names.setdefault(key, r.get("group") or str((r.get("resolved") or {}).get("name", r["run"])))
    return [(names[k], v) for k, v in groups.items() if len(v) > 1]


def group_table(stats: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Header plus one row per group and metric: mean +- sd across seeds; then one row per
    group, split and baseline: the baseline's cos and the pooled interval of the gain."""
    table = [["group", "seeds", "what", "mean ± sd", "gain [95% interval]", "seeds > 0", "noise"]]
    for st in stats:
        n = str(len(st["runs"]))
        for m, v in st["metrics"].items():
            table.append([st["group"], n, m, _pm(v), "", "", ""])
        for split, by_b in st["gains"].items():
            for b, g in by_b.items():
                iv = (f"{_signed(g['mean'])} [{_signed(g.get('lo'))}, {_signed(g.get('hi'))}]"
                      if g.get("lo") is not None else f"{_signed(g['mean'])} [n/a]")
                table.append([st["group"], n, f"{split} vs {b} (cos {_pm(st['baselines'][split][b])})",
                              "", iv, f"{g['seeds_above']}/{g['n']}", "within noise" if g["within_noise"] else "beyond"])
    return table


def _pm(v: dict[str, Any]) -> str:
    return "-" if v.get("mean") is None else f"{v['mean']:.4f} ± {v['sd']:.4f}"


def group_stats_of(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [group_stats(name, members) for name, members in seed_groups(rows)]


def render_group_text(rows: Sequence[dict[str, Any]]) -> str:
    stats = group_stats_of(rows)
    if not stats:
        return ""
    return ("seeds (mean ± sd across runs; gains pooled over the runs' samples, whole articles resampled; "
            "'within noise': the interval contains 0 or the seeds disagree in sign):\n"
            + format_table(group_table(stats)) + "\n")


def _cell(key: str, v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if key == "elapsed_s":
            return f"{v:.1f}"
        return f"{v:+.4f}" if key in SIGNED else f"{v:.4f}"
    if isinstance(v, int) and key == "n_params":
        return f"{v:,}"
    return str(v)


def comparison_rows(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Header plus one row per run. Columns every run lacks (no OOD data, no gates) are left out."""
    cols = [(h, k) for h, k in COLUMNS if k in ("run", "approach", "status") or any(r.get(k) is not None for r in rows)]
    return [[h for h, _ in cols]] + [[_cell(k, r.get(k)) for _, k in cols] for r in rows]


def _flatten(obj: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(obj, list) and obj and all(isinstance(x, dict) and "name" in x for x in obj) and prefix == "loss":
        for x in obj:  # losses by name: adding a term shows as one new key, not a shifted list
            _flatten({k: v for k, v in x.items() if k != "name"} or {"weight": None}, f"loss.{x['name']}", out)
    elif isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
        for i, x in enumerate(obj):
            _flatten(x, f"{prefix}[{i}]", out)
    else:
        out[prefix] = obj


def flat_plan(resolved: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _flatten({k: v for k, v in resolved.items() if k not in DIFF_SKIP}, "", out)
    return out


def plan_diff(resolved: Sequence[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """(key, value per run) for every resolved-plan key that is not the same in all runs
    (a key a run lacks shows as None)."""
    flats = [flat_plan(r) for r in resolved]
    keys = sorted(set().union(*flats)) if flats else []
    missing = object()
    out = []
    for k in keys:
        vals = [f.get(k, missing) for f in flats]
        if any(json.dumps(v, sort_keys=True, default=str) != json.dumps(vals[0], sort_keys=True, default=str)
               for v in vals[1:]):
            out.append((k, [None if v is missing else v for v in vals]))
    return out


def diff_rows(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    table = [["plan key", *(r["run"] for r in rows)]]
    for key, vals in plan_diff([r.get("resolved", {}) for r in rows]):
        table.append([key, *("-" if v is None else json.dumps(v) if not isinstance(v, str) else v for v in vals)])
    return table


def render_markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["# Run comparison", "", format_table(comparison_rows(rows), markdown=True), ""]
    lines += ["copy-last, ctx-mean, ridge and frame-w (frame weights; both fitted on each run's train part) are the "
              "baselines on each run's own validation samples; chance is the expected R@k of a random ranking "
              "within the article. 'vs baselines': does the model beat every baseline, with the 95% paired "
              "bootstrap interval (over articles) of the gain that decides.", ""]
    stats = group_stats_of(rows)
    if stats:
        lines += ["## Seeds", "", "Mean ± sd across each group's runs; gains pooled over the runs' samples with whole "
                  "articles resampled; 'within noise': the interval contains 0 or the seeds disagree in sign.", "",
                  format_table(group_table(stats), markdown=True), ""]
    diff = diff_rows(rows)
    lines += ["## Plan differences", ""]
    lines.append(format_table(diff, markdown=True) if len(diff) > 1 else "(the resolved plans are identical)")
    lines += ["", "## Runs", ""] + [f"- {r['run']}: `{r['path']}`" for r in rows]
    return "\n".join(lines) + "\n"


def render_text(rows: Sequence[dict[str, Any]]) -> str:
    diff = diff_rows(rows)
    groups = render_group_text(rows)
    return (format_table(comparison_rows(rows)) + "\n\n" + (groups + "\n" if groups else "") + "plan differences:\n"
            + (format_table(diff) if len(diff) > 1 else "(the resolved plans are identical)") + "\n")


def render_csv(rows: Sequence[dict[str, Any]]) -> str:
    """Full precision, one column per metric key (for pandas / spreadsheets)."""
    buf = io.StringIO()
    keys = [k for _, k in COLUMNS]
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(keys)
    for r in rows:
        w.writerow(["" if r.get(k) is None else r.get(k) for k in keys])
    return buf.getvalue()
