"""The engine with long queues (found by bench/soak.py): memory is released between jobs only when it can be freed,
and the queue's lookups stay cheap with thousands of jobs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from engine import jobs, server
from engine.project import Project
from tests import engine_harness as h
from tests.conftest import wait_job
from tests.test_engine_jobs import submit
from zchar_tui.client import SyncClient


@pytest.fixture
def releases(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    calls: list[float] = []
    lock = threading.Lock()

    def record() -> None:
        with lock:
            calls.append(time.monotonic())

    monkeypatch.setattr(server, "_release_memory", record)
    return calls


@pytest.fixture
def client(tiny_project: Project, monkeypatch: pytest.MonkeyPatch, releases: list[float]) -> Iterator[SyncClient]:
    # `gen` and `grid` share a cached pipeline in the real engine; here they are gated stand-ins.
    monkeypatch.setitem(jobs.KINDS, "gen", ("tests.engine_harness:run_wait", h.accept))
    monkeypatch.setitem(jobs.KINDS, "grid", ("tests.engine_harness:run_wait", h.accept))
    monkeypatch.setitem(jobs.KINDS, "wait", ("tests.engine_harness:run_wait", h.accept))
    monkeypatch.setitem(jobs.KINDS, "crash", ("tests.engine_harness:run_crash", h.accept))
    with h.in_process_engine(tiny_project), SyncClient(tiny_project, spawn=False) as c:
        yield c


def test_release_policy() -> None:
    gen, grid, train = ({"kind": k, "state": "done"} for k in ("gen", "grid", "train"))
    assert not server.release_after(gen, gen) and not server.release_after(gen, grid)
    assert server.release_after(gen, None)  # the queue emptied
    assert server.release_after(gen, train) and server.release_after(train, gen) and server.release_after(train, train)
    assert server.release_after({"kind": "gen", "state": "failed"}, gen)
    assert server.release_after({"kind": "gen", "state": "cancelled"}, gen)


def test_generations_in_a_row_free_memory_once_the_queue_moves_on(client: SyncClient, releases: list[float]) -> None:
    a, b, c = (submit(client, "gen", gate=i) for i in range(3))
    d = submit(client, "grid", gate=3)
    e = submit(client, "wait", gate=4)
    for i, job in enumerate((a, b, c, d)):
        wait_job(client, job, "running")
        h.gate(i).set()
    wait_job(client, e, "running")
    assert len(releases) == 1  # gen → gen → gen → grid: nothing; grid → wait (another kind): once
    h.gate(4).set()
    wait_job(client, e, "done")
    deadline = time.monotonic() + 5
    while len(releases) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(releases) == 2  # the queue emptied


def test_a_failed_job_frees_memory_before_the_next(client: SyncClient, releases: list[float]) -> None:
    bad = submit(client, "crash")
    nxt = submit(client, "gen", gate=0)
    wait_job(client, bad, "failed")
    wait_job(client, nxt, "running")
    assert len(releases) == 1
    h.gate(0).set()
    wait_job(client, nxt, "done")


def test_a_job_cancelled_while_memory_is_freed_does_not_run(client: SyncClient, releases: list[float],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheduler picks the next job again after releasing memory: the queue may have changed meanwhile."""
    releasing, resume = threading.Event(), threading.Event()

    def slow_release() -> None:
        releasing.set()
        resume.wait(10)

    monkeypatch.setattr(server, "_release_memory", slow_release)
    first = submit(client, "wait", gate=0)
    second = submit(client, "gen", gate=1)
    wait_job(client, first, "running")
    h.gate(0).set()
    assert releasing.wait(10)  # wait → gen: a change of kind
    client.request("cancel", job_id=second)
    resume.set()
    assert wait_job(client, second, "cancelled")["started"] is None


def many(project: object, settings: object, params: dict) -> tuple[list[dict], list[str]]:
    return [{"gate": 0, "n": i} for i in range(params["count"])], []


def test_a_client_attaching_to_a_long_queue_gets_every_active_job(
        tiny_project: Project, monkeypatch: pytest.MonkeyPatch, releases: list[float]) -> None:
    """The snapshot used to carry the newest 1,000 jobs by id: with more queued, the running job and the next ones
    in line were missing from a dashboard that attached then."""
    monkeypatch.setitem(jobs.KINDS, "many", ("tests.engine_harness:run_wait", many))
    monkeypatch.setitem(jobs.KINDS, "crash", ("tests.engine_harness:run_crash", h.accept))
    with h.in_process_engine(tiny_project), SyncClient(tiny_project, spawn=False) as c:
        failed = [submit(c, "crash") for _ in range(3)]
        wait_job(c, failed[-1], "failed")
        ids = c.request("submit", kind="many", params={"count": 1500})["job_ids"]
        wait_job(c, ids[0], "running")
        snap = c.request("attach", replay=True)
        listed = [j["id"] for j in snap["jobs"]]
        assert set(ids) <= set(listed) and set(failed) <= set(listed)
        assert [j["position"] for j in snap["jobs"]] == sorted(j["position"] for j in snap["jobs"])
        h.gate(0).set()


def test_jobs_in_view_keeps_the_newest_finished(tmp_path: object) -> None:
    from pathlib import Path

    from engine.store import Store

    store = Store(Path(str(tmp_path)) / "state.db")
    made = [store.add_job("gen", {"n": i}) for i in range(30)]
    for n, j in enumerate(made[:20]):
        store.update_job(j["id"], state="done", finished=1000.0 + n)
    store.update_job(made[20]["id"], state="running")
    view = store.jobs_in_view(finished=5)
    assert [j["id"] for j in view] == [j["id"] for j in made[15:]]
    store.close()
