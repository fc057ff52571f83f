"""Training under torchrun with 2 gloo processes on CPU against one process on the same plan.

The plan (a tiny MLP without dropout on the bundled KJV store) is small enough for the 2-core CI
machine: each launch takes a few seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from lvm_core.errors import InputError
from lvm_core.training import distributed
from lvm_core.training.distributed import Dist
from workbench import cli

from .conftest import OOD_STORE

TESTS = Path(__file__).resolve().parent


def write_plan(path: Path, *, epochs: int = 3, batch_size: int = 64, plugins: bool = False) -> Path:
    path.write_text(f"""
name = "ddp"
seed = 3
{'[plugins]' + chr(10) + 'modules = ["tests._ddp_test_plugin"]' if plugins else ''}
[data]
store = "{OOD_STORE}"
context_len = 5
[data.split]
fractions = {{ train = 0.8, val = 0.2 }}
seed = 0
[model]
arch = "mlp"
params = {{ hidden_dim = 32, dropout = 0.0 }}
[[loss]]
name = "cosine"
{'[[loss]]' + chr(10) + 'name = "rows_seen"' if plugins else ''}
[train]
epochs = {epochs}
batch_size = {batch_size}
lr = 1e-3
warmup_steps = 2
threads = 1
log_every = 4
device = "cpu"
[eval]
max_samples = 150
[gates]
samples = 60
horizon = 2
required = false
""")
    return path


def torchrun(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(TESTS.parent), os.environ.get("PYTHONPATH", "")]), **env}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "workbench.cli", *args]
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300)


def weights(run_dir: Path, tag: str = "last") -> dict[str, np.ndarray]:
    return load_file(str(run_dir / "checkpoints" / f"{tag}.safetensors"))


def lines(run_dir: Path, name: str) -> list[dict]:
    return [json.loads(l) for l in (run_dir / name).read_text().splitlines() if l.strip()]


def assert_close_weights(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=2e-5, err_msg=k)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path, Path]:
    """One plan run with one process (in this process) and with two under torchrun."""
    root = tmp_path_factory.mktemp("ddp")
    plan = write_plan(root / "plan.toml", plugins=True)
    for d in ("rows1", "rows2"):
        (root / d).mkdir()
    os.environ["LVM_TEST_ROWS_DIR"] = str(root / "rows1")
    try:
        assert cli.main(["--run", str(plan), "--run-dir", str(root / "single")]) == 0
    finally:
        del os.environ["LVM_TEST_ROWS_DIR"]
    done = torchrun(["--plan", str(plan)], cwd=root, LVM_TEST_ROWS_DIR=str(root / "rows2"))
    assert done.returncode == 0, done.stderr[-3000:]
    runs = sorted((root / "runs").iterdir())
    assert len(runs) == 1, runs  # the run folder is created once, by rank 0
    return root, root / "single", runs[0]


def test_two_processes_give_the_weights_of_one_for_the_same_global_batch(reference):
    _, single, double = reference
    assert_close_weights(weights(single), weights(double))
    assert_close_weights(weights(single, "best"), weights(double, "best"))
    assert json.loads((double / "run.json").read_text())["world_size"] == 2


def test_each_rank_trains_on_its_own_half_of_every_global_batch(reference):
    root, _, _ = reference
    read = lambda p: [json.loads(l) for l in p.read_text().splitlines()]
    single = read(root / "rows1" / "rank0.jsonl")
    r0, r1 = read(root / "rows2" / "rank0.jsonl"), read(root / "rows2" / "rank1.jsonl")
    assert len(single) == len(r0) == len(r1) > 0
    for whole, a, b in zip(single, r0, r1):
        assert whole["step"] == a["step"] == b["step"]
        assert len(a["rows"]) == len(b["rows"]) == len(whole["rows"]) // 2
        assert a["rows"] + b["rows"] == whole["rows"]  # slices of the same seeded shuffle, in order


def test_validation_and_gates_gathered_equal_the_single_process_numbers(reference):
    _, single, double = reference
    ev1 = [e for e in lines(single, "metrics.jsonl") if e["kind"] == "EvalDone"]
    ev2 = [e for e in lines(double, "metrics.jsonl") if e["kind"] == "EvalDone"]
    assert [e["step"] for e in ev1] == [e["step"] for e in ev2] and len(ev1) == 3
    for a, b in zip(ev1, ev2):
        assert a["metrics"].keys() == b["metrics"].keys()
        for k in a["metrics"]:
            assert a["metrics"][k] == pytest.approx(b["metrics"][k], abs=1e-4, nan_ok=True), k
    g1, g2 = (json.loads((r / "gates.json").read_text()) for r in (single, double))
    assert g1["score"] == g2["score"] and g1["splits"] == g2["splits"]
    a, b = numbers(g1["gates"]), numbers(g2["gates"])
    assert a.keys() == b.keys() and len(a) > 20
    for k in a:
        assert a[k] == pytest.approx(b[k], abs=1e-4, nan_ok=True), k


def numbers(obj, prefix: str = "") -> dict[str, float]:
    """Every numeric leaf of a JSON document, by its path."""
    if isinstance(obj, dict):
        return {k: v for key, val in obj.items() for k, v in numbers(val, f"{prefix}/{key}").items()}
    if isinstance(obj, list):
        return {k: v for i, val in enumerate(obj) for k, v in numbers(val, f"{prefix}/{i}").items()}
    return {prefix: float(obj)} if isinstance(obj, (int, float)) and not isinstance(obj, bool) else {}


def test_rank_zero_alone_writes_every_line_once(reference):
    _, single, double = reference
    steps1 = [e["step"] for e in lines(single, "metrics.jsonl") if e["kind"] == "StepLogged"]
    steps2 = [e["step"] for e in lines(double, "metrics.jsonl") if e["kind"] == "StepLogged"]
    assert steps1 == steps2 and len(steps2) == len(set(steps2))
    ck1 = [e["tag"] for e in lines(single, "events.jsonl") if e["kind"] == "CheckpointSaved"]
    ck2 = [e["tag"] for e in lines(double, "events.jsonl") if e["kind"] == "CheckpointSaved"]
    assert ck1 == ck2


def test_a_killed_torchrun_job_resumes_to_the_weights_of_an_uninterrupted_one(reference):
    root, _, double = reference
    killed = torchrun(["--plan", str(root / "plan.toml"), "--run-dir", str(root / "killed")], cwd=root,
                      LVM_TEST_KILL_AFTER_LAST="1")
    assert killed.returncode != 0
    run = root / "killed"
    assert (run / "killed").exists()
    assert json.loads((run / "run.json").read_text())["status"] in ("running", "failed")  # rank 0 records the failure it saw
    assert [e["epoch"] for e in lines(run, "metrics.jsonl") if e["kind"] == "EpochEnded"] == [1]

    resumed = torchrun(["--resume", str(run)], cwd=root)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and len(info["resumes"]) == 1
    assert_close_weights(weights(double), weights(run))
    steps = [e["step"] for e in lines(run, "metrics.jsonl") if e["kind"] == "StepLogged"]
    assert len(steps) == len(set(steps))


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through /proc")
def test_shutdown_ends_the_process_groups_threads_after_ddp(tmp_path):
    """DDP imports torch._dynamo; imported after the group existed, it kept the group alive past
    shutdown, and a gloo worker freeing a finished broadcast at interpreter exit aborted the
    process (a resumed torchrun job failed that way on a fresh clone)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "tests._ddp_shutdown_probe"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LVM_TEST_PROBE_DIR": str(tmp_path), "PYTHONPATH": os.pathsep.join(
        [str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in reports] == [0, 1]
    for r in reports:
        assert r["after"] == r["before"], r


