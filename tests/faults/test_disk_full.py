"""A full disk at each kind of write: a clear message, and no corrupt checkpoint, LoRA, image, project.toml or
state database (each still opens and holds what it held).

The disk fills at the write layer: `os.fsync` raises ENOSPC for the files a test names, after part of the data
went to disk — what ext4 and others report when delayed allocation finds no room (a real full tmpfs behaves the
same; mounting one needs root, which CI may not have). SQLite's own "database or disk is full" comes from
`PRAGMA max_page_count`, which makes SQLite itself run out of room.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from engine import jobs, protocol, server
from engine.project import Project, ProjectError, init_project
from engine.store import Store
from engine.train_checkpoint import checkpoints_root, complete_checkpoints
from tests import engine_harness as h
from tests.conftest import make_project
from tests.faults.engine_kill import stored, wait_job
from tests.train_helpers import train
from zchar_tui.cli import main as cli_main
from zchar_tui.client import SyncClient

pytest.importorskip("torch")


@contextmanager
def full_disk(monkeypatch: pytest.MonkeyPatch, where: Callable[[str], bool]) -> Iterator[list[str]]:
    """ENOSPC from fsync for every file whose path `where` accepts; yields the paths refused so far."""
    real_fsync = os.fsync
    refused: list[str] = []

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if where(path):
            refused.append(path)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    try:
        yield refused
    finally:
        monkeypatch.setattr(os, "fsync", real_fsync)


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*")) if folder.is_dir() else []


@pytest.mark.parametrize(("what", "where", "message"), [
    ("checkpoint", ".tmp-step-000004-", "the disk is full writing checkpoint step 4; nothing half-written was kept "
                                        "and the last checkpoint (step 2) is kept; free some space and resume"),
    ("samples", "/samples/", "the disk is full writing validation samples; nothing half-written was kept and the "
                             "last checkpoint (step 6) is kept"),
    ("lora", "/loras/.Mika.safetensors.", "the disk is full writing the LoRA file; nothing half-written was kept "
                                          "and the last checkpoint (step 6) is kept"),
], ids=["checkpoint", "samples", "lora"])
def test_training_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str, where: str,
                                 message: str) -> None:
    project = make_project(tmp_path / "p", checkpoint_every=2)  # 6 steps; samples at the end
    previous = project.loras_dir / "Mika.safetensors"
    previous.write_bytes(b"the LoRA of an earlier run")
    with full_disk(monkeypatch, lambda path: where in path) as refused:
        rec = train(project, run="r", persist=True)
    assert refused, "the write never happened"
    assert str(rec.error).startswith(message), rec.error
    run_dir = checkpoints_root(project) / "r"
    assert hidden(run_dir) == [] and hidden(project.loras_dir) == [] and hidden(project.samples_dir) == []
    if what != "samples":  # (samples come after the LoRA is exported)
        assert previous.read_bytes() == b"the LoRA of an earlier run"
    kept = [s for s, _ in complete_checkpoints(run_dir)]
    assert kept == ([2] if what == "checkpoint" else [2, 4, 6])
    db = stored(project)
    assert db["runs"]["r"]["state"] == "failed" and db["runs"]["r"]["message"] == str(rec.error)
    assert db["metrics"]["r"]["step"] == list(range(1, 5 if what == "checkpoint" else 7))
    assert [c["step"] for c in db["checkpoints"]["r"]] == kept
    # with room again, the run resumes from the kept checkpoint and finishes
    again = train(project, run="r", resume=True, persist=True)
    assert again.error is None, again.error
    assert again.of("train.rewind") == [{"run": "r", "step": kept[-1]}]
    assert previous.read_bytes() != b"the LoRA of an earlier run"


def test_foreground_training_goes_on_when_state_db_cannot_be_written(tiny_project: Project,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    real_add = Store.add_metric

    def add_metric(self: Store, run: str, data: dict[str, Any]) -> None:
        if data["step"] > 2:
            raise sqlite3.OperationalError("database or disk is full")
        real_add(self, run, data)

    monkeypatch.setattr(Store, "add_metric", add_metric)
    rec = train(tiny_project, run="r", persist=True)
    assert rec.error is None, rec.error  # it used to end with a traceback
    warnings = [m for m in rec.logs("warning") if "could not save the run's history" in m]
    assert len(warnings) == 1 and "database or disk is full" in warnings[0]
    db = stored(tiny_project)
    assert db["metrics"]["r"]["step"] == [1, 2] and db["runs"]["r"]["state"] == "done"


@pytest.fixture
def engine(tiny_project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, SyncClient]]:
    """An engine in this process (so the test can fill its disk), with the real job kinds and a metrics job."""
    monkeypatch.setitem(jobs.KINDS, "metrics", ("tests.faults.test_disk_full:emit_metrics", h.accept))
    with h.in_process_engine(tiny_project) as eng, SyncClient(tiny_project, spawn=False) as client:
        yield eng, client


def emit_metrics(ctx: Any) -> dict[str, Any]:
    ctx.emit(protocol.EV_RUN, {"name": "r", "state": "running", "job_id": ctx.job_id})
    for step in range(1, ctx.params["steps"] + 1):
        ctx.emit(protocol.EV_METRIC, {"run": "r", "step": step, "loss": 1.0 / step, "epoch": 1})
        ctx.progress(step, ctx.params["steps"])
    return {"message": "emitted"}


def on_loop(eng: Any, fn: Callable[[], Any]) -> Any:
    """Run `fn` on the engine's loop thread (the store belongs to it) and return its result."""
    import asyncio

    async def call() -> Any:
        return fn()

    return asyncio.run_coroutine_threadsafe(call(), eng.loop).result(10)


