"""The zchar dashboard: four panes (Dataset, Training, Prompts, Queue) over one project's engine."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import select
import signal
import threading
import time
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.theme import Theme

from engine import protocol
from engine.project import Project, ProjectError, Settings
from zchar_tui.client import EngineClient, EngineError, stop_engine
from zchar_tui.config import UserConfig
from zchar_tui.safe_text import printable
from zchar_tui.screens.base import PANES, PaneScreen
from zchar_tui.screens.dataset import DatasetScreen
from zchar_tui.screens.dialogs import HelpScreen
from zchar_tui.screens.queue import QueueScreen
from zchar_tui.screens.templates import TemplatesScreen
from zchar_tui.screens.training import TrainingScreen
from zchar_tui.state import EngineState
from zchar_tui.widgets.status_header import StatusHeader

THEMES_DIR = Path(__file__).resolve().parent.parent / "themes"
REPLACEABLE = {protocol.EV_TELEMETRY, protocol.EV_PROGRESS, protocol.EV_LOADING, protocol.EV_ENGINE}
RECONNECT_S = 2.0
# Textual keeps tens of thousands of objects in render caches; with the interpreter's default young-generation
# threshold (700) the dashboard ran a full collection about once a second under a 200 events/s stream, 0.1-0.3 s
# each: a quarter of its time. Collecting the young generation less often lets short-lived objects die by reference
# counting first (bench/ui.py: 24 full collections in 25 s → 0-1, GC time 6.9 s → 1.5 s).
GC_YOUNG_THRESHOLD = 10_000
EXIT_DEADLINE_S = 2.0  # after the terminal is lost


def load_themes(folder: Path = THEMES_DIR) -> list[Theme]:
    themes = []
    for path in sorted(folder.glob("*.toml")):
        with contextlib.suppress(OSError, tomllib.TOMLDecodeError, TypeError):
            themes.append(Theme(**tomllib.loads(path.read_text("utf-8"))))
    return themes


class EngineEvent(Message):
    """An engine event, delivered on the app's message queue; a newer telemetry/progress event replaces a queued one."""

    def __init__(self, kind: str, data: dict[str, Any]) -> None:
        super().__init__()
        self.kind = kind
        self.data = data

    def can_replace(self, message: Message) -> bool:
        return (isinstance(message, EngineEvent) and self.kind in REPLACEABLE and message.kind == self.kind
                and message.data.get("job_id") == self.data.get("job_id"))


