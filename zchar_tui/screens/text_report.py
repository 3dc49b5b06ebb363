"""A scrollable modal of report lines (import summaries, the health report), coloured by level."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

LEVEL_STYLES = {"error": "bold red", "warning": "yellow", "ok": "green", "great": "bold green", "info": ""}


class ReportScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    ReportScreen { align: center middle; }
    ReportScreen #report-box { width: 100; max-width: 95%; height: auto; max-height: 85%; border: round $primary;
                               background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,enter,q", "close", "Close", id="report_close")]

    def __init__(self, title: str, lines: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.lines = lines

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="report-box"):
            yield Label(self.title_text, classes="section-title")
            text = Text()
            for line, level in self.lines:
                text.append(line + "\n", style=LEVEL_STYLES.get(level, ""))
            yield Static(text, id="report-body")
            yield Label("Esc or Enter closes", classes="muted")

    def action_close(self) -> None:
        self.dismiss(None)
