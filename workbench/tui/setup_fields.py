"""Setup form fields made from declarations: one `KeyField` per plan key or plugin parameter.

A field shows the key's name (never wrapped), an editor chosen by the declared type (a tick box
for booleans, a picker for choices, text otherwise) holding the real value, and the help, range
and unit as a muted hint beside it: a hint never sits inside the editor where it would look like
a value. Tables and lists are edited as TOML inline values, so what a person types is exactly what
the saved plan holds.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Checkbox, Input, Label, Select, Static

from lvm_core.errors import InputError
from lvm_core.params import Param

from .planform import param_text, parse_param


class Tick(Checkbox):
    """A check box whose box is empty when off (Textual's draws an "X" either way, only dimmer)."""

    @property
    def _button(self) -> Content:
        self.BUTTON_INNER = "X" if self.value else " "
        return super()._button


def hint_text(key: Param) -> str:
    """The muted line beside a field: what it does, its range and unit."""
    bounds = key.range_text()
    if key.choices:
        bounds = " | ".join(str(c) for c in key.choices)
    unit = f" {key.unit}" if key.unit else ""
    extra = f" [{bounds}{unit}]" if bounds else (f" [{key.unit}]" if key.unit else "")
    return f"{key.help}{extra}"


class KeyField(Horizontal):
    """One declared key: label, editor, hint. `value` is what the editor holds, read back by `read`."""

    DEFAULT_CSS = """
    KeyField { height: auto; }
    KeyField > .setup-label { width: 22; padding: 0 1 0 0; text-wrap: nowrap; text-overflow: ellipsis; }
    KeyField > Input, KeyField > Select { width: 30; }
    KeyField > Tick { width: 30; }
    KeyField > .setup-hint { width: 1fr; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis;
                             padding: 0 0 0 1; }
    """

    def __init__(self, key: Param, wid: str, value: Any, *, label: str | None = None, where: str = "") -> None:
        super().__init__(classes="setup-field")
        self.key, self.wid, self.where = key, wid, where or key.name
        self.label = label or key.name
        self._initial = value
        self._editor_widget: Any = None

    def compose(self) -> ComposeResult:
        key, value = self.key, self._initial
        yield Label(self.label, classes="setup-label")
        if key.type == "bool":
            yield Tick("", bool(value), compact=True, id=self.wid, tooltip=key.help)
        elif key.choices:
            options = [(str(c), c) for c in key.choices]
            yield Select(options, value=value if value in key.choices else key.default, allow_blank=False,
                         compact=True, id=self.wid, tooltip=key.help)
        else:
            yield Input(param_text(value), compact=True, id=self.wid, tooltip=key.help)
        yield Static(hint_text(key), classes="setup-hint")

    def _editor(self) -> Any:
        """The editor, or None before the field is composed (its value is still `_initial` then)."""
        if self._editor_widget is None:
            found = self.query(f"#{self.wid}")
            self._editor_widget = found.first() if found else None
        return self._editor_widget

    def show(self, value: Any) -> None:
        """Put `value` in the editor."""
        editor = self._editor()
        if editor is None:
            self._initial = value
        elif isinstance(editor, Checkbox):
            editor.value = bool(value)
        elif isinstance(editor, Select):
            editor.value = value if value in (self.key.choices or ()) else self.key.default
        else:
            editor.value = param_text(value)

    def read(self) -> Any:
        """The editor's value as the key's type, checked by its declaration (InputError if not)."""
        editor = self._editor()
        if editor is None:
            return self.key.check(self._initial, self.where, "setup")
        if isinstance(editor, Checkbox):
            return bool(editor.value)
        if isinstance(editor, Select):
            return editor.value
        text = editor.value
        if not text.strip() and self.key.default is None:
            return None  # an optional key left empty: not set
        if not text.strip() and self.key.type in ("table", "list"):
            return type(self.key.default)() if self.key.default is not None else None
        return parse_param(self.key, text, self.where)


def read_fields(fields: list[KeyField], errors: list[InputError]) -> dict[str, Any]:
    """Every field's value by key name; a field that cannot be read adds its problem to `errors`."""
    out = {}
    for f in fields:
        try:
            out[f.key.name] = f.read()
        except InputError as exc:
            errors.append(exc)
    return out
