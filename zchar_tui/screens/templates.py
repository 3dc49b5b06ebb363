"""Prompts pane (issue: prompt-template builder). For now: the saved templates as composed prompts."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import DataTable

from engine.project import compose_prompt
from zchar_tui.screens.base import PaneScreen


class TemplatesScreen(PaneScreen):
    MODE = "prompts"
    TITLE = "Prompts"

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="templates-table", classes="pane-body", cursor_type="row")

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one(DataTable)
        table.add_columns("template", "prompt")
        s = self.zapp.settings
        for t in s.templates:
            table.add_row(t.name, compose_prompt(s.trigger, t))
