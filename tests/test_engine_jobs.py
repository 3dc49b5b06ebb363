"""Job scheduling through a real engine (in this process) with job kinds the test controls."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from engine import jobs
from engine.project import Project
from tests import engine_harness as h
from tests.conftest import wait_job
from zchar_tui.client import EngineError, SyncClient


@pytest.fixture
def client(tiny_project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[SyncClient]:
    monkeypatch.setitem(jobs.KINDS, "wait", ("tests.engine_harness:run_wait", h.accept))
    monkeypatch.setitem(jobs.KINDS, "resumable", ("tests.engine_harness:run_resumable", h.accept))
    monkeypatch.setitem(jobs.KINDS, "crash", ("tests.engine_harness:run_crash", h.accept))
    with h.in_process_engine(tiny_project), SyncClient(tiny_project, spawn=False) as c:
        yield c


def submit(client: SyncClient, kind: str, **params: object) -> int:
    return client.request("submit", kind=kind, params=params)["job_ids"][0]


def test_one_at_a_time_in_queue_order(client: SyncClient) -> None:
    a, b, c = (submit(client, "wait", gate=i) for i in range(3))
    wait_job(client, a, "running")
    client.request("move", job_id=c, to="up")  # c before b
    assert wait_job(client, b, "queued")["state"] == "queued"
    h.gate(0).set()
    wait_job(client, a, "done")
    wait_job(client, c, "running")
    assert wait_job(client, b, "queued")
    h.gate(2).set()
    h.gate(1).set()
    wait_job(client, b, "done")


def test_cancel_queued_and_running(client: SyncClient) -> None:
    a, b = submit(client, "wait", gate=0), submit(client, "wait", gate=1)
    wait_job(client, a, "running")
    assert client.request("cancel", job_id=b)["state"] == "cancelled"
    assert client.request("cancel", job_id=a)["state"] == "stopping"
    assert wait_job(client, a, "cancelled")["message"] == "cancelled"
    with pytest.raises(EngineError, match="only queued or running jobs can be cancelled"):
        client.request("cancel", job_id=a)


def test_stop_of_a_resumable_job_and_retry(client: SyncClient) -> None:
    t = submit(client, "resumable")
    wait_job(client, t, "running")
    client.request("cancel", job_id=t)
    job = wait_job(client, t, "stopped")
    assert "stopped (cancel)" in job["message"]
    new = client.request("retry", job_id=t)["job_id"]
    assert wait_job(client, new, "running")
    client.request("cancel", job_id=new)
    wait_job(client, new, "stopped")


def test_failure_is_reported_and_the_queue_goes_on(client: SyncClient) -> None:
    bad = submit(client, "crash")
    good = submit(client, "wait", gate=5)
    h.gate(5).set()
    job = wait_job(client, bad, "failed")
    assert "internal error: RuntimeError: boom" in job["error"]
    wait_job(client, good, "done")
    with pytest.raises(EngineError, match="is still"):
        client.request("retry", job_id=submit(client, "wait", gate=6))
    log = client.request("attach")["log"]
    assert any("boom" in entry["message"] for entry in log)


def test_duplicate_and_remove(client: SyncClient) -> None:
    ids = client.request("submit", kind="gen", params={"prompt": "x", "seed": 3})["job_ids"]
    with pytest.raises(EngineError, match="only generation jobs"):
        client.request("duplicate", job_id=submit(client, "resumable"))
    dup = client.request("duplicate", job_id=ids[0], new_seed=True)
    jobs_by_id = {j["id"]: j for j in client.request("jobs")}
    assert jobs_by_id[dup["job_id"]]["params"]["prompt"] == "x"
    assert jobs_by_id[dup["job_id"]]["params"]["seed"] == dup["seed"]


def test_shutdown_stops_the_running_job_cleanly(tiny_project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(jobs.KINDS, "wait", ("tests.engine_harness:run_wait", h.accept))
    monkeypatch.setitem(jobs.KINDS, "resumable", ("tests.engine_harness:run_resumable", h.accept))
    with h.in_process_engine(tiny_project) as engine, SyncClient(tiny_project, spawn=False) as c:
        g = submit(c, "wait", gate=9)
        wait_job(c, g, "running")
        t = submit(c, "resumable")
        engine.loop.call_soon_threadsafe(engine.request_shutdown)
        deadline = time.monotonic() + 10
        while engine.current is not None and time.monotonic() < deadline:
            time.sleep(0.02)
    from engine.store import Store

    s = Store(tiny_project.db_path)
    states = {j["id"]: j["state"] for j in s.list_jobs()}
    assert states[g] == "queued"  # an interrupted generation runs again on the next start
    assert states[t] == "queued"  # never started
