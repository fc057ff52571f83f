"""Plugins: every registered item with its plugin, distribution and version, its parameters and
documentation, and every plugin that was disabled (failed to load, to register, or a check at
registration): listed in red with its problem and the switch that stops loading it; the rest
of the workbench keeps working."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from ..plugin_host import Item, PluginHost, PluginProblem


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


def describe_problem(problem: PluginProblem) -> Text:
    """The detail text for a disabled plugin: what failed, where it comes from, how to stop it."""
    text = Text()
    text.append(f"plugin {problem.plugin}: disabled\n", style="bold red")
    if problem.dist:
        text.append(f"distribution {problem.dist} {problem.version}".rstrip() + "\n")
    text.append(f"\n{problem.stage}: {problem.error}\n\n", style="red")
    text.append("None of its items is used; everything else works.\n")
    text.append(f"To stop loading it (and this warning): {problem.switch}\n", style="bold")
    return text


class PluginsPane(Vertical):
    """The Plugins tab."""

    def __init__(self, host: PluginHost, problems: list[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.host = host
        self.problems = problems
        self._rows: list[Item | PluginProblem] = []

    def compose(self) -> ComposeResult:
        yield Static(self._problem_text(), id="plugin-problems", markup=False)
        with Horizontal():
            yield DataTable(id="plugin-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="plugin-detail")

    def _problem_text(self) -> str:
        lines = [p.line() for p in self.host.problems]
        lines += self.problems
        return "\n".join(lines) if lines else f"{sum(1 for _ in self.host.all_items())} items registered, no problems"

    def on_mount(self) -> None:
        problems = self.query_one("#plugin-problems", Static)
        problems.set_class(bool(self.host.problems or self.problems), "error")
        table = self.query_one("#plugin-table", DataTable)
        table.add_columns("kind", "name", "distribution", "plugin")
        # disabled plugins first, in red: they are what needs a person's attention
        for problem in self.host.problems:
            red = "bold red"
            table.add_row(Text("disabled", style=red), Text(problem.plugin, style=red),
                          Text(f"{problem.dist} {problem.version}".strip() or "-", style=red),
                          Text(f"{problem.stage}: {problem.error}"[:60], style=red))
            self._rows.append(problem)
        for item in self.host.all_items():
            table.add_row(item.kind, item.name, f"{item.dist} {item.version}".strip(), item.plugin)
            self._rows.append(item)
        if self._rows:
            self._detail(self._rows[0])

    def _detail(self, row: Item | PluginProblem) -> None:
        text = describe_problem(row) if isinstance(row, PluginProblem) else describe_item(row)
        self.query_one("#plugin-detail", Static).update(text)

    @on(DataTable.RowHighlighted, "#plugin-table")
    def _show(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self._rows):
            self._detail(self._rows[event.cursor_row])
