"""Gates chosen like losses: `[gates] use`, `5cat --gate`, thresholds for any gate (a
third-party one too), its verdict in gates.json, the table, report.md and the flat metrics."""

from __future__ import annotations

import json
import sys

import pytest

from lvm_core.errors import InputError, InputErrors
from lvm_core.evaluation.battery import DEFAULT_GATES
from tests._kit_helpers import KIT, KIT_DIST, fake_install_kit, pip_install_kit
from tests.conftest import DEMO_STORE, OOD_STORE
from tests.test_plan import GOOD
from workbench.cli import main
from workbench.plugin_host import load_plugins
from workbench.plan import plan_from_text


@pytest.fixture
def kit(tmp_path, monkeypatch):
    monkeypatch.delenv("LVM_WORKBENCH_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("LVM_WORKBENCH_DISABLE_PLUGINS", raising=False)
    monkeypatch.syspath_prepend(str(KIT / "src"))
    monkeypatch.syspath_prepend(str(fake_install_kit(tmp_path / "site")))


@pytest.fixture
def plan_dir(tmp_path):
    from tests.conftest import make_tiny_store

    make_tiny_store(tmp_path / "tiny")
    return tmp_path


def _fivecat(tmp_path, *extra):
    out = tmp_path / "g.json"
    args = ["5cat", "--model", "copy_last", "--val", str(DEMO_STORE), "--ood", str(OOD_STORE), "--samples", "80",
            "--json", str(out), "--report", str(tmp_path / "r.md"), *extra]
    return main(args), out


def test_plan_chooses_a_third_party_gate_and_sets_its_threshold(kit, plan_dir):
    text = GOOD.replace('thresholds = { "A.val.mean_plus1" = 0.4 }',
                        'use = ["A", "CM"]\nthresholds = { "A.val.mean_plus1" = 0.4, "CM.val.win_rate" = 0.3 }')
    plan = plan_from_text(text, plan_dir, source="p.toml")
    assert plan.gates.use == ["A", "CM"]
    assert plan.gates.thresholds["CM.val.win_rate"] == 0.3


def test_plan_gate_problems_name_the_key(kit, plan_dir):
    host = load_plugins()
    cases = {
        'use = ["A", "CMM"]': ("gates.use", "unknown gate 'CMM'", "did you mean 'CM'?"),
        'use = []': ("gates.use", "non-empty array of gate names", ""),
        'use = ["A", "A"]': ("gates.use", "'A' is named twice", ""),
        'use = ["A"]\nthresholds = { "CM.val.win_rate" = 0.3 }': ("gates.thresholds.CM.val.win_rate",
                                                                   "'CM' is not chosen", "--gate CM"),
        'use = ["CM"]\nthresholds = { "CM.val.win_rate" = 3.0 }': ("gates.thresholds.CM.val.win_rate",
                                                                   "expected <= 1.0", ""),
    }
    for snippet, (where, what, hint) in cases.items():
        text = GOOD.replace('thresholds = { "A.val.mean_plus1" = 0.4 }', snippet)
        with pytest.raises((InputError, InputErrors)) as err:
            plan_from_text(text, plan_dir, source="p.toml", host=host)
        lines = err.value.lines() if isinstance(err.value, InputErrors) else [err.value.line()]
        assert any(where in l and what in l and hint in l for l in lines), (snippet, lines)


def test_fivecat_gate_flag_runs_the_chosen_gates_only(kit, tmp_path, capsys):
    code, out = _fivecat(tmp_path, "--gate", "A", "--gate", "CM", "--threshold", "CM.val.win_rate=0.0",
                          "--threshold", "CM.ood.win_rate=0.0")
    doc = json.loads(out.read_text())
    assert list(doc["gates"]) == ["A", "CM"] and doc["max_score"] == 2
    cm = doc["gates"]["CM"]
    assert cm["title"] == "beats copy-last"
    # copy-last never beats itself: win rate 0 on every split, which the threshold 0 passes
    assert [(c["split"], c["value"], c["passed"]) for c in cm["checks"]] == [("val", 0.0, True), ("ood", 0.0, True)]
    assert cm["metrics"]["val"]["oracle"]["win_rate"] == 1.0  # no chunk of the real data repeats exactly
    table = capsys.readouterr().out
    assert "CM beats copy-last" in table and "win_rate" in table
    assert "| CM beats copy-last | val | win_rate |" in (tmp_path / "r.md").read_text()
    assert code == 3  # copy-last fails gate A


def test_fivecat_gate_problems_are_one_line(kit, tmp_path, capsys):
    assert _fivecat(tmp_path, "--gate", "ZZ")[0] == 2
    assert _fivecat(tmp_path, "--gate", "A", "--gate", "A")[0] == 2
    assert _fivecat(tmp_path, "--gate", "A", "--threshold", "CM.val.win_rate=0.1")[0] == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "unknown gate 'ZZ'" in err[0] and "named twice" in err[1] and "--gate CM" in err[2]


def test_default_battery_is_the_default_gates(tmp_path):
    _, out = _fivecat(tmp_path)
    assert list(json.loads(out.read_text())["gates"]) == list(DEFAULT_GATES)


@pytest.mark.slow
def test_pip_installed_gate_package_is_chosen_in_a_plan_and_with_the_flag(tmp_path, monkeypatch, plan_dir):
    target = pip_install_kit(tmp_path)
    monkeypatch.delenv("LVM_WORKBENCH_LOAD_PLUGINS", raising=False)
    monkeypatch.syspath_prepend(str(target))
    for name in ("lvm_residual_kit", "lvm_residual_kit.plugin"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    item = load_plugins().get("gate", "CM")
    assert (item.dist, item.version) == (KIT_DIST, "0.1.0")
    text = GOOD.replace('thresholds = { "A.val.mean_plus1" = 0.4 }', 'use = ["CM"]')
    assert plan_from_text(text, plan_dir, source="p.toml").gates.use == ["CM"]
    code, out = _fivecat(tmp_path, "--gate", "CM")
    doc = json.loads(out.read_text())
    assert code == 3 and doc["gates"]["CM"]["passed"] is False  # copy-last wins 0 of its samples


def test_the_score_names_the_gates_it_counts():
    from lvm_core.evaluation.battery import score_text
    from lvm_core.evaluation.gate_report import doc_score_text

    assert score_text(3, 5, ["A", "B", "C", "D", "E"]) == "A-E 3/5"  # the default battery keeps its name
    assert score_text(0, 2, ["A", "CM"]) == "gates 0/2 (A, CM)"
    assert score_text(1, 4, ["B", "A", "C", "D"]) == "gates 1/4 (B, A, C, D)"  # A-D is not A-E
    assert score_text(0, 0, []) == "no scored gates"  # only relative gates (vs_baselines)
    old = {"score": 1, "max_score": 2, "gates": {"A": {"relative": False}, "vs_baselines": {"relative": True},
                                                   "CM": {"relative": False}}}  # gates.json before "scored_gates"
    assert doc_score_text(old) == "gates 1/2 (A, CM)"


def test_chosen_gates_are_named_in_the_table_gates_json_report_run_and_compare(kit, tmp_path, plan_dir, capsys):
    from lvm_core.evaluation.compare import run_rows

    code, out = _fivecat(tmp_path, "--gate", "A", "--gate", "CM", "--threshold", "CM.val.win_rate=0.0",
                         "--threshold", "CM.ood.win_rate=0.0")
    doc = json.loads(out.read_text())
    assert doc["scored_gates"] == ["A", "CM"] and doc["score_text"] == "gates 1/2 (A, CM)"
    table = capsys.readouterr().out
    assert "FAIL, gates 1/2 (A, CM) (pass needs all 2)" in table and "A-E" not in table.splitlines()[-1]
    assert "gates 1/2 (A, CM)" in (tmp_path / "r.md").read_text()
    # a run whose plan chooses them: the console line, report.md and runs compare say the same
    (plan_dir / "p.toml").write_text(f'name = "chosen"\n[data]\nstore = "{DEMO_STORE}"\n[model]\narch = "mlp"\n'
                                     'params = { hidden_dim = 8 }\n[[loss]]\nname = "cosine"\n[train]\nepochs = 1\n'
                                     'batch_size = 256\nthreads = 1\n[eval]\nmax_samples = 50\n'
                                     '[gates]\nuse = ["A", "CM"]\nsamples = 40\n')
    run_dir = tmp_path / "run"
    assert main(["--run", str(plan_dir / "p.toml"), "--run-dir", str(run_dir), "--device", "cpu"]) in (0, 3)
    err = capsys.readouterr().err
    gates = json.loads((run_dir / "gates.json").read_text())
    said = gates["score_text"]
    assert said.startswith("gates ") and said.endswith("/2 (A, CM)")
    assert f"gates: {said}," in err
    assert f"score {said}, passed" in (run_dir / "report.md").read_text()
    assert run_rows([run_dir])[0]["gates"] == said.removeprefix("gates ")


def test_the_default_battery_keeps_its_a_to_e_wording(tmp_path, capsys):
    _, out = _fivecat(tmp_path)
    assert json.loads(out.read_text())["score_text"].startswith("A-E ")
    assert ", A-E " in capsys.readouterr().out
