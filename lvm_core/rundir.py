"""The run directory: where a run leaves everything a person or a program needs afterwards.

    runs/<name>-<UTC yyyymmdd-HHMMSS>/
      plan.toml            the plan as given
      plan.resolved.json   every default filled in, plugin versions, data fingerprints, split
      run.json             status, timings, versions, seed, split hash, device (rewritten atomically)
      split.json           the article split, written once and read back on resume
      metrics.jsonl        StepLogged / EpochEnded / EvalDone lines (event.to_json()), append-only
      events.jsonl         RunStarted, Alert, CheckpointSaved, GatesDone, RunEnded
      checkpoints/         generations gen-<seq>-step-<N>-<tag>/ and last/best.safetensors (lvm_core/training/checkpointer.py)
      .lock                held (flock) by the process writing the run (lvm_core/runlock.py)
      gates.json           the latest gate battery results
      report.md            plan, data, metrics beside the baselines, gate table

Whole files are written to a temporary name and renamed (lvm_core.atomic); the JSONL logs are
appended one flushed line at a time, and cut back to a checkpoint's step on resume by an atomic
rewrite, so a resumed run never logs a step twice.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from .atomic import TEMP_SUFFIX, remove_temporaries, write_json, write_text
from .errors import InputError
from .evaluation.metric_names import current_name, upgrade_record
from .events import Alert, CheckpointSaved, EpochEnded, EvalDone, Event, GatesDone, RunEnded, RunStarted, StepLogged
from .faults import write_point
from .runlock import LOCK_NAME, RunLock, check_not_busy

METRICS = "metrics.jsonl"
EVENTS = "events.jsonl"
RUN_JSON = "run.json"
GATES_JSON = "gates.json"
METRIC_EVENTS = (StepLogged, EpochEnded, EvalDone)


def utc_stamp(t: float | None = None) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if t is None else t))


def run_dir_names(root: str | Path, name: str, tries: int = 999) -> Iterator[Path]:
    """The names a new run takes, in order: `root/<name>-<UTC yyyymmdd-HHMMSS>`, then -2, -3..."""
    base = Path(root) / f"{name}-{utc_stamp()}"
    for i in range(1, tries + 1):
        yield base if i == 1 else base.with_name(f"{base.name}-{i}")


def new_run_dir(root: str | Path, name: str) -> Path:
    """A fresh directory named by `run_dir_names` (created here, so two runs never share it)."""
    Path(root).mkdir(parents=True, exist_ok=True)
    for path in run_dir_names(root, name):
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise InputError(str(root), f"could not create a fresh run directory named {name}-{utc_stamp()}-N")


def free_run_dir(root: str | Path, name: str) -> Path:
    """The first of `run_dir_names` nothing is at yet (not created: a child process claims it)."""
    return next(p for p in run_dir_names(root, name) if not p.exists())


def claim_run_dir(path: str | Path) -> Path:
    """Use `path` as a new run directory: it may exist only if empty (nothing is overwritten)."""
    path = Path(path)
    if path.is_dir():
        check_not_busy(path)  # a live run there is named, not just "not empty"
    if path.is_dir() and not (path / RUN_JSON).exists():
        _forget_unfinished_setup(path)
    if path.exists() and (not path.is_dir() or any(p.name != LOCK_NAME for p in path.iterdir())):
        raise InputError(str(path), "run directory exists and is not empty (use --resume to continue it, or pick a new --run-dir)")
    path.mkdir(parents=True, exist_ok=True)
    return path


#: what a run's setup writes before run.json (its last file): a folder holding only these is a
#: setup that was killed, and a new run may take the folder
SETUP_FILES = ("plan.toml", "split.json", "plan.resolved.json")


def _forget_unfinished_setup(path: Path) -> None:
    names = [p.name for p in path.iterdir()]
    unfinished = [n for n in names if n in SETUP_FILES or (n.startswith(".") and n.endswith(".tmp"))]
    if unfinished and all(n in unfinished or n == LOCK_NAME for n in names):
        for n in unfinished:
            (path / n).unlink()


def _finite(obj: Any) -> Any:
    """NaN and Inf as null: JSON has no such numbers and readers (jq, pandas) choke on them."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def event_line(event: Event) -> str:
    return json.dumps(_finite(event.to_json()), allow_nan=False, default=str)