def test_generated_image_on_a_full_disk(engine: tuple[Any, SyncClient], monkeypatch: pytest.MonkeyPatch) -> None:
    eng, client = engine
    project = eng.project
    with full_disk(monkeypatch, lambda path: "/outputs/" in path) as refused:
        job_id = client.request("submit", kind="gen", params={"prompt": "mika", "seed": 3})["job_ids"][0]
        job = wait_job(client, job_id, "done", "failed")
    assert refused and job["state"] == "failed"
    assert job["error"] == "the disk is full; free some space and retry (nothing half-written was kept)"
    assert list(project.outputs_dir.rglob("*")) == [p for p in project.outputs_dir.rglob("*") if p.is_dir()]
    retry = client.request("retry", job_id=job_id)["job_id"]  # room again
    assert wait_job(client, retry, "done", "failed")["state"] == "done"
    assert [o["job_id"] for o in client.request("attach", client="t")["outputs"]] == [retry]


def test_state_db_full_is_reported_once_and_nothing_is_lost(engine: tuple[Any, SyncClient]) -> None:
    eng, client = engine
    first = client.request("submit", kind="metrics", params={"steps": 50})["job_ids"][0]
    wait_job(client, first, "done")
    client.request("attach", client="t", replay=False)
    pages = on_loop(eng, lambda: eng.store.db.execute("PRAGMA page_count").fetchone()[0])
    on_loop(eng, lambda: eng.store.db.execute(f"PRAGMA max_page_count = {pages}"))
    job_id = client.request("submit", kind="metrics", params={"steps": 3000})["job_ids"][0]
    errors = []
    for ev in client.iter_events(timeout=30):
        if ev["event"] == "log" and ev["data"]["level"] == "error":
            errors.append(ev["data"]["message"])
        if ev["event"] == "job" and ev["data"]["id"] == job_id and ev["data"]["state"] in ("done", "failed"):
            break
    assert errors == ["could not save to .zchar/state.db (the disk is full; free some space and retry (nothing "
                      "half-written was kept)); events are shown but not recorded until it can write again"]
    on_loop(eng, lambda: eng.store.db.execute("PRAGMA max_page_count = 1073741823"))  # room again
    later = client.request("submit", kind="metrics", params={"steps": 5})["job_ids"][0]
    wait_job(client, later, "done")
    history = client.request("run_history", run="r")["metrics"]["step"]
    assert history[:50] == list(range(1, 51))  # what was stored before is all there
    assert on_loop(eng, lambda: eng.store.db.execute("PRAGMA integrity_check").fetchone()[0]) == "ok"


def test_a_job_end_that_could_not_be_written_is_written_later(engine: tuple[Any, SyncClient],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    eng, client = engine
    real_update = eng.store.update_job
    failing = [True]

    def update_job(job_id: int, **fields: Any) -> dict[str, Any]:
        if failing[0] and fields.get("state") == "done":
            raise sqlite3.OperationalError("database or disk is full")
        return real_update(job_id, **fields)

    monkeypatch.setattr(eng.store, "update_job", update_job)
    job_id = client.request("submit", kind="metrics", params={"steps": 2})["job_ids"][0]
    deadline = time.monotonic() + 10
    while job_id not in eng._unrecorded and time.monotonic() < deadline:
        time.sleep(0.02)
    assert next(j for j in client.request("jobs") if j["id"] == job_id)["state"] == "running"  # in state.db
    failing[0] = False  # room again: the next scheduling round writes it
    wait_job(client, client.request("submit", kind="metrics", params={"steps": 1})["job_ids"][0], "done")
    assert wait_job(client, job_id, "done", timeout=5)["state"] == "done"


def test_project_toml_and_init_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    project = init_project(tmp_path / "p", "mika", base="tiny")
    before = project.toml_path.read_bytes()
    with full_disk(monkeypatch, lambda path: "project.toml" in path):
        with pytest.raises(ProjectError, match="could not save: No space left on device; the file was left as"):
            project.update({"train.rank": 8})
        assert cli_main(["init", str(tmp_path / "new"), "--trigger", "mika"]) == 2
    assert project.toml_path.read_bytes() == before and hidden(project.root) == [".zchar"]
    err = capsys.readouterr().err
    assert err.startswith("zchar: error: ") and "could not create the project: No space left on device" in err
    assert not (tmp_path / "new" / "project.toml").exists() and hidden(tmp_path / "new") == [".zchar"]


def test_the_queue_carries_on_once_a_job_can_be_started_again(engine: tuple[Any, SyncClient],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    eng, client = engine
    real_update = eng.store.update_job
    full = [True]

    def update_job(job_id: int, **fields: Any) -> dict[str, Any]:
        if full[0] and fields.get("state") == "running":
            raise sqlite3.OperationalError("database or disk is full")
        return real_update(job_id, **fields)

    monkeypatch.setattr(eng.store, "update_job", update_job)
    monkeypatch.setattr(server, "SCHEDULE_RETRY_S", 0.2)
    client.request("attach", client="t", replay=False)
    job_id = client.request("submit", kind="metrics", params={"steps": 1})["job_ids"][0]
    message = next(ev["data"]["message"] for ev in client.iter_events(timeout=10)
                   if ev["event"] == "log" and ev["data"]["level"] == "error")
    assert message.startswith("the queue waits: could not start job 1 (the disk is full"), message
    assert wait_job(client, job_id, "queued")["state"] == "queued"
    full[0] = False  # room again: the queue goes on by itself (a submit need not wake it)
    assert wait_job(client, job_id, "done", timeout=30)["state"] == "done"
