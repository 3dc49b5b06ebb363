"""`zchar train --foreground`: a training run in the calling process, with the engine's job context stood in.

Events go to a callback (the CLI's progress bar) and, like the engine's, into the project's state database, so the
dashboard shows the run's curve, samples and checkpoints afterwards. A first Ctrl-C asks the run to stop after the
current step (with a checkpoint), exactly as a stop from the dashboard does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.job_context import BaseJobContext
from engine.project import Project

EventSink = Callable[[str, dict[str, Any]], None]


class ForegroundContext(BaseJobContext):
    """The engine's job context, stood in for a run in the calling process."""

    kind = "train"

    def __init__(self, project: Project, params: dict[str, Any], on_event: EventSink | None = None,
                 persist: bool = True):
        super().__init__(project, params)
        self._on_event = on_event
        self._store = None
        if persist:
            from engine.store import Store

            project.ensure_dirs()
            self._store = Store(project.db_path)

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        if self._store is not None:
            self._store.record_event(kind, data)
        if self._on_event is not None:
            self._on_event(kind, data)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def train_foreground(ctx: ForegroundContext) -> dict[str, Any]:
    """Run one training job here (the CLI's `--foreground`); returns the runner's result."""
    from engine.train import run_job

    try:
        return run_job(ctx)
    finally:
        ctx.close()