class RunDir:
    """Reads and writes the files of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # ---- paths ---------------------------------------------------------------------------
    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def checkpoint(self, tag: str) -> Path:
        """Stem of a checkpoint: `<stem>.safetensors` holds weights, `<stem>.state.pt` the rest."""
        return self.checkpoints / tag

    # ---- whole files ---------------------------------------------------------------------
    def write_text(self, name: str, text: str) -> None:
        write_text(self.path / name, text)

    def write_json(self, name: str, obj: Any) -> None:
        write_json(self.path / name, _finite(obj))

    def read_json(self, name: str) -> dict[str, Any]:
        p = self.path / name
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(str(p), "missing (is this a run directory?)") from None
        except json.JSONDecodeError as exc:
            raise InputError(str(p), f"not valid JSON ({exc})") from None

    def update_run(self, **fields: Any) -> dict[str, Any]:
        """Merge `fields` into run.json (read, update, atomic rewrite)."""
        p = self.path / RUN_JSON
        info = self.read_json(RUN_JSON) if p.exists() else {}
        info.update(fields)
        self.write_json(RUN_JSON, info)
        return info

    # ---- logs ----------------------------------------------------------------------------
    def append(self, name: str, line: str) -> None:
        write_point(self.path / name)
        with open(self.path / name, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()

    def read_jsonl(self, name: str) -> list[dict[str, Any]]:
        p = self.path / name
        if not p.exists():
            return []
        out = []
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(upgrade_record(json.loads(line)))  # names from before the rename, too
            except json.JSONDecodeError as exc:
                raise InputError(str(p), f"not a JSON object ({exc})", f"line {i}") from None
        return out

    def cut_logs(self, step: int) -> dict[str, int]:
        """Drop log lines after `step` (and every RunEnded) so a resumed run appends cleanly.

        Returns how many lines each file lost. A half-written last line (a crash mid-append)
        is dropped too.
        """
        dropped = {}
        for name in (METRICS, EVENTS):
            p = self.path / name
            if not p.exists():
                continue
            keep, lost = [], 0
            for line in p.read_text(encoding="utf-8").splitlines():
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    lost += 1
                    continue
                if obj.get("kind") == "RunEnded" or int(obj.get("step", 0) or 0) > step:
                    lost += 1
                    continue
                keep.append(line)
            write_text(p, "".join(x + "\n" for x in keep))
            dropped[name] = lost
        return dropped


class RunDirSink:
    """The sink that is always on: every event goes to its file in the run directory."""

    def __init__(self, run: RunDir) -> None:
        self.run = run

    def __call__(self, event: Event) -> None:
        if isinstance(event, METRIC_EVENTS):
            self.run.append(METRICS, event_line(event))
            return
        self.run.append(EVENTS, event_line(event))
        if isinstance(event, GatesDone):
            self.run.write_json(GATES_JSON, {**event.results, "epoch": event.epoch, "step": event.step})
        elif isinstance(event, RunStarted):
            self.run.update_run(status="running", device=event.device, device_reason=event.device_reason,
                                total_steps=event.total_steps, epochs=event.epochs)
        elif isinstance(event, CheckpointSaved):
            self.run.update_run(**{f"checkpoint_{event.tag}": {"step": event.step, "epoch": event.epoch,
                                                               "metric": event.metric, "value": event.value}})
        elif isinstance(event, RunEnded):
            info = self.run.read_json(RUN_JSON)
            ended = event.t
            self.run.update_run(status=event.status, step=event.step, epoch=event.epoch, best=event.best,
                                error=event.error, ended=iso_time(ended),
                                elapsed_s=round(info.get("elapsed_before_s", 0.0) + ended - info.get("started_t", ended), 3))
        elif isinstance(event, Alert) and event.level == "error":
            self.run.update_run(last_error=event.message)


def iso_time(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


# ---- summaries: the final table and report.md ------------------------------------------------

#: metric names of lvm_core/evaluation/metric_names.py: two margins and two candidate sets never share a column
TABLE_METRICS = ("cos", "margin_vs_last", "R@5_article", "R@1_no_context", "R@5_no_context", "MRR_no_context")
RANK_COLUMNS = TABLE_METRICS[2:]
MODEL_ROWS = (("model", ""), ("copy_last", "copy_last/"), ("context_mean", "context_mean/"),
              ("ridge", "ridge/"), ("frame_weights", "frame_weights/"))


def latest_eval(metrics_lines: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Metrics of the last EvalDone line (empty when the run never evaluated)."""
    last: dict[str, Any] = {}
    for obj in metrics_lines:
        if obj.get("kind") == "EvalDone":
            last = obj
    return last


