"""Setup: the plan as a form, in sections (run and data, model, losses, training, gates,
guardrails, plugins) reached from a sidebar or with alt+1..alt+7.

Every field is generated from a declaration: plan keys from the plan schema
(workbench/plan/schema.py), model and loss parameters and the gate list from the plugin host. A
field holds the real value (the default when the plan does not set it) with the help as a hint
beside it. Loading a plan shows exactly its values; `plan_dict` gives them back, so load -> form
-> save returns the same plan (tests/test_setup_form.py round-trips every example).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Select, Static, TextArea

from lvm_core.errors import InputError, InputErrors
from lvm_core.params import Param

from ..plan import schema
from ..plan.schema import Section
from ..plugin_host import Item, PluginHost
from . import datasets
from .planform import merge, resolve_store, toml_inline, toml_key, widget_id
from .setup_fields import KeyField, Tick, read_fields

#: sidebar entries: (label, the id of the section's heading)
SECTIONS = [("Run & data", "sec-data"), ("Model", "sec-model"), ("Losses", "sec-losses"),
            ("Training", "sec-training"), ("Gates", "sec-gates"), ("Guardrails", "sec-guardrails"),
            ("Plugins", "sec-plugins")]
DEFAULT_NAME = "untitled"


def default_plan(host: PluginHost, stores: list[Path]) -> dict[str, Any]:
    """A plan that runs as is: the first bundled store, the first model, an MSE loss; every other
    value is the schema's default (the form shows them all)."""
    stores = sorted(stores, key=lambda p: p.name != "python-docs-minilm")  # the demo store first
    models = host.names("model")
    losses = host.names("loss")
    return {
        "name": DEFAULT_NAME,
        "seed": schema.default("", "seed"),
        "data": {"store": str(stores[0]) if stores else "", "context_len": schema.default("data", "context_len"),
                 "split": {"fractions": schema.default("data.split", "fractions"),
                           "seed": schema.default("data.split", "seed")}},
        "model": {"arch": "mlp" if "mlp" in models else (models[0] if models else ""), "params": {}},
        "loss": [{"name": "mse" if "mse" in losses else losses[0], "weight": 1.0}] if losses else [],
        "train": schema.TRAIN.defaults(),
    }


def _tables_text(*arrays: tuple[str, Any]) -> str:
    """Arrays of tables as TOML, one `[[name]]` header per entry, values inline."""
    out = []
    for name, entries in arrays:
        for entry in entries if isinstance(entries, list) else [entries] if entries else []:
            out.append(f"[[{name}]]\n" + "".join(f"{toml_key(k)} = {toml_inline(v)}\n" for k, v in entry.items()))
    return "\n".join(out)


def key_id(path: str, name: str) -> str:
    """The widget id of a plan key: `train-epochs`, `data-split-seed`, `plan-name` (top level)."""
    return widget_id(*(path.split(".") if path else ["plan"]), name)


def _section_values(plan: dict[str, Any], path: str) -> dict[str, Any]:
    table: Any = plan
    for part in filter(None, path.split(".")):
        table = table.get(part) if isinstance(table, dict) else None
    return table if isinstance(table, dict) else {}


