"""Kill -9 (and a full disk) at every write point of a small run; each one resumes to the
bit-identical weights of an unbroken run (issue 11). Trials run in forked children, so the
kill is a real SIGKILL and torch is imported once."""

from __future__ import annotations

import os
import signal
import traceback
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from lvm_core import faults
from lvm_core.errors import InputError
from lvm_core.rundir import RunDir
from lvm_core.training.loop import train
from tests.conftest import make_tiny_store
from workbench.plugin_host import load_plugins
from workbench.plan import plan_from_text
from workbench.run_prep import prepare_run

PLAN = """
name = "faults"
seed = 5
[data]
store = "tiny"
context_len = 3
[data.split]
fractions = { train = 0.7, val = 0.3 }
[model]
arch = "mlp"
params = { hidden_dim = 16, dropout = 0.2 }
[[loss]]
name = "mse"
[train]
epochs = 2
batch_size = 16
device = "cpu"
warmup_steps = 2
log_every = 3
"""


def _forked(fn, env: dict[str, str]) -> int:
    """Run fn() in a forked child with `env` added; its exit code, or -signal if killed.

    One torch thread across the fork: an OpenMP pool of several threads (left by any earlier
    test) is unusable in a forked child, whose first matmul then waits forever at its barrier."""
    torch.set_num_threads(1)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 99
        try:
            os.environ.update(env)
            faults.reset()
            code = fn()
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread for the whole module, so the expected weights trained here and every
    forked trial compute alike; the count an earlier test left is put back afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    make_tiny_store(root / "tiny", lengths=(12,) * 8, dim=12)
    host = load_plugins(entry_points=False)
    plan = plan_from_text(PLAN, root, host=host)
    setup = prepare_run(plan, host, run_dir=root / "full")
    assert train(setup).status == "completed"
    save_file({k: v.contiguous() for k, v in setup.model.state_dict().items()}, str(root / "expected.safetensors"))
    return root, host, plan


def _run(world, run_dir: Path):
    root, host, plan = world

    def fn() -> int:
        try:
            return 0 if train(prepare_run(plan, host, run_dir=run_dir)).status == "completed" else 1
        except OSError:
            return 4
    return fn


def _resume(world, run_dir: Path):
    root, host, plan = world

    def fn() -> int:
        fresh = not (run_dir / "run.json").exists()  # killed during setup: the folder is taken again
        expected = load_file(str(root / "expected.safetensors"))
        if not fresh and RunDir(run_dir).read_json("run.json")["status"] == "completed":
            # killed writing report.md, the very last write: nothing to train; the resume
            # removes the temporary, writes the report and says "already completed"
            try:
                prepare_run(plan, host, resume=run_dir)
                return 6
            except InputError as exc:
                if "already completed" not in str(exc) or not (run_dir / "report.md").is_file():
                    return 7
            got = load_file(str(run_dir / "checkpoints" / "last.safetensors"))
            if not all(torch.equal(got[k], expected[k]) for k in expected):
                return 2
        else:
            setup = prepare_run(plan, host, **({"run_dir": run_dir} if fresh else {"resume": run_dir}))
            if train(setup).status != "completed":
                return 1
            got = setup.model.state_dict()
            if not all(torch.equal(got[k], expected[k]) for k in expected):
                return 2
        steps = [(m["kind"], m["step"]) for m in RunDir(run_dir).read_jsonl("metrics.jsonl")]
        full = [(m["kind"], m["step"]) for m in RunDir(root / "full").read_jsonl("metrics.jsonl")]
        if steps != full:
            return 3
        if list(run_dir.rglob(".*.tmp")):
            return 5
        return 0
    return fn


def _write_points(world, name: str) -> int:
    return len(_write_log(world, name))


def _write_log(world, name: str) -> list[str]:
    """The paths of a run's write points, in order."""
    root = world[0]
    log = root / f"{name}.log"
    assert _forked(_run(world, root / name), {"LVM_FAULT_LOG": str(log)}) == 0
    return [line.split("\t", 1)[1] for line in log.read_text().splitlines()]


