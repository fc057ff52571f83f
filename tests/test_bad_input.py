"""Malformed inputs through the real CLI: exactly one line on stderr, exit code 2, no
traceback, nothing unpickled, and an existing output left whole."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lvm_core.data.store import ArticleStore
from workbench.cli import main

from .conftest import ROOT, make_tiny_store

CANARY = "unpickled.canary"


class Payload:
    """Unpickling this creates a file: proof that something ran code from the input."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def good_arrays(n: int = 12) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"vectors": rng.normal(size=(n, 8)).astype(np.float32),
            "article_indices": np.repeat(np.arange(2, dtype=np.int32), n // 2),
            "chunk_indices": np.tile(np.arange(n // 2, dtype=np.int32), 2)}


def npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def case_wrong_keys(d: Path):
    return ["import", str(npz(d / "in.npz", foo=np.ones((3, 4)), bar=np.arange(3)))], "no vectors key"


def case_sequence_keys_missing(d: Path):
    return ["import", "--sequences", str(npz(d / "in.npz", **good_arrays()))], "no contexts key"


def case_vectors_rank_3(d: Path):
    a = good_arrays()
    a["vectors"] = a["vectors"].reshape(12, 2, 4)
    return ["import", str(npz(d / "in.npz", **a))], "key 'vectors': expected rank 2 (N, D), got shape (12, 2, 4)"


def case_ids_wrong_length(d: Path):
    a = good_arrays()
    a["article_indices"] = a["article_indices"][:5]
    return ["import", str(npz(d / "in.npz", **a))], "key 'article_indices': expected shape (12,)"


def case_contexts_rank_2(d: Path):
    path = npz(d / "in.npz", contexts=np.ones((4, 8), np.float32), targets=np.ones((4, 8), np.float32))
    return ["import", "--sequences", str(path)], "key 'contexts': expected rank 3 (N, L, D)"


def case_vectors_are_strings(d: Path):
    a = good_arrays()
    a["vectors"] = a["vectors"].astype(str)
    return ["import", str(npz(d / "in.npz", **a))], "key 'vectors': expected float vectors (N, D), got dtype <U"


def case_ids_are_floats(d: Path):
    a = good_arrays()
    a["article_indices"] = a["article_indices"].astype(np.float64)
    return ["import", str(npz(d / "in.npz", **a))], "key 'article_indices': expected integers, got dtype float64"


def case_nan_rows(d: Path):
    a = good_arrays()
    a["vectors"][[3, 9]] = np.nan
    return ["import", str(npz(d / "in.npz", **a))], "key 'vectors': 2 rows with NaN or Inf values (first: 3, 9)"


def case_pickled_vectors(d: Path):
    a = good_arrays()
    obj = np.empty(12, dtype=object)
    obj[:] = [Payload(d / CANARY)] * 12
    a["vectors"] = obj
    return ["import", str(npz(d / "in.npz", **a))], "key 'vectors': is an object array that only pickle can load"


def case_pickled_metadata(d: Path):
    meta = np.array([{"article_index": 1, "target_chunk_index": 5}, Payload(d / CANARY)], dtype=object)
    path = npz(d / "in.npz", context_sequences=np.ones((2, 5, 8), np.float32),
               target_vectors=np.ones((2, 8), np.float32), metadata=meta)
    return ["import", "--sequences", str(path)], "key 'metadata': is an object array that only pickle can load"


def case_truncated(d: Path):
    full = npz(d / "full.npz", **good_arrays()).read_bytes()
    (d / "in.npz").write_bytes(full[: len(full) // 2])
    return ["import", str(d / "in.npz")], "not a readable .npz archive"


def case_corrupt_member(d: Path):
    np.savez_compressed(d / "in.npz", **good_arrays(400))
    data = bytearray((d / "in.npz").read_bytes())
    data[600:700] = bytes(100)  # inside the compressed `vectors` member
    (d / "in.npz").write_bytes(bytes(data))
    return ["import", str(d / "in.npz")], "key 'vectors': unreadable"


def case_empty(d: Path):
    (d / "in.npz").write_bytes(b"")
    return ["import", str(d / "in.npz")], "is empty (0 bytes)"


def case_text_file(d: Path):
    (d / "in.npz").write_text("vectors,article_indices\n1,2\n")
    return ["import", str(d / "in.npz")], "not an .npz archive (a zip of .npy arrays): the file starts with b'vectors,'"


def case_single_npy(d: Path):
    np.save(d / "in.npy", np.ones((3, 4)))
    return ["import", str(d / "in.npy")], "is a single .npy array of shape (3, 4)"


def case_whole_file_pickle(d: Path):
    (d / "in.npz").write_bytes(pickle.dumps(Payload(d / CANARY)))
    return ["import", str(d / "in.npz")], "is a pickle file, not an .npz archive; refusing to unpickle it"


def case_missing_file(d: Path):
    return ["import", str(d / "in.npz")], "no such file"


def case_validate_empty(d: Path):
    (d / "in.npz").write_bytes(b"")
    return ["validate", str(d / "in.npz")], "is empty (0 bytes)"


def case_sequences_wrong_dim_for_store(d: Path):
    store = make_tiny_store(d / "store", dim=16)
    path = npz(d / "in.npz", contexts=np.ones((2, 5, 8), np.float32), targets=np.ones((2, 8), np.float32),
               article_ids=np.array([100, 100]), target_indices=np.array([5, 6]))
    return ["import", "--sequences", str(path), "--store", str(store.path)], "dimension mismatch: sequences have D=8"


CASES = {name[5:]: fn for name, fn in globals().copy().items() if name.startswith("case_")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gives_one_line_and_exit_2(name, tmp_path, capsys):
    argv, expected = CASES[name](tmp_path)
    out = tmp_path / ("out.npz" if "--sequences" in argv else "out.store")
    rc = main(["data", *argv, *(["--out", str(out)] if argv[0] == "import" else [])])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and expected in err and "Traceback" not in err
    assert not out.exists()
    assert not (tmp_path / CANARY).exists(), "something was unpickled"


def test_trust_pickle_reads_plain_data_only(tmp_path, capsys):
    argv, _ = case_pickled_metadata(tmp_path)
    rc = main(["data", *argv, "--trust-pickle", "--out", str(tmp_path / "out.npz")])
    err = capsys.readouterr().err
    # even with --trust-pickle the payload never runs: its global is refused by name (it used to
    # run after the warning; a data-only unpickler rebuilds the dicts and nothing else)
    assert rc == 2 and not (tmp_path / CANARY).exists()
    assert err.splitlines()[0].startswith("warning: ") and "unpickling key 'metadata'" in err
    assert "refused: the file asks for" in err.splitlines()[-1] and "nothing was executed" in err
    assert not (tmp_path / "out.npz").exists()


def test_existing_output_is_not_replaced_without_force(tmp_path, capsys):
    store = make_tiny_store(tmp_path / "store")
    path = npz(tmp_path / "in.npz", **good_arrays())
    before = (store.path / "vectors.npy").read_bytes()
    assert main(["data", "import", str(path), "--out", str(store.path)]) == 2
    assert capsys.readouterr().err == f"error: {store.path}: already exists; pass --force to replace it\n"
    (tmp_path / "x.npz").write_bytes(b"keep me")
    assert main(["data", "export", str(store.path), "--out", str(tmp_path / "x.npz")]) == 2
    assert (tmp_path / "x.npz").read_bytes() == b"keep me"
    assert (store.path / "vectors.npy").read_bytes() == before


def test_failed_import_leaves_the_old_store_whole(tmp_path, capsys, monkeypatch):
    store = make_tiny_store(tmp_path / "store")
    before = store.gather(np.arange(store.n_chunks))
    bad = good_arrays()
    bad["vectors"][0] = np.nan
    assert main(["data", "import", str(npz(tmp_path / "bad.npz", **bad)), "--out", str(store.path), "--force"]) == 2
    capsys.readouterr()

    # a good input whose write fails half-way (the disk fills after the first array)
    real_save, calls = np.save, []

    def save_then_fail(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(np, "save", save_then_fail)
    good = npz(tmp_path / "good.npz", **good_arrays())
    rc = main(["data", "import", str(good), "--out", str(store.path), "--force"])
    err = capsys.readouterr().err
    assert rc == 2 and len(calls) == 2
    assert err == f"error: {store.path}: could not write the store ([Errno 28] No space left on device); nothing was replaced\n"
    monkeypatch.undo()
    again = ArticleStore.open(store.path)
    np.testing.assert_array_equal(again.gather(np.arange(again.n_chunks)), before)
    assert sorted(os.listdir(tmp_path)) == ["bad.npz", "good.npz", "store"]  # no temporary leftovers


def test_console_script_prints_no_traceback(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "data", "import", str(tmp_path / "empty.npz"),
                           "--out", str(tmp_path / "s")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"error: {tmp_path / 'empty.npz'}: is empty (0 bytes); expected an .npz archive\n"
