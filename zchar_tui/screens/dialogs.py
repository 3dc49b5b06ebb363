"""Small modal screens shared by the panes: help and confirmation."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Label, Static


def _key_label(app: object, key: str) -> str:
    return ", ".join(app.get_key_display(Binding(k.strip(), "")) for k in key.split(","))  # type: ignore[attr-defined]


class HelpScreen(ModalScreen[None]):
    """Every key of the app and of the pane it was opened from, built from the live bindings."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help_close")]

    def __init__(self, pane: Screen) -> None:
        super().__init__()
        self.pane = pane

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(self._table())

    def _table(self) -> Table:
        table = Table(show_header=False, box=None, expand=True, padding=(0, 1))
        table.add_column("key", style="bold", no_wrap=True, width=16)
        table.add_column("action")
        sections = [("Everywhere", self.app.BINDINGS), (getattr(self.pane, "TITLE", None) or "This pane",
                                                        getattr(self.pane, "BINDINGS", []))]
        for title, bindings in sections:
            table.add_row(Text(title, style="bold underline"), "")
            for b in bindings:
                if isinstance(b, Binding) and b.description:
                    table.add_row(_key_label(self.app, b.key), b.tooltip or b.description)
            table.add_row("", "")
        extra = getattr(self.pane, "HELP", "")
        if extra:
            table.add_row(Text("Notes", style="bold underline"), "")
            table.add_row("", extra)
        table.add_row(Text("Also", style="bold underline"), "")
        table.add_row("ctrl+p", "command palette: every action by name")
        table.add_row("tab / shift+tab", "move focus between widgets")
        table.add_row("mouse", "click tabs, rows and buttons")
        return table


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no before anything destructive; Enter/y confirms, Esc/n cancels."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm_yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm_no"),
    ]

    def __init__(self, question: str, yes: str = "Yes") -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Label(self.question)
            with Horizontal(id="confirm-buttons"):
                yield Button("Cancel", id="no")
                yield Button(self.yes, id="yes", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)
