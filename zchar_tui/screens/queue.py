"""Queue pane (issue: generation queue). For now: the engine's jobs and their states."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.widgets import DataTable

from zchar_tui.screens.base import PaneScreen


class QueueScreen(PaneScreen):
    MODE = "queue"
    TITLE = "Queue"

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="jobs-table", classes="pane-body", cursor_type="row")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(DataTable).add_columns("job", "kind", "state", "message")
        self._dirty = True
        self.set_interval(0.5, self._redraw)

    def on_engine_event(self, kind: str, data: dict[str, Any]) -> None:
        self._dirty = True

    def _redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        table = self.query_one(DataTable)
        table.clear()
        for j in self.zapp.state.ordered_jobs():
            table.add_row(str(j["id"]), j["kind"], j["state"], j["error"] or j["message"])
