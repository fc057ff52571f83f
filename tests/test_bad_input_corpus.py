"""The bad-input corpus (issue 11): plans, stores, NPZs, checkpoints and command lines that must
each give exit code 2 (4 for a missing device), exactly one line on stderr, no traceback, and
leave every file as it was. `python -m tests.test_bad_input_corpus` prints the table that
docs/reliability.md holds."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import make_tiny_store

GOOD_PLAN = """name = "corpus"
seed = 0
[data]
store = "{store}"
context_len = 3
[model]
arch = "mlp"
params = {{ hidden_dim = 8 }}
[[loss]]
name = "mse"
[train]
epochs = 1
batch_size = 8
device = "cpu"
"""


def store(d: Path, name: str = "store") -> Path:
    return make_tiny_store(d / name, lengths=(12,) * 6, dim=8).path


def plan(d: Path, text: str | None = None, **replace: str) -> str:
    t = GOOD_PLAN.format(store=store(d)) if text is None else text
    for a, b in replace.items():
        t = t.replace(a.replace("_", " ", 0), b)
    p = d / "plan.toml"
    p.write_text(t)
    return str(p)


def edit_manifest(path: Path, **changes) -> Path:
    m = json.loads((path / "manifest.json").read_text())
    m.update(changes)
    (path / "manifest.json").write_text(json.dumps(m))
    return path


def plan_with(d: Path, old: str, new: str) -> str:
    return plan(d, GOOD_PLAN.format(store=store(d)).replace(old, new))


def a_run(d: Path) -> Path:
    """A real finished-then-reopened run folder (one epoch of the good plan)."""
    from workbench.cli import main

    p = plan(d)
    run = d / "run"
    assert main(["--run", p, "--run-dir", str(run)]) == 0
    info = json.loads((run / "run.json").read_text())
    info["status"] = "stopped"
    (run / "run.json").write_text(json.dumps(info))
    return run


def hostile_pt(path: Path, payload: dict | None = None) -> Path:
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {path.parent / 'ran'}",))

    torch.save(payload if payload is not None else {"model_state_dict": Payload()}, path)
    return path


# each case: (group, what, build(tmp) -> argv, expected substring, exit code)
CASES: list[tuple[str, str, object, str, int]] = [
    # ---- plans ---------------------------------------------------------------------------
    ("plan", "plan file missing", lambda d: ["--run", str(d / "nope.toml")], "plan file not found", 2),
    ("plan", "not TOML", lambda d: ["--run", plan(d, "name = [")], "not valid TOML", 2),
    ("plan", "a key given twice", lambda d: ["--run", plan(d, 'name = "a"\nname = "b"')], "not valid TOML", 2),
    ("plan", "binary garbage", lambda d: ["--run", (d / "p.toml").write_bytes(b"\xff\xfe\x00") and str(d / "p.toml")], "p.toml", 2),
    ("plan", "plan is a folder", lambda d: ["--run", str(d)], "", 2),
    ("plan", "unknown top-level key", lambda d: ["--run", plan_with(d, "seed = 0", "seed = 0\nbogus = 1")], "bogus", 2),
    ("plan", "unknown train key", lambda d: ["--run", plan_with(d, "epochs = 1", "epochs = 1\nepoch = 2")], "epoch", 2),
    ("plan", "epochs negative", lambda d: ["--run", plan_with(d, "epochs = 1", "epochs = -1")], "epochs", 2),
    ("plan", "epochs a string", lambda d: ["--run", plan_with(d, "epochs = 1", 'epochs = "two"')], "epochs", 2),
    ("plan", "batch_size 0", lambda d: ["--run", plan_with(d, "batch_size = 8", "batch_size = 0")], "batch_size", 2),
    ("plan", "lr a string", lambda d: ["--run", plan_with(d, 'device = "cpu"', 'device = "cpu"\nlr = "fast"')], "lr", 2),
    ("plan", "unknown architecture", lambda d: ["--run", plan_with(d, 'arch = "mlp"', 'arch = "nope"')], "nope", 2),
    ("plan", "unknown loss", lambda d: ["--run", plan_with(d, 'name = "mse"', 'name = "nope"')], "nope", 2),
    ("plan", "context_len 0", lambda d: ["--run", plan_with(d, "context_len = 3", "context_len = 0")], "context_len", 2),
    ("plan", "unknown select metric", lambda d: ["--run", plan_with(d, 'device = "cpu"', 'device = "cpu"\nselect_metric = "val/nope"')], "val/nope", 2),
    ("plan", "device not a device", lambda d: ["--run", plan_with(d, 'device = "cpu"', 'device = "tpu"')], "tpu", 2),
    ("plan", "store path missing", lambda d: ["--run", plan(d, GOOD_PLAN.format(store=d / "gone"))], "no such store", 2),
    ("plan", "split fractions over 1", lambda d: ["--run", plan_with(d, "context_len = 3", "context_len = 3\n[data.split]\nfractions = { train = 0.9, val = 0.9 }")], "fractions", 2),
    ("plan", "epochs 10**20 (hung)", lambda d: ["--run", plan_with(d, "epochs = 1", "epochs = 100000000000000000000")], "train.epochs: expected <= 100000", 2),
    ("plan", "seed 10**20 (traceback)", lambda d: ["--run", plan_with(d, "seed = 0", "seed = 100000000000000000000")], "seed: expected <= 4294967295", 2),
    ("plan", "lr = 1e400, i.e. inf (diverged)", lambda d: ["--run", plan_with(d, 'device = "cpu"', 'device = "cpu"\nlr = 1e400')], "train.lr: expected a finite number, got inf", 2),
    ("plan", "negative loss weight (trained away)", lambda d: ["--run", plan_with(d, 'name = "mse"', 'name = "mse"\nweight = -1.0')], "loss[0].weight: expected >= 0.0, got -1.0", 2),
    ("plan", "tripwire threshold 1e400, i.e. inf (never fires)", lambda d: ["--run", plan(d, GOOD_PLAN.format(store=store(d)) + '[[tripwire]]\nwhen = "val/cos < 1e400"\n')], "tripwire[0].when: expected a finite threshold", 2),
    ("plan", "tripwire lowers a weight by inf (diverged)", lambda d: ["--run", plan(d, GOOD_PLAN.format(store=store(d)) + '[[tripwire]]\nwhen = "val/cos < 0"\naction = "rollback"\nlower = { loss = "mse", factor = inf }\n')], "tripwire[0].lower.factor: expected a number from 0 to 1", 2),
    ("plan", "tripwire from_epoch 10**20", lambda d: ["--run", plan(d, GOOD_PLAN.format(store=store(d)) + '[[tripwire]]\nwhen = "val/cos < 0"\nfrom_epoch = 100000000000000000000\n')], "tripwire[0].from_epoch: expected an integer from 1 to 100000", 2),
    ("plan", "filter min = nan (keeps no window)", lambda d: ["--run", plan_with(d, "context_len = 3", 'context_len = 3\n[[data.filter]]\nmetric = "last_similarity"\nmin = nan')], "data.filter[0].min: expected a finite number, got nan", 2),
    ("plan", "--run-dir not empty", lambda d: ["--run", plan(d), "--run-dir", str((d / "x").mkdir() or (d / "x" / "f").write_text("") or d / "x")], "not empty", 2),
    ("plan", "--run-dir with --resume", lambda d: ["--resume", str(a_run(d)), "--run-dir", str(d / "y")], "--run-dir", 2),
    # ---- stores at the door of a run ------------------------------------------------------
    ("store", "NaN rows refused before training", lambda d: ["--run", plan(d, GOOD_PLAN.format(store=_nan_store(d)))], "2 row(s) of vectors.npy hold NaN or Inf (first: row 3;", 2),
    ("store", "NaN rows recorded when written", lambda d: ["--run", plan(d, GOOD_PLAN.format(store=_recorded_nan_store(d)))], "2 row(s) of vectors.npy hold NaN or Inf (rows 3, 9; recorded in manifest.json", 2),
    ("store", "info: malformed NaN/Inf record", lambda d: ["data", "info", str(_bad_record(d))], "key 'extra.nonfinite_rows'", 2),
    ("store", "string article ids", lambda d: ["--run", plan(d, GOOD_PLAN.format(store=_string_ids(d)))], "article_ids.npy: expected integers", 2),
    ("store", "format_version \"2\" (run)", lambda d: ["--run", plan(d, GOOD_PLAN.format(store=edit_manifest(store(d), format_version="2")))], "key 'format_version': expected an integer", 2),
    ("store", "info: missing store", lambda d: ["data", "info", str(d / "gone")], "no such store", 2),
    ("store", "info: manifest not JSON", lambda d: ["data", "info", str(_manifest_text(d, "{oops"))], "not valid JSON", 2),
    ("store", "info: manifest a list", lambda d: ["data", "info", str(_manifest_text(d, "[1, 2]"))], "expected a JSON object", 2),
    ("store", "info: manifest keys missing", lambda d: ["data", "info", str(_manifest_text(d, '{"dim": 8}'))], "missing", 2),
    ("store", "info: unknown manifest key", lambda d: ["data", "info", str(edit_manifest(store(d), colour="red"))], "colour", 2),
    ("store", "info: format_version \"2\"", lambda d: ["data", "info", str(edit_manifest(store(d), format_version="2"))], "key 'format_version': expected an integer, got \"2\"", 2),
    ("store", "info: format_version 99", lambda d: ["data", "info", str(edit_manifest(store(d), format_version=99))], "newer than this tool", 2),
    ("store", "info: dim a string", lambda d: ["data", "info", str(edit_manifest(store(d), dim="8"))], "key 'dim': expected an integer", 2),
    ("store", "info: n_chunks negative", lambda d: ["data", "info", str(edit_manifest(store(d), n_chunks=-1))], "non-negative", 2),
    ("store", "info: dim disagrees", lambda d: ["data", "info", str(edit_manifest(store(d), dim=9))], "dimension 8", 2),
    ("store", "info: vectors.npy missing", lambda d: ["data", "info", str(_unlink(store(d), "vectors.npy"))], "vectors.npy", 2),
    ("store", "info: vectors.npy garbage", lambda d: ["data", "info", str(_garbage(store(d), "vectors.npy"))], "vectors.npy", 2),
    ("store", "info: vectors rank 3", lambda d: ["data", "info", str(_npy(store(d), "vectors.npy", np.zeros((72, 2, 4), np.float32)))], "rank 2", 2),
    ("store", "info: vectors int dtype", lambda d: ["data", "info", str(_npy(store(d), "vectors.npy", np.zeros((72, 8), np.int32)))], "float16 or float32", 2),
    ("store", "info: pickled object array", lambda d: ["data", "info", str(_npy(store(d), "article_ids.npy", np.array([object()] * 6, dtype=object)))], "article_ids.npy", 2),
    ("store", "info: string article ids", lambda d: ["data", "info", str(_string_ids(d))], "article_ids.npy: expected integers", 2),
    ("store", "info: offsets not increasing", lambda d: ["data", "info", str(_npy(store(d), "offsets.npy", np.array([0, 12, 12, 36, 48, 60, 72])))], "offsets", 2),
    ("store", "info: duplicate article ids", lambda d: ["data", "info", str(_npy(store(d), "article_ids.npy", np.zeros(6, np.int64)))], "duplicate", 2),
    ("store", "info: corrupt texts.jsonl", lambda d: ["data", "info", str(_texts(d))], "texts.jsonl: line 2: expected one JSON string per line", 2),
    ("store", "validate: string article ids", lambda d: ["data", "validate", str(_string_ids(d))], "article_ids.npy: expected integers", 2),
    ("store", "validate: format_version \"2\"", lambda d: ["data", "validate", str(edit_manifest(store(d), format_version="2"))], "format_version", 2),
    ("store", "validate: corrupt texts.jsonl", lambda d: ["data", "validate", str(_texts(d))], "texts.jsonl", 2),
    ("store", "validate: missing path", lambda d: ["data", "validate", str(d / "gone")], "gone", 2),
    # ---- NPZs ----------------------------------------------------------------------------
    ("npz", "import: missing file", lambda d: ["data", "import", str(d / "gone.npz"), "--out", str(d / "o")], "gone.npz", 2),
    ("npz", "import: empty file", lambda d: ["data", "import", _bytes(d / "e.npz", b""), "--out", str(d / "o")], "is empty", 2),
    ("npz", "import: a text file", lambda d: ["data", "import", _bytes(d / "t.npz", b"hello"), "--out", str(d / "o")], "t.npz", 2),
    ("npz", "import: truncated zip", lambda d: ["data", "import", _truncated_npz(d), "--out", str(d / "o")], "bad.npz", 2),
    ("npz", "import: NaN vectors", lambda d: ["data", "import", _npz(d, nan=True), "--out", str(d / "o")], "NaN", 2),
    ("npz", "import: output exists", lambda d: ["data", "import", _npz(d), "--out", str(store(d))], "already exists", 2),
    ("npz", "export: output exists", lambda d: ["data", "export", str(store(d)), "--out", _bytes(d / "x.npz", b"keep")], "x.npz", 2),
    ("npz", "validate: NaN vectors", lambda d: ["data", "validate", _npz(d, nan=True)], "NaN", 2),
    # ---- checkpoints ---------------------------------------------------------------------
    ("checkpoint", "5cat: model missing", lambda d: ["5cat", "--model", str(d / "gone.safetensors"), "--val", str(store(d))], "not found", 2),
    ("checkpoint", "5cat: model garbage", lambda d: ["5cat", "--model", _bytes(d / "m.safetensors", b"\x00" * 64), "--val", str(store(d))], "m.safetensors", 2),
    ("checkpoint", "5cat: truncated weights", lambda d: ["5cat", "--model", _truncated_ckpt(d), "--val", str(store(d))], "last.safetensors", 2),
    ("checkpoint", "5cat: foreign safetensors", lambda d: ["5cat", "--model", _foreign(d), "--val", str(store(d))], "not an lvm-workbench checkpoint", 2),
    ("checkpoint", "import-checkpoint: os.system payload", lambda d: ["data", "import-checkpoint", str(hostile_pt(d / "evil.pt")), "--out", str(d / "o.safetensors")], "posix.system", 2),
    ("checkpoint", "import-checkpoint: truncated .pt", lambda d: ["data", "import-checkpoint", _bytes(d / "t.pt", b"PK\x03\x04junk"), "--out", str(d / "o.safetensors")], "t.pt", 2),
    ("checkpoint", "resume: hostile state file", lambda d: ["--resume", str(_hostile_state(d))], "posix.system", 2),
    ("checkpoint", "resume: --from step-999", lambda d: ["--resume", str(a_run(d)), "--from", "step-999"], "no checkpoint at step 999", 2),
    ("checkpoint", "resume: --from bogus", lambda d: ["--resume", str(a_run(d)), "--from", "latest"], "expected last, best or step-N", 2),
    ("checkpoint", "resume: completed run", lambda d: ["--resume", str(_completed(d))], "already completed", 2),
    # ---- command lines and run folders ---------------------------------------------------
    ("cli", "resume: no such folder", lambda d: ["--resume", str(d / "gone")], "run.json", 2),
    ("cli", "resume: folder without run.json", lambda d: ["--resume", str(d)], "run.json", 2),
    ("cli", "runs show: no such run", lambda d: ["runs", "show", str(d / "gone")], "gone", 2),
    ("cli", "runs compare: no such run", lambda d: ["runs", "compare", str(d / "gone")], "gone", 2),
    ("cli", "runs compare --markdown onto a folder", lambda d: ["runs", "compare", str(a_run(d)), "--markdown", str(d)], "is a directory", 2),
    ("cli", "diagnose --part nope", lambda d: ["diagnose", str(store(d)), "--part", "nope"], "no split part named 'nope'", 2),
    ("cli", "missing device", lambda d: ["--run", plan(d), "--device", "cuda:7"], "cuda:7", 4),
]


def _recorded_nan_store(d: Path) -> Path:
    from lvm_core.data.store import write_store

    v = np.random.default_rng(0).normal(size=(72, 8))
    v[3, 0], v[9, 2] = np.nan, np.inf
    return write_store(d / "recorded", v, [12] * 6, list(range(6)), dtype="float32").path


def _bad_record(d: Path) -> Path:
    p = store(d, "badrec")
    m = json.loads((p / "manifest.json").read_text())
    m["extra"]["nonfinite_rows"] = {"count": "none", "rows": []}
    (p / "manifest.json").write_text(json.dumps(m))
    return p


def _nan_store(d: Path) -> Path:
    p = store(d, "nan")
    v = np.load(p / "vectors.npy")
    v[3, 0] = np.nan
    v[9, 2] = np.inf
    np.save(p / "vectors.npy", v)
    return p


def _string_ids(d: Path) -> Path:
    p = store(d, "strids")
    np.save(p / "article_ids.npy", np.array([f"a{i}" for i in range(6)]))
    return p


def _manifest_text(d: Path, text: str) -> Path:
    p = store(d)
    (p / "manifest.json").write_text(text)
    return p


def _unlink(p: Path, name: str) -> Path:
    (p / name).unlink()
    return p


def _garbage(p: Path, name: str) -> Path:
    (p / name).write_bytes(b"not numpy")
    return p


def _npy(p: Path, name: str, arr: np.ndarray) -> Path:
    np.save(p / name, arr, allow_pickle=True)
    return p


def _texts(d: Path) -> Path:
    p = store(d, "texts")
    (p / "texts.jsonl").write_text('"one"\n{broken\n')
    return p


def _bytes(p: Path, data: bytes) -> str:
    p.write_bytes(data)
    return str(p)


def _npz(d: Path, nan: bool = False, pickled: bool = False) -> str:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(12, 8)).astype(np.float32)
    if nan:
        v[2, 1] = np.nan
    arrays = {"vectors": v, "article_indices": np.repeat(np.arange(2, dtype=np.int32), 6),
              "chunk_indices": np.tile(np.arange(6, dtype=np.int32), 2)}
    if pickled:
        arrays["metadata"] = np.array([{"a": 1}, None], dtype=object)
    np.savez(d / "in.npz", **arrays)
    return str(d / "in.npz")


def _truncated_npz(d: Path) -> str:
    good = Path(_npz(d))
    (d / "bad.npz").write_bytes(good.read_bytes()[:100])
    good.unlink()
    return str(d / "bad.npz")


def _truncated_ckpt(d: Path) -> str:
    run = a_run(d)
    last = run / "checkpoints" / "last.safetensors"
    out = d / "last.safetensors"
    out.write_bytes(last.read_bytes()[:200])
    return str(out)


def _foreign(d: Path) -> str:
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(d / "f.safetensors"), metadata={"format": "pt"})
    return str(d / "f.safetensors")


def _hostile_state(d: Path) -> Path:
    run = a_run(d)
    from lvm_core.training.checkpointer import Checkpointer

    for g in Checkpointer(run / "checkpoints").generations():
        hostile_pt(g.stem.with_name("model.state.pt"), {"checkpoint_id": _Payload(d / "ran")})
    return run


class _Payload:
    def __init__(self, canary: Path) -> None:
        self.canary = str(canary)

    def __reduce__(self):
        return (os.system, (f"touch {self.canary}",))


def _completed(d: Path) -> Path:
    run = a_run(d)
    info = json.loads((run / "run.json").read_text())
    info["status"] = "completed"
    (run / "run.json").write_text(json.dumps(info))
    return run


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


IDS = [f"{g}:{w}" for g, w, *_ in CASES]


@pytest.mark.parametrize("case", range(len(CASES)), ids=IDS)
def test_bad_input_case(case, tmp_path, capsys, monkeypatch):
    from workbench.cli import main

    group, what, build, expected, code = CASES[case]
    monkeypatch.chdir(tmp_path)
    argv = build(tmp_path)
    capsys.readouterr()
    before = _snapshot(tmp_path)
    rc = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    if argv[:2] == ["data", "validate"] and not err:  # a report on stdout: one error line and the verdict
        lines = [ln for ln in out.splitlines() if ln.startswith("error: ")]
        assert out.splitlines()[-1].startswith("FAILED: "), out
    else:
        lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert expected in lines[0], lines[0]
    assert rc == code
    assert _snapshot(tmp_path) == before, "a file was changed or created"
    assert not (tmp_path / "ran").exists(), "a payload ran"


def table() -> str:
    rows = ["| # | group | input | exit | the line says |", "|---|---|---|---|---|"]
    for i, (group, what, _, expected, code) in enumerate(CASES, 1):
        rows.append(f"| {i} | {group} | {what} | {code} | `{expected}` |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