def test_resume_with_another_world_size_is_refused_in_one_line(reference, capsys):
    _, _, double = reference
    info = json.loads((double / "run.json").read_text())
    (double / "run.json").write_text(json.dumps({**info, "status": "stopped"}))
    try:
        assert cli.main(["--resume", str(double)]) == 2
    finally:
        (double / "run.json").write_text(json.dumps(info))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "started with 2 process(es)" in err[0] and "--nproc-per-node 2" in err[0]


# ---- the pieces, in one process --------------------------------------------------------------

def test_env_parsing_and_bad_values():
    assert distributed.from_env({}) == distributed.SINGLE
    assert distributed.from_env({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"}) == Dist(2, 4, 0)
    with pytest.raises(InputError, match="RANK"):
        distributed.from_env({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"})
    with pytest.raises(InputError, match="WORLD_SIZE"):
        distributed.from_env({"WORLD_SIZE": "two", "RANK": "0", "LOCAL_RANK": "0"})


def test_shares_cover_every_item_once_in_order():
    for n in (0, 1, 5, 7, 64):
        for world in (1, 2, 3, 4):
            parts = [distributed.share(Dist(r, world), n) for r in range(world)]
            assert [i for s in parts for i in range(s.start, s.stop)] == list(range(n))
            assert max(s.stop - s.start for s in parts) - min(s.stop - s.start for s in parts) <= 1


def test_local_rows_are_the_rank_slices_of_the_global_batch():
    rows = torch.arange(12)
    assert distributed.local_rows(distributed.SINGLE, rows).tolist() == list(range(12))
    got = [distributed.local_rows(Dist(r, 3), rows).tolist() for r in range(3)]
    assert got == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]


def test_a_global_batch_that_does_not_split_evenly_is_bad_input():
    distributed.check_batch(Dist(0, 2), 64, "plan.toml")
    distributed.check_batch(distributed.SINGLE, 63, "plan.toml")
    with pytest.raises(InputError, match="batch_size 63 does not split evenly across 2"):
        distributed.check_batch(Dist(0, 2), 63, "plan.toml")


def test_cpu_batches_read_the_memory_map_itself_without_a_copy(tmp_path):
    """No rank holds a copy of the store: on CPU the gather tensor is the memory map."""
    from lvm_core.data.store import ArticleStore
    from lvm_core.training.loop import BatchSource

    for dtype in ("float16", "float32"):
        store = ArticleStore.open(make_tiny_store_path(tmp_path / dtype, dtype))
        src = BatchSource(store, 3, torch.device("cpu"), resident_bytes=1 << 30)
        assert src.vectors.data_ptr() == store.vectors.ctypes.data and src.vectors.dtype == getattr(torch, dtype)
        rows = torch.tensor([3, 0, 7])
        got = src.gather(rows)
        assert got.dtype == torch.float32 and np.array_equal(got.numpy(), store.gather(rows.numpy()))


def make_tiny_store_path(path: Path, dtype: str) -> Path:
    from lvm_core.data.store import write_store

    rng = np.random.default_rng(0)
    write_store(path, rng.normal(size=(12, 8)), [6, 6], [1, 2], dtype=dtype)
    return path


def test_5cat_under_torchrun_scores_shares_and_rank_zero_writes_the_single_process_result(reference, capsys):
    root, single, _ = reference
    demo = TESTS.parent / "examples" / "data" / "python-docs-minilm"
    args = ["5cat", "--model", str(single / "checkpoints" / "last.safetensors"), "--val", str(OOD_STORE),
            "--ood", str(demo), "--samples", "150", "--horizon", "2"]
    code = cli.main([*args, "--json", str(root / "one.json")])
    capsys.readouterr()
    done = torchrun([*args, "--json", str(root / "two.json")], cwd=root)
    # torchrun exits 1 when a worker fails and names the worker's own exit code (3: gates failed)
    assert (done.returncode == 0) == (code == 0) and (code == 0 or f"exitcode: {code}" in done.stderr), done.stderr[-3000:]
    assert done.stdout.count("5CAT (") == 1  # one table, printed by rank 0
    one, two = (json.loads((root / f).read_text()) for f in ("one.json", "two.json"))
    assert one["score"] == two["score"] and one["splits"] == two["splits"]
    for part in ("gates", "baselines"):
        a, b = numbers(one[part]), numbers(two[part])
        assert a.keys() == b.keys() and a
        for k in a:
            assert a[k] == pytest.approx(b[k], abs=1e-4, nan_ok=True), k