class SetupPane(Horizontal):
    """The Setup tab."""

    DEFAULT_CSS = """
    SetupPane #setup-nav { width: 16; height: 1fr; border-right: tall $primary-background; }
    SetupPane #setup-main { width: 1fr; height: 1fr; }
    SetupPane #setup-form { height: 1fr; }
    SetupPane .setup-section { margin-top: 1; height: 1; text-style: bold; color: $accent; }
    SetupPane .setup-row { height: auto; }
    SetupPane .setup-row > .setup-label { width: 22; padding: 0 1 0 0; text-wrap: nowrap; text-overflow: ellipsis; }
    SetupPane .setup-row > Input { width: 1fr; }
    SetupPane .loss-row { height: auto; border-left: tall $primary-background; }
    SetupPane .loss-row.off > KeyField { display: none; }  /* an unused loss is one line */
    SetupPane #store-manifest, SetupPane #param-count { padding: 0 0 0 22; height: auto; }
    SetupPane #guardrails { height: 10; }
    """

    #: pane keys (bound on the App while Setup is shown, workbench/tui/keys.py): a section each
    KEYS = [Binding("alt+1", "jump(0)", "Sections", key_display="alt+1..7",
                    tooltip="jump to a section: " + ", ".join(f"alt+{i} {label}" for i, (label, _) in
                                                              enumerate(SECTIONS, 1)) + " (or pick it in the sidebar)"),
            *(Binding(f"alt+{i}", f"jump({i - 1})", label, show=False, tooltip=f"jump to {label}")
              for i, (label, _) in enumerate(SECTIONS, 1) if i > 1)]

    class StoreChosen(Message):
        """A dataset was picked (the Data and Gates screens follow it)."""

        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    def __init__(self, host: PluginHost, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.host = host
        self.stores = datasets.known_stores()
        self.base: dict[str, Any] = default_plan(host, self.stores)
        self.plan_dir = Path.cwd()
        self.dim: int | None = None  # the chosen store's dimension; None: no store opens there
        self.store_problem = ""
        self.param_count: int | None = None
        self.model_arch = ""  # the architecture whose parameters the form shows
        self._count_gen = 0
        self._by_id: dict[str, KeyField] = {}  # the schema sections' fields by widget id
        self._loading = False

    # ---- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield OptionList(*[f"{i} {label}" for i, (label, _) in enumerate(SECTIONS, 1)], id="setup-nav")
        with Vertical(id="setup-main"):
            yield Static("", id="setup-message")
            with Horizontal(classes="buttons"):
                yield Button("Load plan", compact=True, id="load-plan")
                yield Button("Save plan", compact=True, id="save-plan")
                yield Button("Check", compact=True, id="check-plan")
                yield Button("Train", compact=True, id="train-plan", variant="success")
            with VerticalScroll(id="setup-form"):
                yield from self._compose_form()

    def _compose_form(self) -> ComposeResult:
        yield Label("Run & data", classes="setup-section", id="sec-data")
        yield from self._key_fields(schema.TOP)
        options = [(self._store_label(p), str(p)) for p in self.stores]
        yield self._row("store", Select(options, compact=True, id="store-select", prompt="pick a store"))
        with Horizontal(classes="setup-row"):
            yield Label("path", classes="setup-label")
            yield Input(compact=True, id="store-path")
            yield Button("Browse", compact=True, id="store-browse")
        yield Static("", id="store-manifest")
        yield self._row("ood", Select(options, compact=True, id="ood-select", prompt="none"))
        yield from self._key_fields(schema.DATA, skip=("store", "ood"))
        yield from self._key_fields(schema.SPLIT, label_prefix="split ")
        yield Label("Model", classes="setup-section", id="sec-model")
        yield self._row("arch", Select([(n, n) for n in self.host.names("model")], compact=True, id="model-select",
                                       prompt="pick a model"))
        yield Vertical(id="model-params")
        yield Static("parameters: -", id="param-count")
        yield Label("Losses (tick to use; weight, schedule, control, parameters)", classes="setup-section",
                    id="sec-losses")
        with Vertical(id="losses"):
            for item in self._items("loss"):
                yield from self._loss_row(item)
        yield Label("Training", classes="setup-section", id="sec-training")
        yield from self._key_fields(schema.TRAIN)
        yield Label("Validation", classes="setup-section")
        yield from self._key_fields(schema.EVAL)
        yield Label("Gates (5CAT)", classes="setup-section", id="sec-gates")
        yield self._row("run the battery", Tick("", compact=True, id="gates-on"))
        for name in self.host.names("gate"):
            item = self.host.items["gate"][name]
            yield self._row(f"gate {name}", Tick(f"{item.description or ''}"[:60], compact=True,
                                                 id=widget_id("gate-use", name), classes="gate-use",
                                                 tooltip=f"{item.description} ({item.plugin})"))
        yield from self._key_fields(schema.GATES, skip=("use",))
        yield Label("Guardrails ([[tripwire]] and [[data.filter]] tables, docs/guardrails.md)",
                    classes="setup-section", id="sec-guardrails")
        yield TextArea("", language=None, id="guardrails", soft_wrap=False)
        yield Label("Plugins", classes="setup-section", id="sec-plugins")
        yield from self._key_fields(schema.PLUGINS)

    def _row(self, label: str, widget: Any) -> Horizontal:
        return Horizontal(Label(label, classes="setup-label"), widget, classes="setup-row")

    def _key_fields(self, sec: Section, *, skip: tuple[str, ...] = (), label_prefix: str = "") -> list[KeyField]:
        return [KeyField(k, key_id(sec.path, k.name), k.default, label=label_prefix + k.name,
                         where=".".join(filter(None, [sec.path, k.name])))
                for k in sec.keys if k.name not in skip]

    def _items(self, kind: str) -> list[Item]:
        return [self.host.items[kind][n] for n in self.host.names(kind)]

    def _loss_row(self, item: Item) -> ComposeResult:
        name = item.name
        where = f"loss[{name}]"
        with Vertical(classes="loss-row off"):
            yield self._row(name, Tick(item.description[:60] if item.description else "", compact=True,
                                       id=widget_id("loss-on", name), classes="loss-on"))
            ids = {"weight": "loss-w", "schedule": "loss-sched", "control": "loss-control"}
            for key, prefix in ids.items():
                k = schema.LOSS.key(key)
                yield KeyField(k, widget_id(prefix, name), k.default, label=f"  {key}", where=f"{where}.{key}")
            for p in item.params:
                yield KeyField(p, widget_id("loss-p", name, p.name), p.default, label=f"  {p.name}",
                               where=f"{where}.params.{p.name}")

    def _store_label(self, path: Path) -> str:
        return path.name if path.parent.resolve() == datasets.BUNDLED.resolve() else str(path)

    # ---- navigation ----------------------------------------------------------------------
    def action_jump(self, index: int) -> None:
        """Scroll the form to a section and focus its first field."""
        heading = self.query_one(f"#{SECTIONS[index][1]}")
        form = self.query_one("#setup-form", VerticalScroll)
        form.scroll_to_widget(heading, top=True, animate=False)
        siblings = list(form.children)
        for widget in siblings[siblings.index(heading) + 1:]:
            focusable = [w for w in widget.query("*") if w.can_focus] if not widget.can_focus else [widget]
            if focusable:
                focusable[0].focus()
                break
        self.query_one("#setup-nav", OptionList).highlighted = index

    @on(OptionList.OptionSelected, "#setup-nav")
    def _nav_selected(self, event: OptionList.OptionSelected) -> None:
        self.action_jump(event.option_index)

    # ---- filling the form ----------------------------------------------------------------
    def on_mount(self) -> None:
        self.load_dict(self.base, self.plan_dir)

    def _fields(self, sec: Section) -> list[KeyField]:
        """The fields of a schema section, in its order (looked up once: they never change)."""
        if not self._by_id:
            self._by_id = {f.wid: f for f in self.query_one("#setup-form").query(KeyField)
                           if f.parent is not None and f.parent.id != "model-params"}
        return [self._by_id[key_id(sec.path, k.name)] for k in sec.keys if key_id(sec.path, k.name) in self._by_id]

    def _show_section(self, sec: Section, values: dict[str, Any]) -> None:
        for f in self._fields(sec):
            f.show(values.get(f.key.name, f.key.default))

    def load_dict(self, plan: dict[str, Any], plan_dir: Path) -> None:
        """Show exactly `plan` in the form (store paths relative to `plan_dir`); keys it does not
        set show their defaults."""
        self._loading = True
        self.base = plan
        self.plan_dir = plan_dir
        q = self.query_one
        self._show_section(schema.TOP, plan)
        data = plan.get("data", {})
        self._show_section(schema.DATA, data)
        self._show_section(schema.SPLIT, _section_values(plan, "data.split"))
        self._set_store(resolve_store(data["store"], plan_dir) if data.get("store") else "")
        self._set_select("#ood-select", resolve_store(data["ood"], plan_dir) if data.get("ood") else "")
        model = plan.get("model", {})
        arch = str(model.get("arch", ""))
        self._set_select("#model-select", arch)
        self._show_model_params(arch, dict(model.get("params", {})))
        self._show_losses(plan.get("loss", []))
        self._show_section(schema.TRAIN, plan.get("train", {}))
        self._show_section(schema.EVAL, plan.get("eval", {}))
        gates = plan.get("gates")
        q("#gates-on", Checkbox).value = gates is not None
        self._show_section(schema.GATES, gates or {})
        use = (gates or {}).get("use", schema.default("gates", "use"))
        for name in self.host.names("gate"):
            q(f"#{widget_id('gate-use', name)}", Checkbox).value = name in use
        q("#guardrails", TextArea).text = _tables_text(("tripwire", plan.get("tripwire")),
                                                       ("data.filter", data.get("filter")))
        self._show_section(schema.PLUGINS, plan.get("plugins", {}))
        self.call_after_refresh(setattr, self, "_loading", False)
        unknown = [e.get("name") for e in plan.get("loss", []) if e.get("name") not in self.host.items["loss"]]
        if unknown:
            self.say(f"plan names losses no plugin registers: {', '.join(map(str, unknown))} "
                     f"(known: {', '.join(self.host.names('loss'))})", error=True)

    def _show_losses(self, entries: list[dict[str, Any]]) -> None:
        given = {entry.get("name"): entry for entry in entries}
        for item in self._items("loss"):
            entry = given.get(item.name) or {}
            self.query_one(f"#{widget_id('loss-on', item.name)}", Checkbox).value = item.name in given
            for key, prefix in (("weight", "loss-w"), ("schedule", "loss-sched"), ("control", "loss-control")):
                field = self.query_one(f"#{widget_id(prefix, item.name)}").parent
                assert isinstance(field, KeyField)
                field.show(entry.get(key, schema.LOSS.key(key).default))
            values = {**item.param_defaults(), **entry.get("params", {})}
            for p in item.params:
                field = self.query_one(f"#{widget_id('loss-p', item.name, p.name)}").parent
                assert isinstance(field, KeyField)
                field.show(values[p.name])

    def _set_select(self, selector: str, value: str) -> None:
        select = self.query_one(selector, Select)
        known = {v for _, v in select._options}  # noqa: SLF001 - Select has no public option list
        select.value = value if value in known else Select.NULL

    def _set_store(self, path: str) -> None:
        """Show `path` as the chosen store, adding it to the picker if it is new."""
        select = self.query_one("#store-select", Select)
        if path and Path(path).resolve() not in self.stores and Path(path).exists():
            self.stores.append(Path(path).resolve())
            select.set_options([(self._store_label(p), str(p)) for p in self.stores])
        self._set_select("#store-select", str(Path(path).resolve()) if path else "")
        self.query_one("#store-path", Input).value = path
        self._describe_store(path)

    def _describe_store(self, path: str) -> None:
        target = self.query_one("#store-manifest", Static)
        self.dim, self.store_problem = None, ""
        if not path:
            self.store_problem = "no store chosen"
            target.update(self.store_problem)
        else:
            try:
                store, text = datasets.describe_store(Path(path))
            except InputError as exc:
                self.store_problem = f"cannot open: {exc.line()}"
                target.update(self.store_problem)
                target.add_class("error")
            else:
                target.remove_class("error")
                target.update(text)
                self.dim = store.dim
                self.post_message(self.StoreChosen(Path(path)))
        self._count_params()

    def _show_model_params(self, arch: str, values: dict[str, Any]) -> None:
        """Show `arch`'s parameters holding `values` (defaults for the rest)."""
        item = self.host.items["model"].get(arch)
        vals = {**item.param_defaults(), **values} if item is not None else {}
        if arch == self.model_arch and self._model_fields():  # same fields: new values only
            for f in self._model_fields():
                f.show(vals.get(f.key.name))
            self.call_after_refresh(self._count_params)
            return
        self.model_arch = arch
        box = self.query_one("#model-params", Vertical)
        box.remove_children()
        if item is None:
            self.query_one("#param-count", Static).update("parameters: - (no model chosen)")
            return
        box.mount_all([KeyField(p, widget_id("model-p", p.name), vals.get(p.name), where=f"model.params.{p.name}")
                       for p in item.params])
        self.call_after_refresh(self._count_params)

    # ---- reading the form ----------------------------------------------------------------
    def _model_fields(self) -> list[KeyField]:
        return list(self.query_one("#model-params").query(KeyField))

    def _read_params(self, fields: list[KeyField], declared: tuple[Param, ...], errors: list[InputError]) -> dict[str, Any]:
        """The parameters that differ from their declared defaults."""
        values = read_fields(fields, errors)
        defaults = {p.name: p.default for p in declared}
        return {k: v for k, v in values.items() if k in defaults and v != defaults[k]}

    def _read_section(self, sec: Section, base: dict[str, Any], errors: list[InputError],
                      skip: tuple[str, ...] = ()) -> dict[str, Any]:
        """A section's keys: those the loaded plan set, and those that differ from the default."""
        values = read_fields([f for f in self._fields(sec) if f.key.name not in skip], errors)
        return {k: v for k, v in values.items()
                if v is not None and (k in base or v != sec.key(k).default)}

    def plan_dict(self) -> dict[str, Any]:
        """The plan the form shows, or InputErrors listing every field that cannot be read."""
        q = self.query_one
        errors: list[InputError] = []
        base = self.base
        top = self._read_section(schema.TOP, base, errors)
        data: dict[str, Any] = {"store": q("#store-path", Input).value.strip(),
                                **self._read_section(schema.DATA, base.get("data", {}), errors, skip=("store", "ood"))}
        ood = q("#ood-select", Select).value
        if ood not in (Select.NULL, None, ""):
            data["ood"] = str(ood)
        data["split"] = self._read_section(schema.SPLIT, _section_values(base, "data.split"), errors)
        arch = q("#model-select", Select).value
        model: dict[str, Any] = {"arch": "" if arch is Select.NULL else str(arch), "params": {}}
        item = self.host.items["model"].get(model["arch"])
        if item is not None:
            model["params"] = self._read_params(self._model_fields(), item.params, errors)
        guards = self._read_guardrails(errors)
        if guards.get("data", {}).get("filter"):
            data["filter"] = guards["data"]["filter"]
        plan = {k: v for k, v in base.items() if k not in ("loss", "gates", "tripwire", "data", "model")}
        plan.update(top)
        plan.update({"data": data, "model": model, "loss": self._read_losses(errors),
                     "train": self._read_section(schema.TRAIN, base.get("train", {}), errors),
                     "eval": self._read_section(schema.EVAL, base.get("eval", {}), errors),
                     "plugins": self._read_section(schema.PLUGINS, base.get("plugins", {}), errors)})
        if not plan["eval"]:
            del plan["eval"]
        if not plan["plugins"]:
            del plan["plugins"]
        if guards.get("tripwire"):
            plan["tripwire"] = guards["tripwire"]
        if q("#gates-on", Checkbox).value:
            plan["gates"] = self._read_gates(base.get("gates") or {}, errors)
        if errors:
            raise InputErrors("setup", errors)
        return plan

    def _read_losses(self, errors: list[InputError]) -> list[dict[str, Any]]:
        """The ticked losses in the loaded plan's order, then new ones in the host's order."""
        order = [e.get("name") for e in self.base.get("loss", [])]
        items = sorted(self._items("loss"), key=lambda i: order.index(i.name) if i.name in order else len(order))
        losses = []
        for litem in items:
            if not self.query_one(f"#{widget_id('loss-on', litem.name)}", Checkbox).value:
                continue
            row = self.query_one(f"#{widget_id('loss-on', litem.name)}").parent.parent
            fields = list(row.query(KeyField))
            own = read_fields(fields[:3], errors)
            entry: dict[str, Any] = {"name": litem.name, "weight": own.get("weight", 1.0)}
            params = self._read_params(fields[3:], litem.params, errors)
            if params:
                entry["params"] = params
            for key in ("schedule", "control"):
                if own.get(key):
                    entry[key] = own[key]
            losses.append(entry)
        return losses

    def _read_gates(self, base: dict[str, Any], errors: list[InputError]) -> dict[str, Any]:
        gates = merge(base, self._read_section(schema.GATES, base, errors, skip=("use",)))
        ticked = [n for n in self.host.names("gate") if self.query_one(f"#{widget_id('gate-use', n)}", Checkbox).value]
        given = [n for n in base.get("use", schema.default("gates", "use")) if n in ticked]
        use = given + [n for n in ticked if n not in given]
        if "use" in base or use != schema.default("gates", "use"):
            gates["use"] = use
        return gates

    def _read_guardrails(self, errors: list[InputError]) -> dict[str, Any]:
        text = self.query_one("#guardrails", TextArea).text
        try:
            guards = tomli.loads(text)
        except tomli.TOMLDecodeError as exc:
            errors.append(InputError("setup", f"not valid TOML ({exc})", "guardrails"))
            return {}
        extra = sorted(set(guards) - {"tripwire", "data"}) + sorted(set(guards.get("data", {})) - {"filter"})
        if extra:
            errors.append(InputError("setup", f"only [[tripwire]] and [[data.filter]] tables go here, got {extra}",
                                     "guardrails"))
        return guards

    def say(self, text: str, *, error: bool = False) -> None:
        msg = self.query_one("#setup-message", Static)
        msg.update(text)
        msg.set_class(error, "error")

    # ---- events --------------------------------------------------------------------------
    @on(Checkbox.Changed, ".loss-on")
    def _loss_ticked(self, event: Checkbox.Changed) -> None:
        """A ticked loss shows its weight, schedule, control and parameters; an unticked one is one line."""
        row = event.checkbox.parent.parent if event.checkbox.parent is not None else None
        if row is not None:
            row.set_class(not event.value, "off")

    @on(Select.Changed, "#store-select")
    def _store_picked(self, event: Select.Changed) -> None:
        if self._loading or event.value is Select.NULL:
            return
        self.query_one("#store-path", Input).value = str(event.value)
        self._describe_store(str(event.value))
        datasets.remember_store(Path(str(event.value)))

    @on(Input.Submitted, "#store-path")
    def _store_typed(self, event: Input.Submitted) -> None:
        self._set_store(event.value.strip())

    @on(Button.Pressed, "#store-browse")
    def _browse(self) -> None:
        from .dialogs import PathScreen

        def chosen(path: Path | None) -> None:
            if path is not None:
                self._set_store(str(path))

        start = datasets.BUNDLED if datasets.BUNDLED.is_dir() else Path.cwd()
        self.app.push_screen(PathScreen("Choose a store directory", start), chosen)

    @on(Select.Changed, "#model-select")
    def _model_picked(self, event: Select.Changed) -> None:
        arch = "" if event.value is Select.NULL else str(event.value)
        if arch == self.model_arch:  # the form already shows it (a plan was just loaded)
            return
        self._show_model_params(arch, self._params_that_still_apply(arch))

    def _params_that_still_apply(self, arch: str) -> dict[str, Any]:
        """The shown model parameters that `arch` declares too, with the same type and in its range."""
        new = self.host.items["model"].get(arch)
        shown = {f.key.name: f for f in self._model_fields()}
        kept: dict[str, Any] = {}
        for p in new.params if new is not None else ():
            field = shown.get(p.name)
            if field is None or field.key.type != p.type:
                continue
            try:
                kept[p.name] = p.check(field.read(), p.name, "setup")
            except InputError:
                continue
        return kept

    @on(Input.Changed, "#model-params Input")
    @on(Checkbox.Changed, "#model-params Checkbox")
    @on(Input.Changed, "#data-context_len")
    def _model_param_changed(self) -> None:
        self._count_params()

    def _count_params(self) -> None:
        self._count_gen += 1  # a count still being made for an older form is dropped
        item = self.host.items["model"].get(self.model_arch)
        count = self.query_one("#param-count", Static)
        if item is None:
            self.param_count = None
            return
        if self.dim is None:
            self.param_count = None
            count.update(f"parameters: - ({self.store_problem or 'no store'}; the count needs the store's dimension)")
            return
        errors: list[InputError] = []
        params = read_fields(self._model_fields(), errors)
        try:
            context_len = int(self.query_one("#data-context_len", Input).value)
        except ValueError:
            context_len = schema.default("data", "context_len")
        if errors:
            self.param_count = None
            count.update(f"parameters: - ({errors[0].line()})")
            return
        self._param_count_worker(item, self.dim, context_len, params, self._count_gen)

    @work(thread=True, exclusive=True, group="param-count", exit_on_error=False)
    def _param_count_worker(self, item: Item, dim: int, context_len: int, params: dict[str, Any], gen: int) -> None:
        try:
            model = item.obj(dim, context_len, **{**item.param_defaults(), **params})
            n = sum(p.numel() for p in model.parameters())
            text = f"parameters: {n:,}  (dim {dim}, context {context_len})"
        except Exception as exc:  # noqa: BLE001 - a plugin's builder may raise anything
            n, text = None, f"parameters: - ({item.name} cannot be built: {type(exc).__name__}: {exc})"
        self.app.call_from_thread(self._show_count, n, text, gen)

    def _show_count(self, n: int | None, text: str, gen: int) -> None:
        if gen != self._count_gen:
            return
        self.param_count = n
        self.query_one("#param-count", Static).update(text)

