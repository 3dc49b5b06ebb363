"""An engine running inside the test process (in a thread), with job kinds the test controls."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from engine.project import Project
from engine.server import Engine, JobContext

GATES: dict[int, threading.Event] = {}  # gate number -> released by the test


def gate(number: int) -> threading.Event:
    return GATES.setdefault(number, threading.Event())


def accept(project: Any, settings: Any, params: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    return [params], []


def run_wait(ctx: JobContext) -> dict[str, Any]:
    """Reports progress until released or asked to stop; a stop mid-way is a cancel (like generation)."""
    released = gate(ctx.params.get("gate", 0))
    step = 0
    while not released.wait(0.01):
        step += 1
        ctx.progress(step, 1000)
        ctx.check_cancel()
    return {"message": "released", "steps": step}


def run_resumable(ctx: JobContext) -> dict[str, Any]:
    """Like training: a stop request ends the job as 'stopped' (resumable)."""
    while not ctx.should_stop:
        time.sleep(0.01)
    return {"stopped": True, "message": f"stopped ({ctx.stop_reason})"}


def run_crash(ctx: JobContext) -> dict[str, Any]:
    raise RuntimeError("boom")


@contextmanager
def in_process_engine(project: Project) -> Iterator[Engine]:
    engine = Engine(project)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=lambda: loop.run_until_complete(engine.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not project.socket_path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield engine
    finally:
        for gate in GATES.values():
            gate.set()
        loop.call_soon_threadsafe(engine.request_shutdown)
        thread.join(timeout=30)
        GATES.clear()
