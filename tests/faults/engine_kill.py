"""Helpers for the kill -9 tests: engines with a fault point (tests/faults/harness.py), killed where they stop."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from engine.project import Project
from engine.store import Store
from zchar_tui.client import SyncClient, engine_running

ROOT = Path(__file__).resolve().parents[2]


class PausingEngine:
    """An engine process that stops dead at `point`; `kill()` is kill -9. Use as a context manager."""

    def __init__(self, project: Project, point: str, marker: Path, connect: bool = True):
        self.project = project
        self.marker = marker
        marker.unlink(missing_ok=True)
        project.ensure_dirs()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(project.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.faults.harness", str(project.root),
                                          str(marker), point], env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)
        self.client: SyncClient | None = None
        deadline = time.monotonic() + 30
        while connect and not engine_running(project) and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if connect:
            self.client = SyncClient(project, spawn=False, timeout=30)

    def wait_paused(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while not self.marker.exists():
            if self.proc.poll() is not None:
                raise AssertionError(f"the engine exited ({self.proc.returncode}) before its fault point: "
                                     f"{self.project.log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the fault point was never reached: {self.project.log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        return self.marker.read_text()

    def kill(self) -> None:
        if self.client is not None:
            self.client.close()
        self.proc.kill()  # SIGKILL: no handler, no cleanup, as a crash or the OOM killer
        self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while engine_running(self.project) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not engine_running(self.project)

    def __enter__(self) -> PausingEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def stored(project: Project) -> dict[str, Any]:
    """What state.db holds (opening it also proves it is still a usable database)."""
    store = Store(project.db_path)
    try:
        assert store.recovered_from is None, "state.db was found corrupt"
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        runs = {r["name"]: r for r in store.list_runs()}
        return {"jobs": {j["id"]: j for j in store.list_jobs()}, "runs": runs,
                "metrics": {name: store.metrics(name) for name in runs},
                "checkpoints": {name: store.checkpoints(name) for name in runs},
                "samples": {name: store.samples(name) for name in runs},
                "outputs": store.outputs(), "log": [e["message"] for e in store.recent_log(500)]}
    finally:
        store.close()


def losses(db: dict[str, Any], run: str, up_to: int | None = None) -> dict[int, float]:
    m = db["metrics"][run]
    return {s: v for s, v in zip(m["step"], m["loss"], strict=True) if up_to is None or s <= up_to}


def wait_job(client: SyncClient, job_id: int, *states: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = next(j for j in client.request("jobs") if j["id"] == job_id)
        if job["state"] in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} stayed {job.get('state')}: {job.get('error') or job.get('message')}")
