"""The workbench screen: `lvm-workbench` with no arguments.

One App with a tab per job (Setup, Train, Gates, Data, Runs, Plugins). Training runs in a
thread worker that calls `lvm_core.train.train(setup, sinks, stop_event)`; its only sink is an
EventFeed that posts coalesced wake-ups, so the UI never blocks the trainer and the trainer
never blocks the UI. Stop sets the stop event (the trainer saves `last` and ends "stopped").
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import tomli
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from lvm_core.atomic import write_text
from lvm_core.errors import InputError, InputErrors

from ..plugin_host import PluginHost, load_plugins
from .data_pane import DataPane
from .dialogs import ConfirmScreen, HelpScreen, PathScreen
from .gates_pane import GatesPane
from .feed import EventFeed, FeedReady
from .planform import relative_store
from .plugins_pane import PluginsPane
from .rundirs import JsonlTail
from .runs_pane import RunsPane
from .setup_pane import SetupPane
from .train_pane import TrainPane

#: trainer(plan_dict, plan_dir, host, sinks, stop_event, run_dir, resume) -> result
Trainer = Callable[..., Any]
TABS = ("setup", "train", "gates", "data", "runs", "plugins")


def error_lines(exc: BaseException) -> list[str]:
    """What a person should read about an error: InputErrors one line each, others one line."""
    if isinstance(exc, InputErrors):
        return exc.lines()
    if isinstance(exc, InputError):
        return [exc.line()]
    return [f"{type(exc).__name__}: {exc}"]


def run_with_engine(plan: dict[str, Any], plan_dir: Path, host: PluginHost, sinks: list[Any],
                    stop_event: threading.Event, run_dir: Path | None, resume: Path | None) -> Any:
    """Validate the plan, prepare the run and train: the same calls the headless mode makes."""
    from lvm_core.train import train

    from .. import session

    checked = session.plan_from_dict(plan, plan_dir)
    setup = session.prepare_run(checked, host, run_dir=run_dir, resume=resume)
    return train(setup, sinks, stop_event=stop_event)


def load_host() -> tuple[PluginHost, list[str]]:
    """The plugin host; if loading fails outright, the built-ins alone and the reason."""
    try:
        return load_plugins(), []
    except InputError as exc:
        return load_plugins(entry_points=False), [f"third-party plugins not loaded: {exc.line()}"]


class WorkbenchApp(App[int]):
    """lvm-workbench: set up, train, watch, gate and compare from one terminal."""

    TITLE = "lvm-workbench"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("1", "tab('setup')", "Setup", show=False),
        Binding("2", "tab('train')", "Train", show=False),
        Binding("3", "tab('gates')", "Gates", show=False),
        Binding("4", "tab('data')", "Data", show=False),
        Binding("5", "tab('runs')", "Runs", show=False),
        Binding("6", "tab('plugins')", "Plugins", show=False),
        Binding("ctrl+t", "train", "Train", priority=True),
        Binding("s", "train", "Train", show=False),
        Binding("x", "stop", "Stop"),
        Binding("m", "chart", "Chart", show=False),
        Binding("ctrl+o", "load_plan", "Load"),
        Binding("ctrl+s", "save_plan", "Save"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, *, runs_dir: Path | None = None, plan_path: Path | None = None,
                 host: PluginHost | None = None, trainer: Trainer | None = None, poll_s: float = 0.2) -> None:
        super().__init__()
        if host is None:
            host, self.host_problems = load_host()
        else:
            self.host_problems = []
        self.host = host
        self.runs_dir = (runs_dir or Path.cwd() / "runs").resolve()
        self.plan_path = plan_path
        self.trainer = trainer or run_with_engine
        self.poll_s = poll_s
        self.stop_event: threading.Event | None = None
        self.train_worker: Worker | None = None
        self.feed = EventFeed(self.post_message)
        self.result: Any = None
        self._tails: list[JsonlTail] = []
        self._attach_timer: Any = None
        self._quit_after_run = False

    # ---- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="setup", id="tabs"):
            with TabPane("Setup", id="setup"):
                yield SetupPane(self.host, id="setup-pane")
            with TabPane("Train", id="train"):
                yield TrainPane(id="train-pane")
            with TabPane("Gates", id="gates"):
                yield GatesPane(self.runs_dir, id="gates-pane")
            with TabPane("Data", id="data"):
                yield DataPane(self.host, id="data-pane")
            with TabPane("Runs", id="runs"):
                yield RunsPane(self.runs_dir, id="runs-pane")
            with TabPane("Plugins", id="plugins"):
                yield PluginsPane(self.host, self.host_problems, id="plugins-pane")
        yield Footer()

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
        return self.train_worker is not None and self.train_worker.state in (WorkerState.PENDING, WorkerState.RUNNING)

    # ---- palette and help ----------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Train", "Train the current setup (s)", self.action_train)
        yield SystemCommand("Stop training", "Stop the run; it saves its last checkpoint (x)", self.action_stop)
        yield SystemCommand("Load plan", "Load a plan file into Setup (ctrl+o)", self.action_load_plan)
        yield SystemCommand("Save plan", "Save the setup as a plan file for --run (ctrl+s)", self.action_save_plan)
        yield SystemCommand("Compare runs", "Overlay the two marked runs", self._palette_compare)
        yield SystemCommand("Refresh runs", "Re-read the runs folder", lambda: self.runs_pane.refresh_runs())
        for tab in TABS:
            if self.query(f"TabPane#{tab}"):
                yield SystemCommand(f"Go to {tab.title()}", f"Show the {tab.title()} screen", lambda t=tab: self.action_tab(t))
        yield SystemCommand("Run 5CAT", "Run the gate battery on the chosen checkpoint (g)", self._palette_gates)
        yield SystemCommand("Run diagnostics", "Diagnose the chosen dataset on the Data screen (d)", self._palette_diagnose)
        yield SystemCommand("Help", "What each screen does and every key (?)", self.action_help)

    def _palette_compare(self) -> None:
        self.action_tab("runs")
        self.runs_pane.action_compare()

    def _palette_gates(self) -> None:
        self.action_tab("gates")
        self.query_one(GatesPane).action_run_gates()

    def _palette_diagnose(self) -> None:
        self.action_tab("data")
        self.query_one(DataPane).action_diagnose()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_tab(self, tab: str) -> None:
        if self.query(f"TabPane#{tab}"):
            self.query_one("#tabs", TabbedContent).active = tab

    def action_chart(self) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        if tabs.active == "train":
            self.train_pane.toggle_chart()
        elif tabs.active == "runs":
            self.runs_pane.action_next_metric()

    # ---- plans ---------------------------------------------------------------------------
    def action_load_plan(self) -> None:
        def chosen(path: Path | None) -> None:
            if path is not None:
                self.load_plan(path)

        self.push_screen(PathScreen("Load a plan file (TOML)", Path.cwd(), str(self.plan_path or "")), chosen)

    def load_plan(self, path: Path) -> bool:
        """Show a plan file in Setup; problems are listed, the form still shows what was read."""
        from .. import session

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
            session.load_plan(path)
        except InputError as exc:
            self._setup_error(error_lines(exc))
            return False
        self.setup_pane.say(f"loaded {path}")
        return True

    def action_save_plan(self) -> None:
        def chosen(path: Path | None) -> None:
            if path is not None:
                self.save_plan(path)

        default = str(self.plan_path or Path.cwd() / f"{self.setup_pane.query_one('#plan-name').value or 'plan'}.toml")
        self.push_screen(PathScreen("Save the setup as a plan file", Path.cwd(), default), chosen)

    def save_plan(self, path: Path) -> bool:
        """Validate the setup and write it as a plan file that `--run` accepts unchanged."""
        from .. import session

        path = Path(path).resolve()
        try:
            plan = self.setup_pane.plan_dict()
            for key in ("store", "ood"):
                if plan["data"].get(key):
                    plan["data"][key] = relative_store(plan["data"][key], path.parent)
            text = session.plan_to_toml(session.plan_from_dict(plan, path.parent), relative_to=path.parent)
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
    def action_train(self) -> None:
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
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        path = self.runs_dir / f"{name}-{stamp}"
        n = 1
        while path.exists():
            n += 1
            path = self.runs_dir / f"{name}-{stamp}-{n}"
        return path

    def start_run(self, plan: dict[str, Any], plan_dir: Path, *, run_dir: Path | None, resume: Path | None) -> None:
        self.detach()
        self.stop_event = threading.Event()
        self.feed = EventFeed(self.post_message)
        self.train_pane.reset("resuming " + resume.name if resume else "training")
        self.action_tab("train")
        self.train_worker = self._train(plan, plan_dir, run_dir, resume, self.feed, self.stop_event)

    @work(thread=True, exclusive=True, group="train", exit_on_error=False, description="training")
    def _train(self, plan: dict[str, Any], plan_dir: Path, run_dir: Path | None, resume: Path | None,
               feed: EventFeed, stop: threading.Event) -> Any:
        return self.trainer(plan, plan_dir, self.host, [feed.sink], stop, run_dir, resume)

    def action_stop(self) -> None:
        if self.training and self.stop_event is not None:
            self.stop_event.set()
            self.notify("stopping: the run saves its last checkpoint")
        elif self._attach_timer is not None:
            self.detach()
            self.notify("detached (the headless run goes on)")

    @on(FeedReady)
    def _feed_ready(self, message: FeedReady) -> None:
        self.train_pane.add_records(message.feed.drain())

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self.train_worker:
            return
        if event.state == WorkerState.SUCCESS:
            self.result = event.worker.result
            self.train_pane.add_records(self.feed.drain())
            self.runs_pane.refresh_runs()
        elif event.state == WorkerState.ERROR:
            self.train_pane.add_records(self.feed.drain())
            lines = error_lines(event.worker.error) if event.worker.error else ["unknown error"]
            self.train_pane.fail("; ".join(lines))
            self.notify(lines[0], severity="error", timeout=8)
            self.runs_pane.refresh_runs()
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED) and self._quit_after_run:
            self.exit(0)

    # ---- runs: resume and attach ---------------------------------------------------------
    @on(RunsPane.ResumeRequested)
    def _resume(self, message: RunsPane.ResumeRequested) -> None:
        if self.training:
            self.notify("a run is already training; stop it first (x)", severity="warning")
            return
        path = message.run_dir / "plan.toml"
        try:
            plan = tomli.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomli.TOMLDecodeError) as exc:
            self.runs_pane.say(f"{path}: cannot read the run's plan ({exc})", error=True)
            return
        try:
            plan_dir = Path(json.loads((message.run_dir / "run.json").read_text(encoding="utf-8")).get("plan_dir") or message.run_dir)
        except (OSError, ValueError, AttributeError):
            plan_dir = message.run_dir
        self.start_run(plan, plan_dir, run_dir=None, resume=message.run_dir)

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
        self._attach_timer = self.set_interval(self.poll_s, self._poll_attached)
        self._poll_attached()
        self.action_tab("train")

    def _poll_attached(self) -> None:
        records = [r for tail in self._tails for r in tail.read_new()]
        if not records:
            return
        records.sort(key=lambda r: r.get("t", 0.0))
        self.train_pane.add_records(records)
        if any(r.get("kind") == "RunEnded" for r in records):
            self.detach()
            self.runs_pane.refresh_runs()

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
            if yes and self.stop_event is not None:
                self._quit_after_run = True
                self.stop_event.set()
                self.notify("stopping the run, then quitting")

        self.push_screen(ConfirmScreen("A run is training. Stop it (saving its last checkpoint) and quit?"), answered)

    @on(Button.Pressed, "#load-plan")
    def _b_load(self) -> None:
        self.action_load_plan()

    @on(Button.Pressed, "#save-plan")
    def _b_save(self) -> None:
        self.action_save_plan()

    @on(Button.Pressed, "#train-plan")
    def _b_train(self) -> None:
        self.action_train()

    @on(Button.Pressed, "#check-plan")
    def _b_check(self) -> None:
        self.check_plan()

    def check_plan(self) -> bool:
        """Validate the setup as the trainer will, and say what is wrong (all problems at once)."""
        from .. import session

        base = self.plan_path.parent.resolve() if self.plan_path else Path.cwd()
        try:
            session.plan_from_dict(self.setup_pane.plan_dict(), base)
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
