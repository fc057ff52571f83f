"""`runs compare`: the comparison table made from real run directories (tiny plans on the bundled
demo store, with the OOD store and a small gate battery), every cell checked against the runs'
own files, the plan differences, and the Markdown / CSV outputs."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from lvm_core.evaluation.compare import plan_diff, run_row
from tests.conftest import DEMO_STORE, OOD_STORE
from workbench.cli import main

torch.set_num_threads(1)

PLAN = """\
name = "{name}"
seed = 0
[data]
store = "{store}"
ood = "{ood}"
context_len = 5
[model]
arch = "mlp"
params = {{ hidden_dim = 32 }}
[[loss]]
name = "cosine"
{extra_loss}
[train]
epochs = 2
batch_size = 64
lr = 2e-3
device = "cpu"
threads = 1
log_every = 50
[eval]
max_samples = 150
{extra}
"""

MARGIN = """[[loss]]
name = "directional_margin"
weight = 0.3
params = { margin = 0.05 }
schedule = { kind = "step", epoch = 2, before = 0.0, after = 0.3 }
"""
GATES = """[gates]
samples = 60
horizon = 2
[[tripwire]]
when = "val/cos > -2"
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    out = []
    for name, extra_loss, extra in (("plain", "", ""), ("guarded", MARGIN, GATES)):
        p = root / f"{name}.toml"
        p.write_text(PLAN.format(name=name, store=DEMO_STORE, ood=OOD_STORE, extra_loss=extra_loss, extra=extra))
        assert main(["--run", str(p), "--run-dir", str(root / name), "--device", "cpu"]) == 0
        out.append(root / name)
    return out


def _last_eval(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()
            if json.loads(x)["kind"] == "EvalDone"][-1]


def test_rows_come_from_the_runs_files(runs):
    plain, guarded = (run_row(r) for r in runs)
    ev = _last_eval(runs[1])
    assert guarded["epoch"] == ev["epoch"] == 2
    for key in ("val/cos", "val/margin_vs_last", "val/R@5_article", "val/R@1_no_context", "val/R@5_no_context",
                "val/chance_R@5_no_context", "val/copy_last/cos", "val/context_mean/margin_vs_last", "ood/cos",
                "ood/margin_vs_last"):
        assert guarded[key] == ev["metrics"][key]
    info = json.loads((runs[1] / "run.json").read_text())
    gates = json.loads((runs[1] / "gates.json").read_text())
    assert guarded["n_params"] == info["n_params"] > 0 and guarded["status"] == "completed"
    assert guarded["gates"] == f"{gates['score']}/{gates['max_score']}" and "gates" not in plain
    assert guarded["tripwires"] == 2 and plain["tripwires"] == 0  # "val/cos > -2" fired at both epochs
    assert guarded["approach"] == "mlp: cosine + directional_margin x0.3 (0 -> 0.3 from epoch 2)"
    assert plain["approach"] == "mlp: cosine"
    # baselines on the same data: both runs used the same split and samples
    assert plain["val/copy_last/cos"] == guarded["val/copy_last/cos"]


def test_best_picks_the_evaluation_of_the_best_epoch(runs):
    info = json.loads((runs[0] / "run.json").read_text())
    row = run_row(runs[0], at="best")
    assert row["epoch"] == info["best"]["epoch"] and row[info["best"]["metric"]] == pytest.approx(info["best"]["value"])


def test_plan_diff_names_exactly_what_changed(runs):
    diff = dict(plan_diff([run_row(r)["resolved"] for r in runs]))
    assert diff["name"] == ["plain", "guarded"]
    assert diff["loss.directional_margin.weight"] == [None, 0.3]
    assert diff["loss.directional_margin.schedule.after"] == [None, 0.3]
    assert diff["gates.samples"] == [None, 60]
    assert diff["tripwire[0].when"] == [None, "val/cos > -2.0"]
    assert "loss.cosine.weight" not in diff and "train.lr" not in diff and "data.store" not in diff
    assert not any(k.startswith("plugins") for k in diff)


def test_cli_prints_and_writes_markdown_and_csv(runs, tmp_path, capsys):
    md, cs = tmp_path / "cmp.md", tmp_path / "cmp.csv"
    assert main(["runs", "compare", *map(str, runs), "--markdown", str(md), "--csv", str(cs)]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    for col in ("val cos", "val margin_vs_last", "R@5_article", "R@1_no_context", "R@5_no_context",
                "chance R@5_no_context", "copy-last cos", "ctx-mean cos", "ood cos",
                "gates", "wall s", "status"):
        assert col in header
    ev = _last_eval(runs[1])["metrics"]
    guarded_line = next(line for line in out.splitlines() if line.startswith("guarded"))
    assert f"{ev['val/cos']:.4f}" in guarded_line and f"{ev['val/margin_vs_last']:+.4f}" in guarded_line
    assert "plan differences:" in out and "loss.directional_margin.weight" in out
    text = md.read_text()
    assert text.startswith("# Run comparison") and "| run " in text and "## Plan differences" in text
    rows = list(csv.DictReader(cs.open()))
    assert [r["run"] for r in rows] == ["plain", "guarded"]
    assert float(rows[1]["val/cos"]) == ev["val/cos"]  # full precision


def test_a_folder_that_is_not_a_run_is_bad_input(tmp_path, capsys):
    assert main(["runs", "compare", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a run directory (no run.json)" in err and len(err.strip().splitlines()) == 1


def _as_before_the_rename(metrics: dict) -> dict:
    """A record as an old trainer wrote it: margin, R@k for the article, no no-context ranks."""
    from lvm_core.evaluation.metric_names import TRAINER_RENAMED

    back = {new: old for old, new in TRAINER_RENAMED.items()}
    out = {}
    for k, v in metrics.items():
        parts = k.split("/")
        if parts[0] in ("val", "ood") and parts[-1].endswith("_no_context"):
            continue
        if parts[0] in ("val", "ood") and parts[-1] in back:
            k = "/".join([*parts[:-1], back[parts[-1]]])
        out[k] = v
    return out


def test_a_run_folder_from_before_the_rename_compares_under_the_new_names(runs, tmp_path, capsys):
    import shutil

    old = tmp_path / "old-run"
    shutil.copytree(runs[1], old)
    lines = [json.loads(x) for x in (old / "metrics.jsonl").read_text().splitlines()]
    for rec in lines:
        if "metrics" in rec:
            rec["metrics"] = _as_before_the_rename(rec["metrics"])
    assert any("val/margin" in r.get("metrics", {}) for r in lines)
    (old / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    info = json.loads((old / "run.json").read_text())
    info["best"]["metric"] = "val/margin"
    (old / "run.json").write_text(json.dumps(info))
    new_row, old_row = run_row(runs[1]), run_row(old)
    for key in ("val/margin_vs_last", "val/R@5_article", "val/copy_last/margin_vs_last", "ood/margin_vs_last"):
        assert old_row[key] == new_row[key], key
    assert "val/margin" not in old_row and "val/R@5_no_context" not in old_row  # never logged then: shown as -
    assert main(["runs", "compare", str(old), str(runs[1])]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("old-run"))
    assert f"{new_row['val/margin_vs_last']:+.4f}" in line
    assert main(["runs", "show", str(old)]) == 0
    assert "best checkpoint: val/margin_vs_last" in capsys.readouterr().out
