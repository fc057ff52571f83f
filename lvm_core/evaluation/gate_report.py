"""The 5CAT gate table as text: one row per threshold check, the model beside copy-last, the
context mean and the oracle on the same samples. Used by `lvm-workbench 5cat`, the headless
trainer and report.md, so every screen shows the same table."""

from __future__ import annotations

import math
from typing import Any

from .battery import MODEL, BatteryResult, score_text

GREEN, RED, DIM, RESET = "\x1b[32m", "\x1b[31m", "\x1b[2m", "\x1b[0m"


def _fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x + 0.0:.3f}".replace("-0.000", "0.000")


def _verdict(passed: bool | None) -> str:
    return "skip" if passed is None else ("PASS" if passed else "FAIL")


def gate_rows(result: BatteryResult) -> list[dict[str, Any]]:
    """One dict per check: gate, split, metric, rule, values per predictor, verdict per predictor."""
    rows = []
    for g in result.gates:
        verdicts = {p: result.verdicts[p][g.key] for p in result.predictors}
        if not verdicts[MODEL].checks:
            rows.append({"gate": f"{g.key} {g.title}", "split": "-", "metric": verdicts[MODEL].note, "rule": "",
                         "values": {}, "passed": {p: None for p in verdicts}})
            continue
        for i, check in enumerate(verdicts[MODEL].checks):
            rows.append({
                "gate": f"{g.key} {g.title}" if i == 0 else "",
                "split": check.split, "metric": check.metric, "rule": f"{check.op} {check.threshold:g}",
                "values": {p: v.checks[i].value for p, v in verdicts.items()},
                "passed": {p: v.checks[i].passed for p, v in verdicts.items()},
            })
    return rows


def relative_text(summary: dict[str, Any] | None) -> str:
    """'beats baselines: val yes [+0.001, +0.012], ood no [-0.004, +0.002] (vs context_mean)'
    from BatteryResult.relative_summary (or a gates.json "beats_baselines"); '' without one.
    Each interval is against the baseline whose lower end is lowest (the one that decides)."""
    if not summary:
        return ""
    parts = []
    for split, v in summary["splits"].items():
        if v.get("vs") is None:
            parts.append(f"{split} n/a")
            continue
        lo, hi = v.get("lo"), v.get("hi")
        iv = "[n/a]" if lo is None or hi is None else f"[{lo:+.3f}, {hi:+.3f}]"
        parts.append(f"{split} {'yes' if v['passed'] else 'no'} {iv} vs {v['vs']}")
    return "beats baselines: " + ", ".join(parts)


def scored_keys(doc: dict[str, Any]) -> list[str]:
    """The gates a gates.json document's score counts ("scored_gates"; in a document written
    before that key, its absolute gates in battery order)."""
    if isinstance(doc.get("scored_gates"), list):
        return [str(k) for k in doc["scored_gates"]]
    return [k for k, g in (doc.get("gates") or {}).items() if isinstance(g, dict) and not g.get("relative")]


def doc_score_text(doc: dict[str, Any]) -> str:
    """`score_text` of a gates.json document (or a GatesDone event's results)."""
    return score_text(doc.get("score"), doc.get("max_score"), scored_keys(doc))


def summary_line(result: BatteryResult) -> str:
    mode = "legacy" if result.config.get("legacy") else "standard"
    n = result.max_score
    base = ", ".join(f"{p} {result.score(p)}/{n}" for p in result.predictors if p != MODEL)
    rel = relative_text(result.relative_summary())
    keys = [g.key for g in result.scored_gates]
    return (f"5CAT ({mode}): {'PASS' if result.passed else 'FAIL'}, {score_text(result.score(), n, keys)} "
            f"(pass needs all {n}){'; ' + rel if rel else ''}; baselines: {base}")


def nonfinite_line(result: BatteryResult) -> str:
    """"non-finite predictions: model val 740, ood 789" when any predictor made one, else ""."""
    parts = []
    for p in result.predictors:
        counts = result.nonfinite(p)
        if any(counts.values()):
            parts.append(f"{p} " + ", ".join(f"{sp} {n} of {result.splits[sp]['samples']}" for sp, n in counts.items()))
    if not parts:
        return ""
    return ("non-finite predictions: " + "; ".join(parts)
            + " (NaN, inf or zero norm: scored cos 0, ranked last, and every check that reads one fails)")


def console_table(result: BatteryResult, color: bool = False) -> str:
    preds = result.predictors
    header = ["gate", "split", "metric", "rule", *preds, "verdict"]
    body = []
    for r in gate_rows(result):
        cells = [r["gate"], r["split"], r["metric"], r["rule"]]
        for p in preds:
            v = _fmt(r["values"].get(p))
            mark = "" if r["passed"].get(p) is None else ("✓" if r["passed"][p] else "✗")
            cells.append(f"{v} {mark}".rstrip())
        cells.append(_verdict(r["passed"].get(MODEL)))
        body.append(cells)
    widths = [max(len(str(c[i])) for c in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    for cells in body:
        line = "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))
        if color:
            v = cells[-1]
            tint = GREEN if v == "PASS" else RED if v == "FAIL" else DIM
            line = line[: -widths[-1]] + tint + v.ljust(widths[-1]) + RESET
        lines.append(line.rstrip())
    summary = summary_line(result)
    if color:
        summary = (GREEN if result.passed else RED) + summary + RESET
    lines += ["", "(✓/✗ after a value: that predictor passes/fails the check; samples per split: "
              + ", ".join(f"{k} {v['samples']} from {v['articles']} articles" for k, v in result.splits.items()) + ")",
              summary]
    if nonfinite_line(result):
        lines.append(nonfinite_line(result))
    return "\n".join(lines)


def markdown(result: BatteryResult, title: str = "5CAT gate battery", about: dict[str, Any] | None = None) -> str:
    preds = result.predictors
    out = [f"# {title}", "", f"**{summary_line(result)}**", ""]
    if nonfinite_line(result):
        out += [f"**{nonfinite_line(result)}**", ""]
    for k, v in (about or {}).items():
        out.append(f"- {k}: {v}")
    cfg = result.config
    out += [f"- mode: {'legacy (the original definitions, docs/5cat.md)' if cfg.get('legacy') else 'standard'}",
            f"- samples per split: {cfg['samples']} requested; horizon {cfg['horizon']}; seed {cfg['seed']}"]
    for name, s in result.splits.items():
        out.append(f"- {name}: {s['samples']} samples from {s['articles']} articles of `{s['store']}`")
    out += ["", "| gate | split | metric | rule | " + " | ".join(preds) + " | verdict |",
            "|" + "---|" * (5 + len(preds))]
    for r in gate_rows(result):
        vals = [f"{_fmt(r['values'].get(p))}{'' if r['passed'].get(p) is None else (' ✓' if r['passed'][p] else ' ✗')}"
                for p in preds]
        out.append(f"| {r['gate']} | {r['split']} | {r['metric']} | {r['rule']} | " + " | ".join(vals)
                   + f" | {_verdict(r['passed'].get(MODEL))} |")
    out += ["", "## All metrics (model)", ""]
    for g in result.gates:
        for split, by_pred in result.metrics[g.key].items():
            vals = ", ".join(f"{k} {_fmt(v)}" for k, v in by_pred[MODEL].items())
            out.append(f"- **{g.key}** {split}: {vals}")
    return "\n".join(out) + "\n"
