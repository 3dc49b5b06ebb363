"""Training pane (issue: training screen). For now: start/stop a run and its latest figures."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from zchar_tui.screens.base import PaneScreen


class TrainingScreen(PaneScreen):
    MODE = "training"
    TITLE = "Training"
    BINDINGS = [
        Binding("s", "start", "Start", id="train_start", tooltip="Queue a new training run"),
        Binding("x", "stop", "Stop", id="train_stop", tooltip="Finish the step, checkpoint, stop"),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static(id="train-summary", classes="pane-body")

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(0.5, self._redraw)
        self._redraw()

    def on_engine_event(self, kind: str, data: dict[str, Any]) -> None:
        pass  # redrawn by the timer

    def _redraw(self) -> None:
        h = self.zapp.state.history
        if h is None:
            self.query_one("#train-summary", Static).update("No training run yet. Press s to start one.")
            return
        m = h.latest or {}
        lines = [f"run {h.name}: {h.run.get('state', '?')}  {h.run.get('message', '')}",
                 f"steps recorded: {len(h)}"]
        if m:
            lines.append(f"step {m.get('step')}/{m.get('total_steps')}  loss {m.get('loss', 0):.4f}")
        self.query_one("#train-summary", Static).update("\n".join(lines))

    def action_start(self) -> None:
        self.zapp.submit_job("train", {})

    def action_stop(self) -> None:
        job = self.zapp.state.active_train_job()
        if job:
            self.zapp.engine_call("cancel", job_id=job["id"])
