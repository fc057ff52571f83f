"""The Setup form (issue 13): generated from the plan schema, navigable by section, showing exactly
the plan it loaded and giving it back unchanged. One Pilot test per bug a new user met."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli
from textual.widgets import Checkbox, Input, Label, OptionList, Select, Static, TextArea

from lvm_core.errors import InputErrors
from workbench.hookspecs import hookimpl
from workbench.plan import plan_from_dict, plan_to_toml
from workbench.plugin_host import load_plugins
from workbench.tui.app import WorkbenchApp

from ._tui_helpers import host, settle, tui_state_dir  # noqa: F401 (fixtures)
from .conftest import DEMO_STORE, make_tiny_store

ROOT = Path(__file__).resolve().parents[1]
SIZE = (100, 30)
EXAMPLES = sorted(p for p in (ROOT / "examples").rglob("*.toml")
                  if not any(part.startswith("third_party") for part in p.relative_to(ROOT / "examples").parts))
needs_demo = pytest.mark.skipif(not DEMO_STORE.is_dir(), reason="bundled demo store not built")


def test_the_examples_are_found():
    assert {"quickstart.toml", "p1_mse.toml", "frame_weights.toml"} <= {p.name for p in EXAMPLES}
    assert any(p.parent.name == "recipes" for p in EXAMPLES)


@needs_demo
async def test_every_example_plan_round_trips_through_the_form(host):
    """load -> form -> save gives the same plan, for every plan in examples/ (recipes included)."""
    app = WorkbenchApp(host=host)
    async with app.run_test(size=SIZE) as pilot:
        setup = app.setup_pane
        for path in EXAMPLES:
            raw = tomli.loads(path.read_text(encoding="utf-8"))
            setup.load_dict(raw, path.parent)
            await settle(pilot, app)
            again = setup.plan_dict()
            want = plan_to_toml(plan_from_dict(raw, path.parent, host=host))
            got = plan_to_toml(plan_from_dict(again, path.parent, host=host))
            assert got == want, path.name


async def test_a_plan_with_another_model_type_shows_exactly_its_values(tmp_path, host):
    """The form showed the loaded transformer with the default 512/4/8/2048 (17,473,920 params)."""
    store = make_tiny_store(tmp_path / "tiny", lengths=(12, 10, 11, 9, 12, 10), dim=16)
    params = {"d_model": 64, "num_layers": 2, "nhead": 4, "dim_feedforward": 128, "dropout": 0.0}
    plan_file = tmp_path / "d64.toml"
    plan_file.write_text(f'name = "d64"\n[data]\nstore = "{store.path}"\ncontext_len = 5\n[model]\narch = "transformer"\n'
                         'params = { d_model = 64, num_layers = 2, nhead = 4, dim_feedforward = 128, dropout = 0.0 }\n'
                         '[[loss]]\nname = "cosine"\n')
    app = WorkbenchApp(host=host)
    async with app.run_test(size=SIZE) as pilot:
        setup = app.setup_pane
        await settle(pilot, app)
        select = setup.query_one("#model-select", Select)
        assert select.value == "mlp"  # the form starts on another type
        assert app.load_plan(plan_file)
        await settle(pilot, app)
        # in a real terminal the picker's Changed event arrived after loading had finished, and the
        # form then showed the type's defaults; deliver it late here the same way
        setup.post_message(Select.Changed(select, "transformer"))
        await settle(pilot, app)
        for name, value in params.items():
            assert setup.query_one(f"#model-p-{name}", Input).value == str(value)
        assert setup.plan_dict()["model"] == {"arch": "transformer", "params": {k: v for k, v in params.items()
                                                                                  if k != "dropout"} | {"dropout": 0.0}}
        model = host.items["model"]["transformer"].obj(16, 5, **params)
        assert setup.param_count == sum(p.numel() for p in model.parameters())
        assert f"{setup.param_count:,}" in str(setup.query_one("#param-count", Static).render())


async def test_switching_the_model_type_keeps_the_params_that_still_apply(host):
    app = WorkbenchApp(host=host)
    async with app.run_test(size=SIZE) as pilot:
        setup = app.setup_pane
        setup.query_one("#model-select", Select).value = "gru"
        await settle(pilot, app)
        setup.query_one("#model-p-d_model", Input).value = "96"
        setup.query_one("#model-p-dropout", Input).value = "0.25"
        setup.query_one("#model-select", Select).value = "transformer"
        await settle(pilot, app)
        assert setup.query_one("#model-p-d_model", Input).value == "96"
        assert setup.query_one("#model-p-dropout", Input).value == "0.25"
        assert setup.query_one("#model-p-nhead", Input).value == "8"  # transformer's own default
        setup.query_one("#model-select", Select).value = "ridge"
        await settle(pilot, app)
        assert [i.id for i in setup.query_one("#model-params").query(Input)] == ["model-p-alpha"]


async def test_a_missing_store_folder_says_so_instead_of_a_default_size_count(tmp_path, host):
    app = WorkbenchApp(host=host)
    async with app.run_test(size=SIZE) as pilot:
        setup = app.setup_pane
        box = setup.query_one("#store-path", Input)
        box.value = str(tmp_path / "gone")
        await box.action_submit()
        await settle(pilot, app)
        text = str(setup.query_one("#param-count", Static).render())
        assert setup.param_count is None and setup.dim is None
        assert "gone" in text and "parameters: -" in text


async def test_hints_are_hints_not_grey_placeholders(host):
    """Every loss showed `schedule: { kind = "step", epoch = 3...` in grey, like a value."""
    app = WorkbenchApp(host=host)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        setup = app.setup_pane
        assert all(not i.placeholder for i in setup.query(Input)), [i.id for i in setup.query(Input) if i.placeholder]
        sched = setup.query_one("#loss-sched-directional_margin", Input)
        assert sched.value == "" and not sched.parent.display  # an unticked loss is one line
        setup.query_one("#loss-on-directional_margin", Checkbox).value = True
        await pilot.pause()
        assert sched.parent.display
        hint = sched.parent.query_one(".setup-hint", Static)
        assert "kind" in str(hint.render())
        epochs = setup.query_one("#train-epochs", Input)
        assert epochs.value == "6"  # the schema's default shown as the value (the form said 3)
        assert "1 <= epochs <= 100000" in str(epochs.parent.query_one(".setup-hint", Static).render())


async def test_unchecked_boxes_show_no_x(host):
    app = WorkbenchApp(host=host)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        box = app.setup_pane.query_one("#gates-on", Checkbox)
        assert box.value is False and "X" not in str(box.render())
        box.value = True
        await pilot.pause()
        assert "X" in str(box.render())


async def test_labels_do_not_wrap(host):
    """`dim_feedforward` showed as "dim_feedforwa" / "rd" on two rows."""
    app = WorkbenchApp(host=host)
    async with app.run_test(size=SIZE) as pilot:
        setup = app.setup_pane
        setup.query_one("#model-select", Select).value = "transformer"
        await settle(pilot, app)
        labels = [lbl for lbl in setup.query(".setup-label").results(Label)]
        assert any(str(lbl.render()) == "dim_feedforward" for lbl in labels)
        for lbl in labels:
            if not lbl.parent.display:  # the fields of an unticked loss are hidden
                continue
            text = str(lbl.render())
            assert lbl.size.height == 1, text
            assert lbl.size.width >= len(text), text


async def test_the_default_form_is_not_called_quickstart(host):
    app = WorkbenchApp(host=host)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.setup_pane.query_one("#plan-name", Input).value not in ("quickstart", "")


async def test_sections_are_reached_with_a_key_or_the_sidebar(host):
    """The epochs field was about 76 Tabs down a single scroll."""
    app = WorkbenchApp(host=host)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        setup = app.setup_pane
        setup.query_one("#plan-name", Input).focus()
        await pilot.press("alt+4")
        await pilot.pause()
        assert app.focused is setup.query_one("#train-epochs", Input)
        assert setup.query_one("#setup-form").scroll_y > 0
        nav = setup.query_one("#setup-nav", OptionList)
        nav.focus()
        nav.highlighted = 4
        await pilot.press("enter")
        await pilot.pause()
        assert app.focused is setup.query_one("#gates-on", Checkbox)


class _ThirdPartyGate:
    @hookimpl
    def register_gates(self, register):
        from lvm_plugins.gates import GATES

        register("my_gate", GATES[0], description="a third-party gate")


async def test_the_gate_checklist_lists_every_registered_gate_and_writes_use():
    host = load_plugins(entry_points=False, extra_plugins=[("third_party_gate", _ThirdPartyGate())])
    assert "my_gate" in host.names("gate")
    app = WorkbenchApp(host=host)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        setup = app.setup_pane
        ticks = [t.id for t in setup.query(".gate-use").results(Checkbox)]
        assert ticks == [f"gate-use-{n}" for n in host.names("gate")]
        setup.query_one("#gates-on", Checkbox).value = True
        await pilot.pause()
        assert "use" not in setup.plan_dict()["gates"]  # all default gates ticked: the default
        setup.query_one("#gate-use-E", Checkbox).value = False
        await pilot.pause()
        assert setup.plan_dict()["gates"]["use"] == ["A", "B", "C", "D", "vs_baselines"]
        setup.query_one("#gate-use-my_gate", Checkbox).value = True
        await pilot.pause()
        assert setup.plan_dict()["gates"]["use"] == ["A", "B", "C", "D", "vs_baselines", "my_gate"]


async def test_guardrails_are_edited_as_toml_tables(tmp_path, host):
    store = make_tiny_store(tmp_path / "tiny", lengths=(12, 10, 11, 9, 12, 10), dim=16)
    plan = {"name": "g", "data": {"store": str(store.path), "filter": [{"metric": "forward_advantage", "top": 0.5}]},
            "model": {"arch": "mlp"}, "loss": [{"name": "mse"}],
            "tripwire": [{"name": "cos fell", "when": "val/cos drop > 0.05", "action": "alert"}]}
    app = WorkbenchApp(host=host)
    async with app.run_test(size=SIZE) as pilot:
        setup = app.setup_pane
        setup.load_dict(plan, tmp_path)
        await settle(pilot, app)
        text = setup.query_one("#guardrails", TextArea).text
        assert "[[tripwire]]" in text and "[[data.filter]]" in text
        out = setup.plan_dict()
        assert out["tripwire"] == plan["tripwire"] and out["data"]["filter"] == plan["data"]["filter"]
        setup.query_one("#guardrails", TextArea).text = "[[tripwire]\n"
        with pytest.raises(InputErrors) as err:
            setup.plan_dict()
        assert err.value.lines()[0].startswith("setup: guardrails: not valid TOML")
