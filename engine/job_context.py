"""What a job runner (`engine.train.run_job`, `engine.generate.run_job`) is handed: its parameters, stop and
request flags, and ways to report. The engine's context sends events to attached clients; the CLI's foreground
context sends them to a progress bar. Both store them the same way (`Store.record_event`).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from engine import protocol
from engine.errors import JobCancelled
from engine.project import Project


def pin_marker(checkpoint_path: Path) -> Path:
    """Pins are marker files next to a checkpoint, so they survive a lost database."""
    return checkpoint_path / "pinned" if checkpoint_path.is_dir() else checkpoint_path.with_name(
        checkpoint_path.name + ".pinned")


class BaseJobContext:
    """Thread-safe flags and reporting helpers; subclasses deliver events in `emit`."""

    kind = ""

    def __init__(self, project: Project, params: dict[str, Any], job_id: int | None = None, attempts: int = 0,
                 previous_results: list[dict[str, Any]] | None = None):
        self.project = project
        self.params = params
        self.job_id = job_id
        self.attempts = attempts
        self.previous_results = previous_results or []  # outputs recorded for this job before a crash
        self.stop_reason: str | None = None  # "cancel" or "shutdown" once asked to stop
        self._requests: set[str] = set()
        self._lock = threading.Lock()

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        raise NotImplementedError

    @property
    def should_stop(self) -> bool:
        return self.stop_reason is not None

    def check_cancel(self) -> None:
        """For jobs that stop mid-way (generation): raise JobCancelled once asked to stop."""
        if self.stop_reason:
            raise JobCancelled("cancelled" if self.stop_reason == "cancel" else "interrupted by engine shutdown")

    def request_stop(self, reason: str = "cancel") -> None:
        self.stop_reason = self.stop_reason or reason

    def add_request(self, what: str) -> None:
        with self._lock:
            self._requests.add(what)

    def take_requests(self) -> set[str]:
        """Sample-now / save-now requests made since the last call."""
        with self._lock:
            taken, self._requests = self._requests, set()
        return taken

    def progress(self, step: int, total: int, message: str = "", eta_s: float | None = None) -> None:
        self.emit(protocol.EV_PROGRESS, {"job_id": self.job_id, "step": step, "total": total, "message": message,
                                         "eta_s": eta_s})

    def loading(self, stage: str, done: float = 0, total: float = 0, message: str = "") -> None:
        self.emit(protocol.EV_LOADING, {"job_id": self.job_id, "stage": stage, "done": done, "total": total,
                                        "message": message})

    def log(self, message: str, level: str = "info") -> None:
        self.emit(protocol.EV_LOG, {"level": level, "message": message, "job_id": self.job_id})

    def pinned(self, checkpoint_path: Path | str) -> bool:
        return pin_marker(Path(checkpoint_path)).exists()
