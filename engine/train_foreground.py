"""`zchar train --foreground`: a training run in the calling process, with the engine's job context stood in.

Events go to a callback (the CLI's progress bar) and, like the engine's, into the project's state database, so the
dashboard shows the run's curve, samples and checkpoints afterwards. A first Ctrl-C asks the run to stop after the
current step (with a checkpoint), exactly as a stop from the dashboard does.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Callable
from typing import Any

from engine.job_context import BaseJobContext
from engine.project import Project, lock_held

EventSink = Callable[[str, dict[str, Any]], None]


class ForegroundContext(BaseJobContext):
    """The engine's job context, stood in for a run in the calling process."""

    kind = "train"

    def __init__(self, project: Project, params: dict[str, Any], on_event: EventSink | None = None,
                 persist: bool = True):
        super().__init__(project, params)
        self._on_event = on_event
        self._store = None
        self._warned = False
        self._lock_fd: int | None = None
        if persist:
            self._lock_fd = _hold_foreground_lock(project)
            from engine.store import Store, StoreError

            try:
                project.ensure_dirs()
                self._store = Store(project.db_path)
            except (OSError, StoreError, sqlite3.Error) as exc:
                self._unsaved(exc)

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        if self._store is not None:
            try:
                self._store.record_event(kind, data)
            except sqlite3.Error as exc:  # e.g. a full disk: the run goes on (its checkpoints say if they can't)
                if not self._warned:
                    self._warned = True
                    self._unsaved(exc)
        if self._on_event is not None:
            self._on_event(kind, data)

    def _unsaved(self, exc: BaseException) -> None:
        self.log(f"could not save the run's history in {self.project.db_path.name} ({exc}); training goes on, "
                 "and the dashboard will miss what is not saved", "warning")

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _hold_foreground_lock(project: Project) -> int | None:
    """A shared flock on .zchar/foreground.lock for the run's lifetime: the kernel drops it when the process dies,
    so an engine starting later can tell a live foreground run from one that was killed (and marks only that one
    interrupted)."""
    try:
        project.ensure_dirs()
        fd = os.open(project.foreground_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None  # e.g. a full disk: the run goes on; at worst an engine marks it interrupted early
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def foreground_running(project: Project) -> bool:
    """Whether a `zchar train --foreground` process of this project is alive (holds its lock)."""
    return lock_held(project.foreground_lock_path, fcntl.LOCK_EX)


def train_foreground(ctx: ForegroundContext) -> dict[str, Any]:
    """Run one training job here (the CLI's `--foreground`); returns the runner's result."""
    from engine.train import run_job

    try:
        return run_job(ctx)
    finally:
        ctx.close()