def test_a_kill_at_the_report_write_leaves_a_temporary_the_next_resume_removes(world):
    root = world[0]
    paths = _write_log(world, "count-report")
    k = max(i for i, p in enumerate(paths, 1) if p.endswith("report.md"))  # the final report
    run_dir = root / "kill-report"
    assert _forked(_run(world, run_dir), {"LVM_FAULT_KILL_AT": str(k)}) == -9
    assert [p.name for p in run_dir.glob(".report.md.*.tmp")] and not (run_dir / "report.md").exists()
    assert _forked(_resume(world, run_dir), {}) == 0  # removes it, writes report.md, checks the weights
    assert not list(run_dir.rglob("*.tmp")) and "status: **completed**" in (run_dir / "report.md").read_text()
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}
    with pytest.raises(InputError, match="already completed; there is nothing to resume$"):
        prepare_run(world[2], world[1], resume=run_dir)  # a whole completed run: nothing touched
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before


def test_temporaries_anywhere_in_a_run_folder_are_removed_on_resume(world):
    root, host, plan = world
    paths = _write_log(world, "count-sub")
    k = next(i for i, p in enumerate(paths, 1) if "checkpoints" in p)  # the first generation
    run_dir = root / "kill-sub"
    assert _forked(_run(world, run_dir), {"LVM_FAULT_KILL_AT": str(k)}) == -9
    (run_dir / "tensorboard").mkdir()
    left = [run_dir / "tensorboard" / ".events.1.ab.tmp", run_dir / ".report.md.1.cd.tmp"]
    for p in left:
        p.write_bytes(b"")  # zero-byte temporaries, as a kill leaves them
    assert list((run_dir / "checkpoints").glob(".*.tmp"))  # the generation being written
    assert _forked(_resume(world, run_dir), {}) == 0  # resumed bit-identically, no .tmp anywhere (code 5)


@pytest.mark.slow
def test_kill_at_every_write_point_resumes_bit_identically(world):
    root = world[0]
    n = _write_points(world, "count-kill")
    assert n > 20  # setup files, log lines, run.json updates, generations and pointers, report
    failures = {}
    for k in range(1, n + 1):
        run_dir = root / f"kill-{k}"
        assert _forked(_run(world, run_dir), {"LVM_FAULT_KILL_AT": str(k)}) == -9, k
        code = _forked(_resume(world, run_dir), {})
        if code != 0:
            failures[k] = code
    print(f"kill -9 at each of {n} write points: {n - len(failures)}/{n} resumed bit-identically")
    assert failures == {}


@pytest.mark.slow
def test_a_full_disk_at_every_write_point_fails_cleanly_and_resumes(world):
    root = world[0]
    n = _write_points(world, "count-enospc")
    failures = {}
    for k in range(1, n + 1):
        run_dir = root / f"enospc-{k}"
        code = _forked(_run(world, run_dir), {"LVM_FAULT_ENOSPC_AT": str(k)})
        if code == 0:  # the failing write was the report after the end: the run is complete
            continue
        if code != 4:
            failures[k] = f"run exit {code}"
            continue
        if (run_dir / "run.json").exists():
            info = RunDir(run_dir).read_json("run.json")
            if info.get("status") not in ("failed", "created") or (info["status"] == "failed" and "ENOSPC" not in info["error"]):
                failures[k] = f"run.json {info.get('status')} {info.get('error')}"
                continue
        code = _forked(_resume(world, run_dir), {})
        if code != 0:
            failures[k] = f"resume exit {code}"
    print(f"ENOSPC at each of {n} write points: {n - len(failures)}/{n} clean and resumed bit-identically")
    assert failures == {}


def test_a_forked_trial_survives_a_thread_pool_left_by_an_earlier_test():
    """Two fresh-clone runs hung here: an earlier test (random order) had left torch with two
    threads, and a forked trial's first matmul waited forever for the pool it cannot have."""
    torch.set_num_threads(2)
    a = torch.randn(128, 128)
    (a @ a).sum()  # the pool now exists in this process

    def child() -> int:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)  # not pytest-timeout's handler: it cannot run in a hang
        signal.alarm(20)  # a hang becomes SIGALRM instead of a stuck suite
        b = torch.randn(128, 128)
        return 0 if torch.isfinite((b @ b).sum()) else 1

    assert _forked(child, {}) == 0