class ZcharApp(App[None]):
    TITLE = "zchar"
    CSS_PATH = str(THEMES_DIR / "app.tcss")
    MODES = {"dataset": DatasetScreen, "training": TrainingScreen, "prompts": TemplatesScreen, "queue": QueueScreen}
    BINDINGS = [
        Binding("1", "switch_pane('dataset')", "Dataset", id="pane_dataset", show=False),
        Binding("2", "switch_pane('training')", "Training", id="pane_training", show=False),
        Binding("3", "switch_pane('prompts')", "Prompts", id="pane_prompts", show=False),
        Binding("4", "switch_pane('queue')", "Queue", id="pane_queue", show=False),
        Binding("question_mark", "help", "Help", id="help", tooltip="Every key of this pane"),
        Binding("q", "quit", "Quit", id="quit", tooltip="Quit (the engine keeps running jobs)"),
        Binding("ctrl+t", "toggle_theme", "Theme", id="toggle_theme", show=False,
                tooltip="Switch between the dark and light theme"),
    ]

    def __init__(self, project: Project, config: UserConfig | None = None, connect: bool = True,
                 initial_pane: str = "dataset") -> None:
        super().__init__()
        self.project = project
        self.settings: Settings = project.load()
        self.config = config or UserConfig.load()
        self.state = EngineState()
        self.client: EngineClient | None = None
        self._connect = connect
        self._initial_pane = initial_pane
        self._toml_mtime = self._mtime()
        self._engine_wanted = asyncio.Event()

    # --- start-up -----------------------------------------------------------------------------------------
    def on_mount(self) -> None:
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        for theme in load_themes():
            self.register_theme(theme)
        self.theme = self.config.theme if self.config.theme in self.available_themes else "zchar-dark"
        if self.config.keymap:
            self.set_keymap(self.config.keymap)
        for problem in self.config.problems:
            self.notify(problem, severity="warning")
        self.switch_mode(self._initial_pane)
        self.set_interval(0.5, self._tick)
        if not self.is_headless:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGHUP, self.terminal_lost)
        if self._connect:
            self._engine_wanted.set()
            self.run_engine_link()

    def watch_theme(self, theme: str) -> None:
        if self.is_mounted and theme != self.config.theme and theme.startswith("zchar-"):
            self.config.theme = theme
            self.config.save_value("theme", theme)

    # --- engine link --------------------------------------------------------------------------------------
    @work(exclusive=True, group="engine-link")
    async def run_engine_link(self) -> None:
        """Attach (starting the engine when wanted), replay history, follow events; reattach after a loss."""
        while True:
            spawn = self._engine_wanted.is_set()
            self.client = EngineClient(self.project, self._on_client_event)
            try:
                snapshot = await self.client.connect(spawn=spawn)
            except EngineError as exc:
                if spawn:
                    self.notify(str(exc), title="Engine", severity="error")
                    self._engine_wanted.clear()
                await asyncio.sleep(RECONNECT_S)
                continue
            self.state.load_snapshot(snapshot)
            self.state.notify("snapshot", {})
            await self.client.wait_closed()
            self.state.disconnected()
            self.state.notify("disconnected", {})
            self._engine_wanted.clear()  # an engine stopped on purpose stays stopped until an action needs it
            await asyncio.sleep(RECONNECT_S)

    def _on_client_event(self, kind: str, data: dict[str, Any]) -> None:
        self.post_message(EngineEvent(kind, data))

    def notify(self, message: str, *, title: str = "", severity: Any = "information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Plain text unless asked: messages carry file names, prompts and engine errors (a '[/]' raised
        MarkupError and crashed the dashboard; an escape sequence in a name reached the terminal)."""
        super().notify(printable(message), title=printable(title), severity=severity, timeout=timeout, markup=markup)

    def on_engine_event(self, message: EngineEvent) -> None:
        self.state.apply(message.kind, message.data)
        self.state.notify(message.kind, message.data)
        if message.kind == protocol.EV_LOG and message.data.get("level") in ("warning", "error"):
            self.notify(message.data.get("message", ""), severity=message.data["level"], timeout=8)

    async def engine_request(self, cmd: str, **args: Any) -> Any:
        """Send a command, starting the engine first if it is not running. Raises EngineError."""
        if self.client is None or not self.client.connected:
            self._engine_wanted.set()
            self.run_engine_link()
            for _ in range(int(20 / 0.05)):
                if self.client is not None and self.client.connected and self.state.connected:
                    break
                await asyncio.sleep(0.05)
            else:
                raise EngineError("the engine is not running and did not start; see .zchar/engine.log")
        assert self.client is not None
        return await self.client.request(cmd, **args)

    @work(group="engine-call")
    async def engine_call(self, cmd: str, **args: Any) -> Any:
        """Fire-and-report: errors become notifications."""
        try:
            return await self.engine_request(cmd, **args)
        except EngineError as exc:
            self.notify(str(exc), title=cmd, severity="error")
            return None

    @work(group="engine-call")
    async def submit_job(self, kind: str, params: dict[str, Any], priority: int = 0) -> list[int]:
        try:
            result = await self.engine_request("submit", kind=kind, params=params, priority=priority)
        except EngineError as exc:
            self.notify(str(exc), title=f"Cannot queue {kind}", severity="error", timeout=10)
            return []
        for note in result.get("notes", []):
            self.notify(note, severity="warning")
        ids = result.get("job_ids", [])
        self.notify(f"queued {kind} job{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))}", timeout=3)
        return ids

    @work(thread=True, group="engine-call")
    def stop_engine_now(self) -> None:
        try:
            stop_engine(self.project)
        except EngineError as exc:
            self.notify(str(exc), severity="error")

    # --- settings -----------------------------------------------------------------------------------------
    def update_settings(self, changes: dict[str, Any]) -> bool:
        """Write changes to project.toml (validated, atomic, other settings kept); False with a message if refused."""
        try:
            self.settings = self.project.update(changes)
        except (ProjectError, OSError) as exc:
            self.notify(str(exc), title="Not saved", severity="error", timeout=10)
            return False
        self._toml_mtime = self._mtime()
        self.state.notify("settings", {})
        return True

    def _mtime(self) -> float:
        try:
            return self.project.toml_path.stat().st_mtime
        except OSError:
            return 0.0

    def _reload_if_edited(self) -> None:
        mtime = self._mtime()
        if mtime == self._toml_mtime:
            return
        self._toml_mtime = mtime
        try:
            self.settings = self.project.load()
        except ProjectError as exc:
            self.notify(f"project.toml was edited and is not valid; keeping the previous settings.\n{exc}",
                        severity="error", timeout=15)
            return
        self.state.notify("settings", {})
        self.notify("project.toml reloaded", timeout=3)

    # --- periodic -----------------------------------------------------------------------------------------
    def _tick(self) -> None:
        stack = self.screen_stack
        if not stack:
            return  # the app is shutting down (its screens are gone; the timer may still fire once)
        if isinstance(stack[-1], PaneScreen):
            self.refresh_header(stack[-1])
        self._reload_if_edited()
        if not self.is_headless and _stdin_hung_up():
            self.terminal_lost()

    def terminal_lost(self) -> None:
        """The SSH session or terminal went away: exit, and never hang or spin on a dead tty.

        Textual's shutdown writes to the terminal and can block for good on a full output queue once nobody reads
        it; the dashboard has nothing to save (the engine keeps all state), so a short deadline ends the process.
        """
        threading.Thread(target=_exit_soon, args=(EXIT_DEADLINE_S,), daemon=True, name="zchar-exit").start()
        self.exit()

    def refresh_header(self, screen: Screen) -> None:
        with contextlib.suppress(Exception):
            screen.query_one(StatusHeader).show_status(self.settings.name, self.settings.trigger, self.state)

    # --- actions ------------------------------------------------------------------------------------------
    def action_switch_pane(self, mode: str) -> None:
        if mode in self.MODES and self.current_mode != mode:
            self.switch_mode(mode)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_toggle_theme(self) -> None:
        self.theme = "zchar-light" if self.theme == "zchar-dark" else "zchar-dark"

    def action_start_engine(self) -> None:
        self._engine_wanted.set()
        self.run_engine_link()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for mode, label in PANES:
            yield SystemCommand(f"Go to {label[2:]}", f"Show the {label[2:]} pane (key {label[0]})",
                                lambda m=mode: self.action_switch_pane(m))
        yield SystemCommand("Help: keys", "List every key of this pane", self.action_help)
        yield SystemCommand("Toggle dark/light theme", "Switch theme (remembered)", self.action_toggle_theme)
        yield SystemCommand("Engine: start / attach", "Start this project's engine if it is not running",
                            self.action_start_engine)
        yield SystemCommand("Engine: stop", "Stop the engine (a running job checkpoints and stops)",
                            self.stop_engine_now)
        if isinstance(screen, PaneScreen):
            yield from screen.palette_commands()
        yield from super().get_system_commands(screen)


def _exit_soon(delay: float) -> None:
    time.sleep(delay)
    os._exit(0)


def _stdin_hung_up() -> bool:
    """True once the terminal is gone (POLLHUP/POLLNVAL on stdin)."""
    try:
        poller = select.poll()
        poller.register(0, 0)  # no events asked for: only hang-up, error and invalid are reported
        return any(ev & (select.POLLHUP | select.POLLNVAL) for _fd, ev in poller.poll(0))
    except (OSError, ValueError):
        return False
