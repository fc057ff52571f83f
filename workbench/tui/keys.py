"""Every key of the workbench screen in one place, and the help text made from them.

Two kinds of keys:

- global keys (screens, train, stop, load, save, help, quit) are priority bindings of the App:
  they work from any focus. Textual still hands printable keys to a focused text field, so `q`
  typed into a name field is a `q`; Esc leaves the field.
- pane keys (`d` on Data, `g` on Gates, ...) are declared by each pane (`KEYS`) and bound on the
  App too, enabled only while their screen is shown: they work with the tab bar focused, and the
  footer shows the keys of the screen in view.

The help screen and the command palette are generated from these lists, so the keys they name are
the keys that work.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from textual.binding import Binding

TABS = ("setup", "train", "gates", "data", "runs", "plugins")

GLOBAL_KEYS: list[Binding] = [
    *(Binding(str(i + 1), f"tab('{tab}')", tab.title(), show=False, priority=True,
              tooltip=f"show the {tab.title()} screen") for i, tab in enumerate(TABS)),
    Binding("ctrl+t", "train", "Train", priority=True, tooltip="train the current setup in a new run"),
    Binding("x", "stop", "Stop", priority=True,
            tooltip="stop training (the run saves its last checkpoint); detach from a followed run"),
    Binding("ctrl+o", "load_plan", "Load", priority=True, tooltip="load a plan file into Setup"),
    Binding("ctrl+s", "save_plan", "Save", priority=True, tooltip="save the setup as a plan file for --run"),
    Binding("question_mark", "help", "Help", priority=True, tooltip="every key and what each screen does"),
    Binding("q", "quit", "Quit", priority=True, tooltip="quit (asks first while a run is training)"),
]

#: how the global keys' actions are named in the command palette
PALETTE_TITLES = {"train": "Train", "stop": "Stop training", "load_plan": "Load plan", "save_plan": "Save plan",
                  "help": "Help", "quit": "Quit"}

#: the global actions that stay on while a dialog is open (they close it first)
THROUGH_DIALOGS = ("train", "stop", "load_plan", "save_plan")


def pane_bindings(pane_keys: dict[str, Sequence[Binding]]) -> list[Binding]:
    """App-level copies of the panes' keys: action `pane('<tab>', '<action>')`."""
    out = []
    for tab, keys in pane_keys.items():
        for b in keys:
            out.append(Binding(b.key, f"pane('{tab}', '{b.action}')", b.description, show=b.show,
                               key_display=b.key_display, priority=True, tooltip=b.tooltip))
    return out


def key_text(binding: Binding) -> str:
    """A key as people read it: `?`, `ctrl+t`, `space`, `left/right`."""
    names = {"question_mark": "?", "comma": ",", "full_stop": ".", "left_square_bracket": "[",
             "right_square_bracket": "]", "plus": "+", "minus": "-"}
    if binding.key_display:
        return binding.key_display
    return "/".join(names.get(k.strip(), k.strip()) for k in binding.key.split(","))


def help_markdown(global_keys: Iterable[Binding], pane_keys: dict[str, Sequence[Binding]]) -> str:
    """The help screen: what the workbench is for, then every key (made from the bindings)."""
    global_keys = list(global_keys)
    tabs = [b for b in global_keys if b.action.startswith("tab(")]
    lines = [
        "# lvm-workbench",
        "",
        "Pick a dataset and a model on **Setup**, train it, watch the curves on **Train** (the model "
        "beside the copy-last and context-mean baselines), check backward bias on **Gates**, look at "
        "the data on **Data**, and compare runs on **Runs**.",
        "",
        "## Keys that work on every screen",
        "",
        "| Key | Action |",
        "|---|---|",
        f"| {tabs[0].key}-{tabs[-1].key} | {', '.join(b.description for b in tabs)} |",
    ]
    lines += [f"| {key_text(b)} | {b.tooltip or b.description} |" for b in global_keys if b not in tabs]
    lines += ["| ctrl+p | command palette: every action by name |",
              "| tab / shift+tab | next / previous field; esc leaves a text field |"]
    for tab, keys in pane_keys.items():
        if not keys:
            continue
        lines += ["", f"## {tab.title()}", "", "| Key | Action |", "|---|---|"]
        lines += [f"| {key_text(b)} | {b.tooltip or b.description} |" for b in keys]
    lines += ["", "A plan saved here runs headless unchanged: `lvm-workbench --run plan.toml`."]
    return "\n".join(lines) + "\n"
