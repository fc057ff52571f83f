"""Faults of every plugin kind are named and contained (issue 12): a diagnostic, an embedder, a
corpus reader, an event hook or a model that raises, or gives a wrong type, shape or dtype, is one
line naming the plugin, its distribution and version, what it was doing and where (step, texts,
source); the rest of the workbench keeps working."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lvm_core.data.corpus import Corpus, Document
from lvm_core.data.store import ArticleStore
from tests.conftest import DEMO_STORE
from workbench import hookimpl
from workbench.cli import main
from workbench.plugin_host import load_plugins


def _with(monkeypatch, target: str, plugin: object) -> None:
    """Make a command's plugin host include one throw-away plugin, registered in-process."""
    real = load_plugins
    monkeypatch.setattr(target, lambda *a, **kw: real(*a, extra_plugins=[("throwaway", plugin)], **kw))


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


# ---- diagnostics ------------------------------------------------------------------------------

class Diagnostics:
    @hookimpl
    def register_diagnostics(self, register):
        def explodes(store, split, context_len=5):
            raise ZeroDivisionError("empty part")

        def returns_a_list(store, split, context_len=5):
            return [1, 2, 3]

        def fine(store, split, context_len=5):
            return {"rows": store.n_chunks}

        register("explodes", explodes)
        register("returns_a_list", returns_a_list)
        register("fine", fine)


def test_a_faulty_diagnostic_is_one_line_and_the_others_still_run(tmp_path, monkeypatch, capsys):
    _with(monkeypatch, "workbench.commands.diagnose.load_plugins", Diagnostics())
    code = main(["diagnose", str(DEMO_STORE), "--only", "explodes,returns_a_list,fine",
                 "--json", str(tmp_path / "d.json"), "--report", str(tmp_path / "d.md")])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err
    assert _errors(err) == [
        "error: diagnostic 'explodes' of plugin throwaway (in-process) raised in its run: ZeroDivisionError: empty part",
        "error: diagnostic 'returns_a_list' of plugin throwaway (in-process) returned list; expected a dict with "
        "str keys (numbers, strings, lists and dicts of them)"]
    doc = json.loads((tmp_path / "d.json").read_text())["diagnostics"]
    assert doc["fine"]["result"] == {"rows": ArticleStore.open(DEMO_STORE).n_chunks}  # the others still ran
    assert "ZeroDivisionError" in doc["explodes"]["error"] and "result" not in doc["explodes"]
    assert "**error:** diagnostic 'explodes'" in (tmp_path / "d.md").read_text()


# ---- embedders and corpus readers -----------------------------------------------------------

def _corpus(n_docs: int = 3) -> Corpus:
    docs = [Document(f"d{d}", f"Doc {d}", "\n\n".join(f"Document number{d} paragraph {i} has plain words to read."
                                                      for i in range(12))) for d in range(n_docs)]
    return Corpus(docs, {"reader": "mem", "source": "memory"})


class Kit:
    """A reader and embedders that break on request."""

    @hookimpl
    def register_corpus_readers(self, register):
        def mem(source):
            if source == "raise":
                raise KeyError("no such shelf")
            if source == "bad input":
                from lvm_core.errors import InputError
                raise InputError(source, "expected a shelf name")
            if source == "list":
                return _corpus().documents
            return _corpus()

        register("mem", mem)

    @hookimpl
    def register_embedders(self, register):
        def make(mode="ok"):
            class Emb:
                name, dim, weights_sha256, pooling = f"emb-{mode}", 4, "0" * 64, "test"

                def encode(self, texts):
                    v = np.ones((len(texts), 4), np.float32)
                    if mode == "raise":
                        raise RuntimeError("CUDA out of memory")
                    if mode == "shape":
                        return v[:, :3]
                    if mode == "dtype":
                        return v.astype(np.int64)
                    if mode == "nan":
                        v[[i for i, t in enumerate(texts) if "number1 " in t]] = np.nan
                    return v
            return Emb()

        from workbench import Param
        register("breaking", make, params=(Param("mode", "str", "ok", "how to break"),))


def _build(monkeypatch, tmp_path, source: str, mode: str) -> int:
    monkeypatch.setattr("workbench.commands._data_build.default_host",
                        lambda: load_plugins(extra_plugins=[("kit", Kit())]))
    return main(["data", "build", "--reader", "mem", "--source", source, "--embedder", "breaking",
                 "--embedder-param", f"mode={mode}", "--out", str(tmp_path / "s"), "--no-cache", "--quiet",
                 "--chunk-words", "20", "--min-chunks", "2"])


@pytest.mark.parametrize("mode, line", [
    ("raise", "embedder 'breaking' of plugin kit (in-process) raised in encode of texts 0-17: RuntimeError: CUDA out of memory"),
    ("shape", "embedder 'breaking' of plugin kit (in-process) returned shape (18, 3) in encode of texts 0-17; expected a (18, 4) float array"),
    ("dtype", "embedder 'breaking' of plugin kit (in-process) returned dtype int64 in encode of texts 0-17; expected a (18, 4) float array"),
])
def test_a_faulty_embedder_is_one_line_naming_it_and_the_texts(tmp_path, monkeypatch, capsys, mode, line):
    assert _build(monkeypatch, tmp_path, "shelf", mode) == 1
    err = capsys.readouterr().err
    assert len(_errors(err)) == 1 and _errors(err)[0].startswith(f"error: {line}"), err
    assert "Traceback" not in err and not (tmp_path / "s").exists()


