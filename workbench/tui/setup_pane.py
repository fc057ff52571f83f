"""Setup: dataset, split, model and its parameters (with a live parameter count), loss strategies
with weights, parameters and schedules, training settings and the gates, as one plan.

The form edits a plan dict. Keys the form does not show (weight_decay, [eval], ...) are kept
from the loaded plan, so loading and saving a plan never drops what a person wrote by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from lvm_core.errors import InputError, InputErrors
from lvm_core.params import Param

from ..plan import schema
from ..plugin_host import Item, PluginHost
from . import datasets
from .planform import merge, param_text, parse_inline, parse_number, parse_param, resolve_store, toml_inline, widget_id

DEFAULT_DIM = 384
_KINDS = {"int": int, "float": float, "str": str}
#: the [train] keys the form shows: (key, Python type, the schema's default)
TRAIN_FIELDS: list[tuple[str, type, Any]] = [
    (k.name, _KINDS[k.type], k.default) for k in map(schema.TRAIN.key, ("epochs", "batch_size", "lr", "device",
                                                                          "threads", "log_every"))]


def default_plan(host: PluginHost, stores: list[Path]) -> dict[str, Any]:
    """A plan that runs as is: the first bundled store, the first model, an MSE loss."""
    stores = sorted(stores, key=lambda p: p.name != "python-docs-minilm")  # the demo store first
    models = host.names("model")
    losses = host.names("loss")
    plan: dict[str, Any] = {
        "name": "quickstart",
        "seed": schema.default("", "seed"),
        "data": {"store": str(stores[0]) if stores else "", "context_len": schema.default("data", "context_len"),
                 "split": {"fractions": schema.default("data.split", "fractions"),
                           "seed": schema.default("data.split", "seed")}},
        "model": {"arch": "mlp" if "mlp" in models else (models[0] if models else ""), "params": {}},
        "loss": [{"name": "mse" if "mse" in losses else losses[0], "weight": 1.0}] if losses else [],
        "train": {k: v for k, _, v in TRAIN_FIELDS},
    }
    return plan


def _field(label: str, widget: Any) -> Horizontal:
    return Horizontal(Label(label, classes="field-label"), widget, classes="field")


class SetupPane(VerticalScroll):
    """The Setup tab."""

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
        self.dim = DEFAULT_DIM
        self.param_count: int | None = None
        self._loading = False

    # ---- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static("", id="setup-message")
        with Horizontal(classes="buttons"):
            yield Button("Load plan", compact=True, id="load-plan")
            yield Button("Save plan", compact=True, id="save-plan")
            yield Button("Check", compact=True, id="check-plan")
            yield Button("Train", compact=True, id="train-plan", variant="success")
        yield Label("Run", classes="section")
        yield _field("name", Input(compact=True, id="plan-name"))
        yield _field("seed", Input(compact=True, id="plan-seed", type="integer"))
        yield Label("Dataset", classes="section")
        options = [(self._store_label(p), str(p)) for p in self.stores]
        yield _field("store", Select(options, compact=True, id="store-select", prompt="pick a store"))
        with Horizontal(classes="field"):
            yield Label("path", classes="field-label")
            yield Input(compact=True, id="store-path", placeholder="a store directory")
            yield Button("Browse", compact=True, id="store-browse")
        yield Static("", id="store-manifest")
        yield _field("ood store", Select(options, compact=True, id="ood-select", prompt="none"))
        yield _field("context", Input(compact=True, id="context-len", type="integer"))
        yield _field("val fraction", Input(compact=True, id="split-val"))
        yield _field("split seed", Input(compact=True, id="split-seed", type="integer"))
        yield _field("ranges", Input(compact=True, id="split-ranges", placeholder='{ val = [[4000, 4499]] } (overrides the fraction)'))
        yield Label("Model", classes="section")
        yield _field("arch", Select([(n, n) for n in self.host.names("model")], compact=True, id="model-select", prompt="pick a model"))
        yield Vertical(id="model-params")
        yield Static("parameters: -", id="param-count")
        yield Label("Losses (weight, parameters, schedule)", classes="section")
        with Vertical(id="losses"):
            for item in self._items("loss"):
                yield from self._loss_row(item)
        yield Label("Training", classes="section")
        for key, _, _ in TRAIN_FIELDS:
            yield _field(key, Input(compact=True, id=f"train-{key}"))
        yield Label("Gates (5CAT)", classes="section")
        yield Checkbox("run the 5CAT battery", compact=True, id="gates-on")
        yield _field("samples", Input(compact=True, id="gates-samples", type="integer"))
        yield _field("every", Input(compact=True, id="gates-every", type="integer"))
        yield Checkbox("required (a failing battery fails the run)", compact=True, id="gates-required")

    def _items(self, kind: str) -> list[Item]:
        return [self.host.items[kind][n] for n in self.host.names(kind)]

    def _loss_row(self, item: Item) -> ComposeResult:
        name = item.name
        with Vertical(classes="loss-row"):
            with Horizontal(classes="field"):
                yield Checkbox(name, compact=True, id=widget_id("loss-on", name), classes="loss-on")
                yield Input("1.0", compact=True, id=widget_id("loss-w", name), classes="loss-weight", tooltip="weight")
                yield Input("", compact=True, id=widget_id("loss-sched", name), classes="loss-sched",
                            placeholder='schedule: { kind = "step", epoch = 3, before = 0.0, after = 0.5 }')
            for p in item.params:
                yield self._param_field(p, widget_id("loss-p", name, p.name), p.default)

    def _param_field(self, p: Param, wid: str, value: Any) -> Horizontal:
        if p.type == "bool":
            widget: Any = Checkbox(p.name, bool(value), compact=True, id=wid, tooltip=p.help)
        else:
            widget = Input(param_text(value), compact=True, id=wid, tooltip=p.help)
        return _field(p.name, widget)

    def _store_label(self, path: Path) -> str:
        return path.name if path.parent.resolve() == datasets.BUNDLED.resolve() else str(path)

    # ---- filling the form ----------------------------------------------------------------
    def on_mount(self) -> None:
        self.load_dict(self.base, self.plan_dir)

    def load_dict(self, plan: dict[str, Any], plan_dir: Path) -> None:
        """Show `plan` in the form (store paths relative to `plan_dir`)."""
        self._loading = True
        self.base = plan
        self.plan_dir = plan_dir
        q = self.query_one
        q("#plan-name", Input).value = str(plan.get("name", ""))
        q("#plan-seed", Input).value = str(plan.get("seed", schema.default("", "seed")))
        data = plan.get("data", {})
        store = resolve_store(data["store"], plan_dir) if data.get("store") else ""
        self._set_store(store)
        ood = resolve_store(data["ood"], plan_dir) if data.get("ood") else ""
        self._set_select("#ood-select", ood)
        q("#context-len", Input).value = str(data.get("context_len", schema.default("data", "context_len")))
        split = data.get("split", {})
        q("#split-val", Input).value = param_text(split.get("fractions", schema.default("data.split", "fractions")).get("val", 0.0))
        q("#split-seed", Input).value = str(split.get("seed", schema.default("data.split", "seed")))
        q("#split-ranges", Input).value = toml_inline(split["ranges"]) if "ranges" in split else ""
        model = plan.get("model", {})
        arch = model.get("arch", "")
        self._set_select("#model-select", arch)
        self.call_after_refresh(self._show_model_params, arch, dict(model.get("params", {})))
        given = {entry.get("name"): entry for entry in plan.get("loss", [])}
        for item in self._items("loss"):
            entry = given.get(item.name)
            q(f"#{widget_id('loss-on', item.name)}", Checkbox).value = entry is not None
            q(f"#{widget_id('loss-w', item.name)}", Input).value = param_text((entry or {}).get("weight", 1.0))
            sched = (entry or {}).get("schedule")
            q(f"#{widget_id('loss-sched', item.name)}", Input).value = toml_inline(sched) if sched else ""
            values = {**item.param_defaults(), **(entry or {}).get("params", {})}
            for p in item.params:
                w = q(f"#{widget_id('loss-p', item.name, p.name)}")
                if isinstance(w, Checkbox):
                    w.value = bool(values[p.name])
                else:
                    w.value = param_text(values[p.name])
        unknown = [n for n in given if n not in self.host.items["loss"]]
        train = plan.get("train", {})
        for key, _, default in TRAIN_FIELDS:
            q(f"#train-{key}", Input).value = param_text(train.get(key, default))
        gates = plan.get("gates")
        q("#gates-on", Checkbox).value = gates is not None
        for key in ("samples", "every"):
            q(f"#gates-{key}", Input).value = str((gates or {}).get(key, schema.default("gates", key)))
        q("#gates-required", Checkbox).value = bool((gates or {}).get("required", schema.default("gates", "required")))
        self.call_after_refresh(setattr, self, "_loading", False)
        if unknown:
            self.say(f"plan names losses no plugin registers: {', '.join(unknown)} (known: {', '.join(self.host.names('loss'))})", error=True)

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
        if not path:
            target.update("no store chosen")
            return
        try:
            store, text = datasets.describe_store(Path(path))
        except InputError as exc:
            target.update(f"cannot open: {exc.line()}")
            target.add_class("error")
            return
        target.remove_class("error")
        target.update(text)
        self.dim = store.dim
        self.post_message(self.StoreChosen(Path(path)))
        self._count_params()

    def _show_model_params(self, arch: str, values: dict[str, Any]) -> None:
        box = self.query_one("#model-params", Vertical)
        box.remove_children()
        item = self.host.items["model"].get(arch)
        if item is None:
            self.query_one("#param-count", Static).update("parameters: -")
            return
        vals = {**item.param_defaults(), **values}
        box.mount_all([self._param_field(p, widget_id("model-p", p.name), vals.get(p.name)) for p in item.params])
        self.call_after_refresh(self._count_params)

    # ---- reading the form ----------------------------------------------------------------
    def _read_params(self, item: Item, prefix: tuple[str, ...], errors: list[InputError], where: str) -> dict[str, Any]:
        out = {}
        for p in item.params:
            w = self.query(f"#{widget_id(*prefix, p.name)}")
            if not w:
                continue
            widget = w.first()
            try:
                value = bool(widget.value) if isinstance(widget, Checkbox) else parse_param(p, widget.value, f"{where}.{p.name}")
            except InputError as exc:
                errors.append(exc)
                continue
            if value != p.default:
                out[p.name] = value
        return out

    def plan_dict(self) -> dict[str, Any]:
        """The plan the form shows, or InputErrors listing every field that cannot be read."""
        q = self.query_one
        errors: list[InputError] = []

        def num(selector: str, kind: type, where: str) -> Any:
            try:
                return parse_number(q(selector, Input).value, kind, where)
            except InputError as exc:
                errors.append(exc)
                return None

        store = q("#store-path", Input).value.strip()
        data: dict[str, Any] = {"store": store, "context_len": num("#context-len", int, "data.context_len")}
        ood = q("#ood-select", Select).value
        if ood not in (Select.NULL, None, ""):
            data["ood"] = str(ood)
        ranges_text = q("#split-ranges", Input).value.strip()
        if ranges_text:
            try:
                data["split"] = {"ranges": parse_inline(ranges_text, "data.split.ranges"), "rest": "train"}
            except InputError as exc:
                errors.append(exc)
        else:
            val = num("#split-val", float, "data.split.fractions.val")
            if val is not None:
                data["split"] = {"fractions": {"train": round(1.0 - val, 10), "val": val},
                                 "seed": num("#split-seed", int, "data.split.seed")}
        arch = q("#model-select", Select).value
        model: dict[str, Any] = {"arch": "" if arch is Select.NULL else str(arch)}
        item = self.host.items["model"].get(model["arch"])
        if item is not None:
            model["params"] = self._read_params(item, ("model-p",), errors, "model.params")
        losses = []
        for litem in self._items("loss"):
            if not q(f"#{widget_id('loss-on', litem.name)}", Checkbox).value:
                continue
            entry: dict[str, Any] = {"name": litem.name,
                                     "weight": num(f"#{widget_id('loss-w', litem.name)}", float, f"loss[{litem.name}].weight")}
            params = self._read_params(litem, ("loss-p", litem.name), errors, f"loss[{litem.name}].params")
            if params:
                entry["params"] = params
            sched = q(f"#{widget_id('loss-sched', litem.name)}", Input).value.strip()
            if sched:
                try:
                    entry["schedule"] = parse_inline(sched, f"loss[{litem.name}].schedule")
                except InputError as exc:
                    errors.append(exc)
            losses.append(entry)
        train = {key: num(f"#train-{key}", kind, f"train.{key}") if kind is not str else q(f"#train-{key}", Input).value.strip()
                 for key, kind, _ in TRAIN_FIELDS}
        updates: dict[str, Any] = {
            "name": q("#plan-name", Input).value.strip(),
            "seed": num("#plan-seed", int, "seed"),
            "data": data,
            "model": model,
            "train": train,
        }
        plan = merge({k: v for k, v in self.base.items() if k not in ("loss", "gates")}, updates)
        plan["data"]["split"] = data.get("split", {})  # a split rule replaces the old one whole
        if "ood" not in data:
            plan["data"].pop("ood", None)
        plan["model"]["params"] = model.get("params", {})
        plan["loss"] = losses
        if q("#gates-on", Checkbox).value:
            plan["gates"] = merge(self.base.get("gates", {}), {
                "samples": num("#gates-samples", int, "gates.samples"),
                "every": num("#gates-every", int, "gates.every"),
                "required": q("#gates-required", Checkbox).value,
            })
        if errors:
            raise InputErrors("setup", errors)
        return plan

    def say(self, text: str, *, error: bool = False) -> None:
        msg = self.query_one("#setup-message", Static)
        msg.update(text)
        msg.set_class(error, "error")

    # ---- events --------------------------------------------------------------------------
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
        if self._loading:
            return
        self._show_model_params("" if event.value is Select.NULL else str(event.value), {})

    @on(Input.Changed, "#model-params Input")
    @on(Checkbox.Changed, "#model-params Checkbox")
    @on(Input.Changed, "#context-len")
    def _model_param_changed(self) -> None:
        self._count_params()

    def _count_params(self) -> None:
        arch = self.query_one("#model-select", Select).value
        item = self.host.items["model"].get("" if arch is Select.NULL else str(arch))
        if item is None:
            return
        errors: list[InputError] = []
        params = self._read_params(item, ("model-p",), errors, "model.params")
        try:
            context_len = int(self.query_one("#context-len", Input).value)
        except ValueError:
            context_len = 5
        if errors:
            self.query_one("#param-count", Static).update(f"parameters: - ({errors[0].line()})")
            return
        self._param_count_worker(item, self.dim, context_len, params)

    @work(thread=True, exclusive=True, group="param-count", exit_on_error=False)
    def _param_count_worker(self, item: Item, dim: int, context_len: int, params: dict[str, Any]) -> None:
        try:
            model = item.obj(dim, context_len, **{**item.param_defaults(), **params})
            n = sum(p.numel() for p in model.parameters())
            text = f"parameters: {n:,}  (dim {dim}, context {context_len})"
        except Exception as exc:  # noqa: BLE001 - a plugin's builder may raise anything
            n, text = None, f"parameters: - ({item.name} cannot be built: {type(exc).__name__}: {exc})"
        self.app.call_from_thread(self._show_count, n, text)

    def _show_count(self, n: int | None, text: str) -> None:
        self.param_count = n
        self.query_one("#param-count", Static).update(text)
