"""Plugins: every registered item with its plugin, distribution and version, its parameters and
documentation, and every plugin that failed to load (shown, never fatal)."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from ..plugin_host import Item, PluginHost


def describe_item(item: Item) -> Text:
    """The detail text for one item: what it is, where it comes from, its parameters."""
    text = Text()
    text.append(f"{item.kind} {item.name}\n", style="bold")
    text.append(f"plugin {item.plugin} ({item.dist} {item.version})".rstrip() + "\n\n")
    text.append((item.description or "(no description)") + "\n")
    doc = (getattr(item.obj, "__doc__", None) or "").strip()
    if doc and doc.split("\n")[0] != item.description:
        text.append("\n" + doc + "\n")
    text.append("\n")
    if item.params:
        text.append("parameters\n", style="bold")
        for p in item.params:
            extra = f" one of {list(p.choices)}" if p.choices else ""
            text.append(f"  {p.name}: {p.type} = {p.default!r}{extra}  {p.help}\n")
    else:
        text.append("no parameters\n")
    return text


class PluginsPane(Vertical):
    """The Plugins tab."""

    def __init__(self, host: PluginHost, problems: list[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.host = host
        self.problems = problems
        self._rows: list[Item] = []

    def compose(self) -> ComposeResult:
        yield Static(self._problem_text(), id="plugin-problems", markup=False)
        with Horizontal():
            yield DataTable(id="plugin-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="plugin-detail")

    def _problem_text(self) -> str:
        lines = [f"plugin {p.plugin} failed at {p.stage}: {p.error}" for p in self.host.problems]
        lines += self.problems
        return "\n".join(lines) if lines else f"{sum(1 for _ in self.host.all_items())} items registered, no problems"

    def on_mount(self) -> None:
        problems = self.query_one("#plugin-problems", Static)
        problems.set_class(bool(self.host.problems or self.problems), "error")
        table = self.query_one("#plugin-table", DataTable)
        table.add_columns("kind", "name", "distribution", "plugin")
        self._rows = list(self.host.all_items())
        for item in self._rows:
            table.add_row(item.kind, item.name, f"{item.dist} {item.version}".strip(), item.plugin)
        if self._rows:
            self.query_one("#plugin-detail", Static).update(describe_item(self._rows[0]))

    @on(DataTable.RowHighlighted, "#plugin-table")
    def _show(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self._rows):
            self.query_one("#plugin-detail", Static).update(describe_item(self._rows[event.cursor_row]))
