"""The workbench screen: `lvm-workbench` with no arguments.

One App with a tab per job (Setup, Train, Gates, Data, Runs, Plugins). Training runs in a child
process, `python -m workbench.cli --run PLAN --run-dir D`, exactly as a person runs it headless,
and the Train screen follows D/metrics.jsonl and D/events.jsonl: a run trained here and a run
followed through its files are one code path, and the trainer never competes with the UI for
the GIL. Stop sends SIGINT (the trainer saves `last` and ends "stopped").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import tomli
from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Header, TabbedContent, TabPane

from lvm_core.atomic import write_text
from lvm_core.errors import InputError, InputErrors
from lvm_core.rundir import free_run_dir
from lvm_core.run_index import JsonlTail

from .child_run import ChildRun, Command, exit_reason, headless_command
from .data_pane import DataPane
from .dialogs import ConfirmScreen, HelpScreen, PathScreen
from .gates_pane import GatesPane
from .keys import GLOBAL_KEYS, PALETTE_TITLES, TABS, THROUGH_DIALOGS, help_markdown, pane_bindings
from .planform import relative_store
from ..plugin_host import PluginHost, load_plugins
from .plugins_pane import PluginsPane
from .runs_pane import RunsPane
from .setup_pane import SetupPane
from .train_pane import TrainPane

PANES = {"setup": SetupPane, "train": TrainPane, "gates": GatesPane, "data": DataPane, "runs": RunsPane,
         "plugins": PluginsPane}
PANE_KEYS = {tab: list(getattr(cls, "KEYS", [])) for tab, cls in PANES.items()}
#: seconds a stopping run gets to save its checkpoint when the app quits, before it is killed
QUIT_WAIT_S = 15.0


def error_lines(exc: BaseException) -> list[str]:
    """What a person should read about an error: InputErrors one line each, others one line."""
    if isinstance(exc, InputErrors):
        return exc.lines()
    if isinstance(exc, InputError):
        return [exc.line()]
    return [f"{type(exc).__name__}: {exc}"]


def load_host() -> tuple[PluginHost, list[str]]:
    """The plugin host; if loading fails outright, the built-ins alone and the reason."""
    try:
        return load_plugins(), []
    except InputError as exc:
        return load_plugins(entry_points=False), [f"third-party plugins not loaded: {exc.line()}"]


class WorkbenchTabs(TabbedContent):
    """TabbedContent that never switches screens because a hidden widget got the focus back
    (a closed dialog or the palette restoring it): the focus moves to the screen in view."""

    def _on_tab_pane_focused(self, event: TabPane.Focused) -> None:
        event.stop()
        event.prevent_default()
        if event.tab_pane.id != self.active:
            self.app.call_after_refresh(self.app.focus_pane, self.active)


class WorkbenchApp(App[int]):
    """lvm-workbench: set up, train, watch, gate and compare from one terminal."""

    TITLE = "lvm-workbench"
    CSS_PATH = "app.tcss"
    #: classes the screen gets by size, used by app.tcss to give rows and columns where they help
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (90, "-medium"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (28, "-normal"), (40, "-tall")]
    BINDINGS = [*GLOBAL_KEYS, *pane_bindings(PANE_KEYS)]

    def __init__(self, *, runs_dir: Path | None = None, plan_path: Path | None = None,
                 host: PluginHost | None = None, train_command: Command | None = None,
                 poll_s: float = 0.2, child_nice: int = 0) -> None:
        super().__init__()
        if host is None:
            host, self.host_problems = load_host()
        else:
            self.host_problems = []
        self.host = host
        self.runs_dir = (runs_dir or Path.cwd() / "runs").resolve()
        self.plan_path = plan_path
        self.train_command: Command = train_command or headless_command
        self.poll_s = poll_s
        self.child_nice = child_nice
        self.child: ChildRun | None = None
        self.result: dict[str, Any] | None = None
        self._tails: list[JsonlTail] = []
        self._attach_timer: Any = None
        self._run_ended = False
        self._run_started = False  # the followed run has written RunStarted (its SIGINT handler is set)
        self._stop_pending = False  # stop asked for before that: sent once RunStarted arrives
        self._stop_asked = False
        self._quit_after_run = False

    # ---- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with WorkbenchTabs(initial="setup", id="tabs"):
            with TabPane("Setup", id="setup"):
                yield SetupPane(self.host, id="setup-pane")
            with TabPane("Train", id="train"):
                yield TrainPane(id="train-pane")
            with TabPane("Gates", id="gates"):
                yield GatesPane(self.runs_dir, gate_names=self.gate_names(), id="gates-pane")
            with TabPane("Data", id="data"):
                yield DataPane(self.host, id="data-pane")
            with TabPane("Runs", id="runs"):
                yield RunsPane(self.runs_dir, id="runs-pane")
            with TabPane("Plugins", id="plugins"):
                yield PluginsPane(self.host, self.host_problems, id="plugins-pane")
        yield Footer()

    def gate_names(self) -> list[str]:
        """Every registered gate for the Gates checklist: the default battery first, then the
        other built-ins and third-party gates by name."""
        from lvm_core.evaluation.battery import DEFAULT_GATES

        names = sorted(self.host.items.get("gate", {}))
        return [g for g in DEFAULT_GATES if g in names] + [g for g in names if g not in DEFAULT_GATES]

    def on_resize(self) -> None:
        """Below 130 columns the footer is compact and leaves out the palette's key (ctrl+p
        still opens it; help says so): docked at the right it covered the screen's own keys."""
        footer = self.query_one(Footer)
        wide = self.size.width >= 130
        if footer.show_command_palette != wide:
            footer.compact, footer.show_command_palette = not wide, wide
            footer.refresh(recompose=True)

    def on_mount(self) -> None:
        if self.host.problems or self.host_problems:
            self.notify(f"{len(self.host.problems) + len(self.host_problems)} plugin problem(s): see Plugins", severity="warning")
        if self.plan_path is not None:
            self.call_after_refresh(self.load_plan, self.plan_path)

    @property
    def setup_pane(self) -> SetupPane:
        return self.query_one(SetupPane)

    @property
    def train_pane(self) -> TrainPane:
        return self.query_one(TrainPane)

    @property
    def runs_pane(self) -> RunsPane:
        return self.query_one(RunsPane)

    @property
    def training(self) -> bool:
        """A child run is going (until its exit has been handled)."""
        return self.child is not None

    # ---- keys, palette and help ----------------------------------------------------------
    @property
    def active_tab(self) -> str:
        return self.query_one("#tabs", TabbedContent).active

    def pane(self, tab: str) -> Any:
        return self.query_one(f"#{tab}-pane")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Pane keys only on their own screen; global keys stay out of a dialog's way (the ctrl
        ones close it first, see `_close_dialogs`)."""
        if not self.is_mounted or not self.query("#tabs"):
            return True
        if action == "pane":
            return bool(parameters) and parameters[0] == self.active_tab and not self._dialog_open()
        if self._dialog_open() and action in {b.action.split("(")[0] for b in GLOBAL_KEYS} - set(THROUGH_DIALOGS):
            return False
        return True

    def _dialog_open(self) -> bool:
        return len(self.screen_stack) > 1 and isinstance(self.screen, ModalScreen)

    async def _close_dialogs(self) -> None:
        """Close open dialogs (their answer is "cancel") so a global key acts on the main screen."""
        while len(self.screen_stack) > 1 and isinstance(self.screen, ModalScreen):
            await self.pop_screen()

    async def action_pane(self, tab: str, action: str) -> None:
        """A pane key (bound on the App so it works from any focus on that screen)."""
        await self.run_action(action, self.pane(tab))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every action of every key by name, plus the few that have no key."""
        yield from super().get_system_commands(screen)
        for b in GLOBAL_KEYS:
            if b.action.startswith("tab("):
                tab = b.action[5:-2]
                yield SystemCommand(f"Go to {tab.title()}", f"Show the {tab.title()} screen ({b.key})",
                                    lambda t=tab: self.action_tab(t))
            elif b.action != "quit":  # Textual's own palette has Quit
                yield SystemCommand(PALETTE_TITLES.get(b.action, b.description),
                                    f"{(b.tooltip or '').capitalize()} ({self.get_key_display(b)})",
                                    lambda a=b.action: self.run_action(a))
        yield SystemCommand("Check plan", "Validate the setup as the trainer will and list every problem",
                            self.check_plan)
        for tab, keys in PANE_KEYS.items():
            for b in keys:
                if b.description:
                    yield SystemCommand(f"{tab.title()}: {b.description}",
                                        f"{(b.tooltip or b.description).capitalize()} ({self.get_key_display(b)})",
                                        lambda t=tab, a=b.action: self._palette_pane(t, a))

    async def _palette_pane(self, tab: str, action: str) -> None:
        self.action_tab(tab)
        await self.action_pane(tab, action)

    def help_text(self) -> str:
        return help_markdown(GLOBAL_KEYS, PANE_KEYS)

    def action_help(self) -> None:
        if not self._dialog_open():
            self.push_screen(HelpScreen(self.help_text()))

    def action_tab(self, tab: str) -> None:
        """Show a screen and put the focus in it (a focused widget left on a hidden screen
        would pull the screen back when the focus moves)."""
        if not self.query(f"TabPane#{tab}"):
            return
        tabs = self.query_one("#tabs", TabbedContent)
        if tabs.active != tab:
            tabs.active = tab
        self.call_after_refresh(self.focus_pane, tab)

    def focus_pane(self, tab: str) -> None:
        """Focus the pane's first widget unless the focus is already inside it."""
        pane = self.query_one(f"TabPane#{tab}")
        focused = self.screen.focused if not self._dialog_open() else None
        if focused is not None and pane in focused.ancestors:
            return
        target = getattr(self.pane(tab), "first_focus", None)
        widget = target() if callable(target) else None
        if widget is None:
            widget = next((w for w in pane.query("*") if w.focusable and w.display), None)
        if widget is not None:
            widget.focus(scroll_visible=False)

    # ---- plans ---------------------------------------------------------------------------
    async def action_load_plan(self) -> None:
        await self._close_dialogs()
        def chosen(path: Path | None) -> None:
            if path is not None:
                self.load_plan(path)

        self.push_screen(PathScreen("Load a plan file (TOML)", Path.cwd(), str(self.plan_path or "")), chosen)

    def load_plan(self, path: Path) -> bool:
        """Show a plan file in Setup; problems are listed, the form still shows what was read."""
        from .. import plan as plan_io

        path = Path(path)
        try:
            raw = tomli.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            self._setup_error([f"{path}: cannot read ({exc.strerror})"])
            return False
        except tomli.TOMLDecodeError as exc:
            self._setup_error([f"{path}: not valid TOML ({exc})"])
            return False
        self.plan_path = path
        self.setup_pane.load_dict(raw, path.parent.resolve())
        try:
            plan_io.load_plan(path)
        except InputError as exc:
            self._setup_error(error_lines(exc))
            return False
        self.setup_pane.say(f"loaded {path}")
        return True

    async def action_save_plan(self) -> None:
        await self._close_dialogs()
        def chosen(path: Path | None) -> None:
            if path is not None:
                self.save_plan(path)

        default = str(self.plan_path or Path.cwd() / f"{self.setup_pane.query_one('#plan-name').value or 'plan'}.toml")
        self.push_screen(PathScreen("Save the setup as a plan file", Path.cwd(), default), chosen)

    def save_plan(self, path: Path) -> bool:
        """Validate the setup and write it as a plan file that `--run` accepts unchanged."""
        from .. import plan as plan_io

        path = Path(path).resolve()
        try:
            plan = self.setup_pane.plan_dict()
            for key in ("store", "ood"):
                if plan["data"].get(key):
                    plan["data"][key] = relative_store(plan["data"][key], path.parent)
            text = plan_io.plan_to_toml(plan_io.plan_from_dict(plan, path.parent), relative_to=path.parent)
        except InputError as exc:
            self._setup_error(error_lines(exc))
            return False
        write_text(path, text)
        self.plan_path = path
        self.setup_pane.say(f"saved {path}")
        self.notify(f"saved {path.name}")
        return True

    def _setup_error(self, lines: list[str]) -> None:
        self.setup_pane.say("\n".join(lines), error=True)
        self.notify(lines[0], severity="error", timeout=6)

    # ---- training ------------------------------------------------------------------------
    async def action_train(self) -> None:
        await self._close_dialogs()
        if self.training:
            self.notify("a run is already training; stop it first (x)", severity="warning")
            return
        try:
            plan = self.setup_pane.plan_dict()
        except InputError as exc:
            self._setup_error(error_lines(exc))
            self.action_tab("setup")
            return
        base = self.plan_path.parent.resolve() if self.plan_path else Path.cwd()
        self.start_run(plan, base, run_dir=self.new_run_dir(plan.get("name") or "run"), resume=None)

    def new_run_dir(self, name: str) -> Path:
        return free_run_dir(self.runs_dir, name)  # the child process creates it (claim_run_dir)

    def start_run(self, plan: dict[str, Any] | None, plan_dir: Path, *, run_dir: Path | None,
                  resume: Path | None) -> bool:
        """Validate the plan here (problems show in Setup), save it, and train it in a child process.

        With `resume`, the child continues that run directory (`--resume D`); its earlier records
        are shown first, so the curves start at step 0.
        """
        from .. import plan as plan_io

        self.detach()
        workdir = ChildRun.make_workdir()
        plan_file: Path | None = None
        if resume is None:
            assert plan is not None and run_dir is not None
            try:
                checked = plan_io.plan_from_dict(plan, plan_dir)
            except InputError as exc:
                ChildRun.cleanup_dir(workdir)
                self._setup_error(error_lines(exc))
                self.action_tab("setup")
                return False
            plan_file = workdir / "plan.toml"
            write_text(plan_file, plan_io.plan_to_toml(checked))  # absolute paths: valid from anywhere
            target = run_dir
        else:
            target = resume
        pane = self.train_pane
        pane.reset(f"resuming {resume.name}" if resume else "training")
        pane.run_dir = str(target)
        self._tails = [JsonlTail(target / "events.jsonl"), JsonlTail(target / "metrics.jsonl")]
        history = self._read_tails()
        if history:
            pane.add_records(history)
            pane.set_status(f"resuming from step {pane.step}")
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.child = ChildRun(self.train_command(plan_file, target, resume is not None), workdir, nice=self.child_nice)
        except OSError as exc:
            ChildRun.cleanup_dir(workdir)
            pane.fail(f"cannot start the run: {exc}")
            return False
        self._run_ended = self._run_started = self._stop_pending = self._stop_asked = False
        self.result = None
        self._attach_timer = self.set_interval(self.poll_s, self._poll_run)
        self.action_tab("train")
        return True

    async def action_stop(self) -> None:
        await self._close_dialogs()
        if self.child is not None:
            self._stop_asked = True
            if self._run_started:
                self.child.stop()
                self.notify("stopping: the run saves its last checkpoint")
            else:  # still importing or reading data: a SIGINT now would be a raw KeyboardInterrupt
                self._stop_pending = True
                self.train_pane.set_status("stopping as soon as the run has started")
        elif self._attach_timer is not None:
            self.detach()
            self.train_pane.set_status(f"detached from {Path(self.train_pane.run_dir or '').name} "
                                       f"(it goes on in its own process; Runs > a attaches again)")
            self.notify("detached (the headless run goes on)")

    def _read_tails(self) -> list[dict[str, Any]]:
        """New records of the followed run, in time order (events and metrics interleaved)."""
        records = [r for tail in self._tails for r in tail.read_new()]
        records.sort(key=lambda r: r.get("t", 0.0))
        return records

    def _poll_run(self) -> None:
        """Show what the run wrote since the last poll; handle the child's exit once it is read."""
        code = self.child.poll() if self.child is not None else None  # before reading: nothing is missed
        records = self._read_tails()
        if records:
            self.train_pane.add_records(records)
            self._run_ended = self._run_ended or any(r.get("kind") == "RunEnded" for r in records)
            self._run_started = self._run_started or any(r.get("kind") == "RunStarted" for r in records)
            if self._stop_pending and self._run_started and self.child is not None:
                self._stop_pending = False
                self.child.stop()
        if self.child is None:  # following a headless process: done when it says so
            if self._run_ended:
                self.detach()
                self.runs_pane.refresh_runs()
            return
        if code is not None:
            self._child_exited(code)

    def _child_exited(self, code: int) -> None:
        child, self.child = self.child, None
        assert child is not None
        self.detach()
        pane = self.train_pane
        if not self._run_ended and self._stop_asked and not self._run_started:
            pane.set_status("stopped before the run started (nothing was trained or saved)")
        elif not self._run_ended:
            tail = child.log_tail()
            lines = [f"the run ended early ({exit_reason(code)})"] + (tail.splitlines() if tail else [])
            pane.fail("\n".join(lines))
            self.notify(tail.splitlines()[-1] if tail else lines[0], severity="error", timeout=8)
        self.result = {"status": pane.status, "exit_code": code}
        child.cleanup()
        self.runs_pane.refresh_runs()
        if self._quit_after_run:
            self.exit(0)

    def _force_quit(self) -> None:
        """The stopping run did not end in time: kill it and quit anyway."""
        if self.child is not None:
            self._child_exited(self.child.stop_and_wait(0.5))
        self.exit(0)

    def on_unmount(self) -> None:
        """Never leave a child training behind the app's back."""
        if self.child is not None:
            self.child.stop_and_wait(5.0)
            self.child.cleanup()
            self.child = None

    # ---- runs: resume and attach ---------------------------------------------------------
    @on(RunsPane.ResumeRequested)
    def _resume(self, message: RunsPane.ResumeRequested) -> None:
        if self.training:
            self.notify("a run is already training; stop it first (x)", severity="warning")
            return
        self.start_run(None, message.run_dir, run_dir=None, resume=message.run_dir)

    @on(RunsPane.AttachRequested)
    def _attach_requested(self, message: RunsPane.AttachRequested) -> None:
        self.attach(message.run_dir)

    def attach(self, run_dir: Path) -> None:
        """Follow a run another process is writing: tail its metrics.jsonl and events.jsonl."""
        if self.training:
            self.notify("a run is training here; stop it before attaching", severity="warning")
            return
        self.detach()
        self.train_pane.reset(f"following {run_dir.name}")
        self.train_pane.run_dir = str(run_dir)
        self._tails = [JsonlTail(run_dir / "events.jsonl"), JsonlTail(run_dir / "metrics.jsonl")]
        self._run_ended = self._run_started = self._stop_pending = self._stop_asked = False
        self._attach_timer = self.set_interval(self.poll_s, self._poll_run)
        self._poll_run()
        self.action_tab("train")

    def detach(self) -> None:
        if self._attach_timer is not None:
            self._attach_timer.stop()
            self._attach_timer = None
        self._tails = []

    # ---- quitting ------------------------------------------------------------------------
    async def action_quit(self) -> None:
        if not self.training:
            self.exit(0)
            return

        def answered(yes: bool | None) -> None:
            if yes and self.child is not None:
                self._quit_after_run = True
                self.child.stop()
                self.set_timer(QUIT_WAIT_S, self._force_quit)
                self.notify("stopping the run, then quitting")

        self.push_screen(ConfirmScreen("A run is training. Stop it (saving its last checkpoint) and quit?"), answered)

    @on(Button.Pressed, "#load-plan")
    async def _b_load(self) -> None:
        await self.action_load_plan()

    @on(Button.Pressed, "#save-plan")
    async def _b_save(self) -> None:
        await self.action_save_plan()

    @on(Button.Pressed, "#train-plan")
    async def _b_train(self) -> None:
        await self.action_train()

    @on(Button.Pressed, "#check-plan")
    def _b_check(self) -> None:
        self.check_plan()

    def check_plan(self) -> bool:
        """Validate the setup as the trainer will, and say what is wrong (all problems at once)."""
        from .. import plan as plan_io

        base = self.plan_path.parent.resolve() if self.plan_path else Path.cwd()
        try:
            plan_io.plan_from_dict(self.setup_pane.plan_dict(), base)
        except InputError as exc:
            self._setup_error(error_lines(exc))
            return False
        self.setup_pane.say("the plan is valid")
        return True

    @on(SetupPane.StoreChosen)
    def _store_chosen(self, message: SetupPane.StoreChosen) -> None:
        self.sub_title = message.path.name
        self.follow_setup(message.path)

    def follow_setup(self, store: Path) -> None:
        """The Data screen diagnoses the dataset, split and context length chosen on Setup."""
        try:
            data = self.setup_pane.plan_dict()["data"]
        except (InputError, KeyError):
            data = {}
        self.query_one(DataPane).follow(store, data.get("split"), data.get("context_len"))
        self.query_one(GatesPane).follow(str(store), str(data.get("ood") or ""))

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "gates":
            self.query_one(GatesPane).refresh_models()
        if event.pane.id in ("data", "gates") and self.setup_pane.query_one("#store-path").value:
            self.follow_setup(Path(self.setup_pane.query_one("#store-path").value))


def run_app(plan_path: Path | None = None) -> int:
    """Entry point of `lvm-workbench` with no arguments."""
    result = WorkbenchApp(plan_path=plan_path).run()
    return int(result or 0)