def test_nan_rows_of_an_embedder_are_recorded_and_named_by_the_build(tmp_path, monkeypatch, capsys):
    assert _build(monkeypatch, tmp_path, "shelf", "nan") == 0
    err = capsys.readouterr().err
    rec = json.loads((tmp_path / "s" / "manifest.json").read_text())["extra"]["nonfinite_rows"]
    assert rec["count"] == 6 and rec["rows"] == [6, 7, 8, 9, 10, 11]  # document 1: six chunks of two paragraphs
    assert ("warning: embedder 'breaking' of plugin kit (in-process) gave 6 row(s) with NaN or Inf "
            "(rows 6, 7, 8, 9, 10, 11; texts.jsonl has their texts)") in err


@pytest.mark.parametrize("source, code, line", [
    ("raise", 1, "corpus reader 'mem' of plugin kit (in-process) raised in reading 'raise': KeyError: 'no such shelf'"),
    ("list", 1, "corpus reader 'mem' of plugin kit (in-process) returned list reading 'list'; expected an lvm_core.data.corpus.Corpus"),
    ("bad input", 2, "bad input: expected a shelf name"),  # a reader's own InputError stays bad input
])
def test_a_faulty_corpus_reader_is_one_line_naming_it(tmp_path, monkeypatch, capsys, source, code, line):
    assert _build(monkeypatch, tmp_path, source, "ok") == code
    err = capsys.readouterr().err
    assert _errors(err) == [f"error: {line}"] and not (tmp_path / "s").exists()


# ---- event hooks and models in a run ---------------------------------------------------------

PLAN = f"""
name = "kinds"
[data]
store = "{DEMO_STORE}"
[model]
arch = "{{arch}}"
[[loss]]
name = "cosine"
[train]
epochs = 2
batch_size = 256
threads = 1
[eval]
max_samples = 50
[plugins]
modules = ["my_kinds"]
"""

MODULE = '''
import torch
from workbench import hookimpl


class Unreduced(torch.nn.Module):
    def __init__(self, dim, context_len):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, ctx):
        return self.w * ctx  # (B, L, D): forgot to reduce the context


class Indices(Unreduced):
    def forward(self, ctx):
        return ctx.mean(1).argmax(-1, keepdim=True).expand(-1, ctx.shape[-1])  # (B, D) int64


@hookimpl
def register_models(register):
    register("unreduced", Unreduced)
    register("indices", Indices)


@hookimpl
def on_epoch_end(epoch, step):
    if epoch == 1:
        raise ValueError("disk quota of my dashboard")
'''


def _plan(tmp_path, arch: str):
    (tmp_path / "my_kinds.py").write_text(MODULE)
    (tmp_path / "plan.toml").write_text(PLAN.replace("{arch}", arch))
    return str(tmp_path / "plan.toml")


def test_a_raising_event_hook_is_one_alert_naming_it_and_its_step_and_the_run_goes_on(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["--run", _plan(tmp_path, "context_mean"), "--run-dir", str(run_dir), "--device", "cpu"]) == 0
    events = [json.loads(l) for l in (run_dir / "events.jsonl").read_text().splitlines()]
    epoch1 = next(e for e in [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
                  if e["kind"] == "EpochEnded" and e["epoch"] == 1)
    alerts = [e["message"] for e in events if e.get("code") == "plugin_error"]
    assert alerts == [f"plugin my_kinds (local module) raised in on_epoch_end at step {epoch1['step']}: "
                      "ValueError: disk quota of my dashboard"]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"


@pytest.mark.parametrize("arch, got", [("unreduced", "shape (2, 5, 384)"), ("indices", "dtype torch.int64")])
def test_a_model_with_a_wrong_output_is_named_before_step_0(tmp_path, capsys, arch, got):
    run_dir = tmp_path / "run"
    assert main(["--run", _plan(tmp_path, arch), "--run-dir", str(run_dir), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert _errors(err) == [f"error: model {arch!r} of plugin my_kinds (local module) returned {got} for a "
                            "(2, 5, 384) context batch; expected a (2, 384) floating tensor (one predicted vector per sample)"]
    assert not (run_dir / "run.json").exists()


def test_the_model_probe_leaves_the_random_state_alone(tmp_path):
    import torch

    from lvm_core.models.networks import ARCHITECTURES
    from workbench.plugin_guard import check_model

    host = load_plugins(entry_points=False)
    model = ARCHITECTURES["mlp"](8, 3, dropout=0.5)
    model.train()
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    check_model(host.get("model", "mlp"), model, 8, 3)
    assert torch.equal(torch.random.get_rng_state(), before) and model.training
