"""`zchar train --foreground`: a training run in the calling process, with the engine's job context stood in.

Events go to a callback (the CLI's progress bar) and, like the engine's, into the project's state database, so the
dashboard shows the run's curve, samples and checkpoints afterwards. A first Ctrl-C asks the run to stop after the
current step (with a checkpoint), exactly as a stop from the dashboard does.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine import protocol
from engine.project import Project

EventSink = Callable[[str, dict[str, Any]], None]


class ForegroundContext:
    """The subset of `engine.server.JobContext` that training uses."""

    kind = "train"

    def __init__(self, project: Project, params: dict[str, Any], on_event: EventSink | None = None,
                 persist: bool = True):
        self.project = project
        self.params = params
        self.job_id: int | None = None
        self.attempts = 0
        self.previous_results: list[dict[str, Any]] = []
        self.stop_reason: str | None = None
        self._on_event = on_event
        self._requests: set[str] = set()
        self._lock = threading.Lock()
        self._store = None
        self._warned = False
        if persist:
            from engine.store import Store, StoreError

            try:
                project.ensure_dirs()
                self._store = Store(project.db_path)
            except (OSError, StoreError, sqlite3.Error) as exc:
                self._unsaved(exc)

    @property
    def should_stop(self) -> bool:
        return self.stop_reason is not None

    def request_stop(self, reason: str = "cancel") -> None:
        self.stop_reason = self.stop_reason or reason

    def add_request(self, what: str) -> None:
        with self._lock:
            self._requests.add(what)

    def take_requests(self) -> set[str]:
        with self._lock:
            taken, self._requests = self._requests, set()
        return taken

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        if self._store is not None:
            try:
                _persist(self._store, kind, data)
            except sqlite3.Error as exc:  # e.g. a full disk: the run goes on (its checkpoints say if they can't)
                if not self._warned:
                    self._warned = True
                    self._unsaved(exc)
        if self._on_event is not None:
            self._on_event(kind, data)

    def _unsaved(self, exc: BaseException) -> None:
        self.log(f"could not save the run's history in {self.project.db_path.name} ({exc}); training goes on, "
                 "and the dashboard will miss what is not saved", "warning")

    def progress(self, step: int, total: int, message: str = "", eta_s: float | None = None) -> None:
        self.emit(protocol.EV_PROGRESS, {"job_id": None, "step": step, "total": total, "message": message,
                                         "eta_s": eta_s})

    def loading(self, stage: str, done: float = 0, total: float = 0, message: str = "") -> None:
        self.emit(protocol.EV_LOADING, {"job_id": None, "stage": stage, "done": done, "total": total,
                                        "message": message})

    def log(self, message: str, level: str = "info") -> None:
        self.emit(protocol.EV_LOG, {"level": level, "message": message, "job_id": None})

    def pinned(self, checkpoint_path: Path | str) -> bool:
        from engine.server import pin_marker

        return pin_marker(Path(checkpoint_path)).exists()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def _persist(store: Any, kind: str, data: dict[str, Any]) -> None:
    """What the engine stores for the same events (see `engine.server.Engine._persist`)."""
    if kind == protocol.EV_METRIC:
        store.add_metric(data["run"], data)
    elif kind == protocol.EV_REWIND:
        store.truncate_metrics(data["run"], data["step"])
    elif kind == protocol.EV_SAMPLE:
        store.add_sample(data["run"], data)
    elif kind == protocol.EV_CHECKPOINT:
        store.upsert_checkpoint(data["run"], data)
    elif kind == protocol.EV_CHECKPOINT_REMOVED:
        store.remove_checkpoint(data["run"], data["step"])
    elif kind == protocol.EV_RUN:
        store.upsert_run(data["name"], **{k: v for k, v in data.items() if k != "name"})
    elif kind == protocol.EV_LOG:
        store.add_log(data.get("level", "info"), data.get("message", ""), None)


def train_foreground(ctx: ForegroundContext) -> dict[str, Any]:
    """Run one training job here (the CLI's `--foreground`); returns the runner's result."""
    from engine.train import run_job

    try:
        return run_job(ctx)
    finally:
        ctx.close()