def metrics_table(metrics: dict[str, Any], splits: Iterable[str] = ("val", "ood")) -> list[list[str]]:
    """Rows [split, predictor, *TABLE_METRICS] with a chance row per split."""
    rows = [["split", "predictor", *TABLE_METRICS]]
    for split in splits:
        if f"{split}/cos" not in metrics:
            continue
        for label, prefix in MODEL_ROWS:
            if label in ("ridge", "frame_weights") and f"{split}/{prefix}cos" not in metrics:
                continue  # a run from before the fitted baselines
            rows.append([split, label, *(_fmt(metrics.get(f"{split}/{prefix}{m}")) for m in TABLE_METRICS)])
        rows.append([split, "chance", "", "", *(_fmt(metrics.get(f"{split}/chance_{m}")) for m in RANK_COLUMNS)])
    return rows


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not math.isfinite(v):
        return "nan"
    return f"{v:.4f}" if isinstance(v, (int, float)) else str(v)


def format_table(rows: list[list[str]], markdown: bool = False) -> str:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    if markdown:
        lines = ["| " + " | ".join(r[c].ljust(widths[c]) for c in range(len(r))) + " |" for r in rows]
        lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
        return "\n".join(lines)
    return "\n".join("  ".join(r[c].rjust(widths[c]) if c > 1 else r[c].ljust(widths[c]) for c in range(len(r))).rstrip()
                     for r in rows)


def write_report(run: RunDir) -> str:
    """Write report.md (atomically) and return its text."""
    text = render_report(run)
    run.write_text("report.md", text)
    return text


def render_report(run: RunDir) -> str:
    """The Markdown summary of a run, from its files alone (so any run, even a running one, has one)."""
    info = run.read_json(RUN_JSON)
    metrics = latest_eval(run.read_jsonl(METRICS)).get("metrics", {})
    lines = [f"# Run {info.get('name', run.path.name)}", "",
             f"- status: **{info.get('status')}** at epoch {info.get('epoch')} / step {info.get('step')}",
             f"- device: {info.get('device')} ({info.get('device_reason')})",
             f"- seed: {info.get('seed')}; split sha256: {str(info.get('split_sha256', ''))[:16]}",
             f"- model: {info.get('model')}; parameters: {info.get('n_params')}",
             f"- started {info.get('started')}, ended {info.get('ended')}, {info.get('elapsed_s')} s"]
    best = info.get("best") or {}
    if best:
        lines.append(f"- best checkpoint: {current_name(str(best.get('metric')))} = {_fmt(best.get('value'))} "
                     f"at epoch {best.get('epoch')}")
    if info.get("error"):
        lines.append(f"- error: {info['error']}")
    lines += ["", "## Data", ""]
    for name, fp in (info.get("data") or {}).items():
        lines.append(f"- {name}: `{fp.get('path')}` ({fp.get('n_articles')} articles, {fp.get('n_chunks')} chunks, "
                     f"D = {fp.get('dim')}, embedder {fp.get('embedder')})")
    lines += ["", "## Last evaluation beside the baselines", ""]
    table = metrics_table(metrics)
    lines.append(format_table(table, markdown=True) if len(table) > 1 else "(no evaluation yet)")
    gates_p = run.path / GATES_JSON
    if gates_p.exists():
        from .evaluation.gate_report import doc_score_text, relative_text

        gates = run.read_json(GATES_JSON)
        rel = relative_text(gates.get("beats_baselines"))
        lines += ["", "## Gates", "", f"score {doc_score_text(gates)}, "
                  f"passed: {gates.get('passed')} (epoch {gates.get('epoch')}){'; ' + rel if rel else ''}", ""]
        rows = [["gate", "title", "passed", "note"]]
        rows += [[k, str(g.get("title", "")), str(g.get("passed")), str(g.get("note") or "")]
                 for k, g in (gates.get("gates") or {}).items()]
        if len(rows) > 1:
            lines.append(format_table(rows, markdown=True))
    alerts = [e for e in run.read_jsonl(EVENTS) if e.get("kind") == "Alert"]
    if alerts:
        lines += ["", "## Alerts", ""]
        lines += [f"- epoch {a.get('epoch')}, step {a.get('step')}: {a.get('level')} {a.get('code')}: {a.get('message')}" for a in alerts]
    return "\n".join(lines) + "\n"


def finish_interrupted_end(run: RunDir) -> str:
    """A completed run killed (or out of space) while writing its last files: remove the
    temporaries it left anywhere in its folder and write its report.md again (from the run's
    files). Returns what was done, '' when the run was whole (then nothing is touched)."""
    temps = [p for p in run.path.rglob(f".*{TEMP_SUFFIX}")]
    if not temps and (run.path / "report.md").is_file():
        return ""
    lock = RunLock(run.path).acquire()  # a live process in this folder is named, not raced
    try:
        gone = remove_temporaries(run.path, recursive=True)
        write_report(run)
    finally:
        lock.release()
    return (f"removed {len(gone)} temporary file(s) a killed writer left ({', '.join(gone[:3])}"
            f"{', ...' if len(gone) > 3 else ''}) and " if gone else "") + "wrote its report.md"
