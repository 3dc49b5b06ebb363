"""The frame every pane shares: status header, pane tabs (clickable), the body, the footer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult, SystemCommand
from textual.screen import Screen
from textual.widgets import Tab, Tabs

from zchar_tui.widgets.pane_footer import PaneFooter
from zchar_tui.widgets.status_header import StatusHeader

if TYPE_CHECKING:
    from zchar_tui.app import ZcharApp

PANES = (("dataset", "1 Dataset"), ("training", "2 Training"), ("prompts", "3 Prompts"), ("queue", "4 Queue"))


class PaneTabs(Tabs):
    """Tabs that switch the app's mode; the active one follows the shown pane."""


class PaneScreen(Screen):
    MODE = ""
    TITLE = ""
    HELP = ""

    @property
    def zapp(self) -> ZcharApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="status-header")
        yield PaneTabs(*(Tab(label, id=f"tab-{mode}") for mode, label in PANES), active=f"tab-{self.MODE}")
        yield from self.compose_body()
        yield PaneFooter()

    def compose_body(self) -> ComposeResult:
        yield from ()

    # Textual calls the handler of every class in the MRO (subclass first): subclasses' on_mount and
    # on_screen_resume must not call super().
    def on_mount(self) -> None:
        self._unlisten = self.zapp.state.listen(self.on_engine_event)
        self.zapp.refresh_header(self)

    def on_unmount(self) -> None:
        self._unlisten()

    def on_screen_resume(self) -> None:
        self.query_one(PaneTabs).active = f"tab-{self.MODE}"
        self.zapp.refresh_header(self)

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        if event.tab is None or event.tab.id is None:
            return
        mode = event.tab.id.removeprefix("tab-")
        if mode != self.MODE and self.is_current:
            self.zapp.action_switch_pane(mode)

    def on_engine_event(self, kind: str, data: dict[str, Any]) -> None:
        """Called for every engine event; mark what needs redrawing, redraw on a timer."""

    def palette_commands(self) -> Iterable[SystemCommand]:
        """This pane's actions for the command palette."""
        return ()
