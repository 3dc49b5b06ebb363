"""The Queue pane with thousands of jobs (found by bench/soak.py and bench/ui.py): it lists a bounded window, changes
only the rows whose job changed, ignores events that are not about jobs, and draws nothing while another pane shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Static

from engine.project import Project
from tests.conftest import make_project
from tests.test_queue_pane import job
from zchar_tui.app import ZcharApp
from zchar_tui.config import UserConfig
from zchar_tui.screens.queue import MAX_ROWS, window


def jobs_of(done: int, running: int, queued: int) -> list[dict[str, Any]]:
    out = [job(i, "done") | {"finished": float(i)} for i in range(1, done + 1)]
    out += [job(done + i, "running") for i in range(1, running + 1)]
    out += [job(done + running + i, "queued") for i in range(1, queued + 1)]
    return out


def test_window_keeps_what_matters_in_queue_order() -> None:
    jobs = jobs_of(2000, 1, 8000)
    shown = window(jobs)
    ids = [j["id"] for j in shown]
    assert len(shown) == MAX_ROWS and ids == sorted(ids)
    assert 2001 in ids and 2002 in ids  # the running job and the next in line
    assert 2000 in ids and 1 not in ids  # the newest finished, not the oldest
    finished = [j for j in shown if j["state"] == "done"]
    assert len(finished) == MAX_ROWS // 5
    assert window(jobs_of(3, 1, 5)) == jobs_of(3, 1, 5)  # short queues are listed whole
    few_active = window(jobs_of(5000, 0, 10))
    assert len(few_active) == MAX_ROWS and sum(j["state"] == "queued" for j in few_active) == 10


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "proj", images=1)


def big_queue_app(project: Project) -> ZcharApp:
    app = ZcharApp(project, config=UserConfig(image_protocol="halfcell"), connect=False, initial_pane="queue")
    app.state.load_snapshot({"engine": {"state": "busy"}, "jobs": jobs_of(2000, 1, 8000), "runs": [], "outputs": [],
                             "log": []})
    return app


async def test_a_10k_job_queue_lists_a_window_and_updates_rows_in_place(project: Project) -> None:
    app = big_queue_app(project)
    async with app.run_test(size=(150, 40)) as pilot:
        await pilot.pause(0.6)
        table = app.screen.query_one(DataTable)
        assert table.row_count == MAX_ROWS
        note = app.screen.query_one("#jobs-hidden", Static)
        listed_queued = MAX_ROWS - MAX_ROWS // 5 - 1  # a fifth for finished jobs, one running
        assert note.display and f"listing {MAX_ROWS} jobs" in str(note.render())
        assert f"{8000 - listed_queued:,} more are queued" in str(note.render())

        cleared: list[int] = []
        original_clear = table.clear
        table.clear = lambda *a, **k: cleared.append(1) or original_clear(*a, **k)  # type: ignore[method-assign]
        for step in range(1, 50):  # a training stream: metrics and telemetry are not about the queue
            app._on_client_event("train.metric", {"run": "r", "step": step, "loss": 0.1})
            app._on_client_event("gpu", {"available": False, "reason": "none", "gpus": []})
        app._on_client_event("job.progress", {"job_id": 2001, "step": 3, "total": 8, "message": "image step 3/8"})
        await pilot.pause(0.6)
        assert str(table.get_row("2001")[3]).strip().endswith("38%") and table.get_row("2001")[6] == "image step 3/8"

        running = app.state.jobs[2001]
        app._on_client_event("job", running | {"state": "done", "progress": 1.0, "finished": 9999.0})
        app._on_client_event("job", app.state.jobs[2002] | {"state": "running"})
        await pilot.pause(0.6)
        assert str(table.get_row("2002")[2]) == "running" and str(table.get_row("2001")[2]) == "done"
        assert table.row_count == MAX_ROWS and not cleared  # slid along, no rebuild


async def test_nothing_is_drawn_while_another_pane_shows(project: Project) -> None:
    app = big_queue_app(project)
    async with app.run_test(size=(150, 40)) as pilot:
        await pilot.pause(0.6)
        queue = app.screen
        table = queue.query_one(DataTable)
        await pilot.press("3")  # the Prompts pane
        app._on_client_event("job", app.state.jobs[2002] | {"message": "next"})
        await pilot.pause(1.1)
        assert table.get_row("2002")[6] == ""  # not redrawn in the background
        await pilot.press("4")
        await pilot.pause()
        assert table.get_row("2002")[6] == "next"  # caught up on return


def test_the_dashboard_keeps_every_active_job_and_the_newest_finished() -> None:
    from zchar_tui.state import KEEP_FINISHED, EngineState

    state = EngineState()
    state.load_snapshot({"jobs": jobs_of(KEEP_FINISHED, 1, 5)})
    for i in range(1, 6):  # live: five more finish
        state.apply("job", job(KEEP_FINISHED + 1 + i, "done") | {"finished": 5000.0 + i})
    finished = [j for j in state.jobs.values() if j["state"] == "done"]
    assert len(finished) == KEEP_FINISHED
    assert min(j["id"] for j in finished) == 6  # the five oldest went
    assert state.jobs[KEEP_FINISHED + 1]["state"] == "running"  # active jobs are never dropped
    for i in range(2000):
        state.apply("job", job(10_000 + i, "queued"))
    assert sum(1 for j in state.jobs.values() if j["state"] == "queued") == 2000
    state.apply("job.removed", {"id": KEEP_FINISHED + 6})
    assert KEEP_FINISHED + 6 not in state.jobs


async def test_live_progress_repaints_the_table_every_two_seconds_and_state_at_once(project: Project) -> None:
    """Each change repaints every visible row of a DataTable (20-30 ms): a training job's per-step progress used to
    do that twice a second."""
    from zchar_tui.screens.queue import LIVE_EVERY_S

    app = ZcharApp(project, config=UserConfig(image_protocol="halfcell"), connect=False, initial_pane="queue")
    app.state.load_snapshot({"engine": {"state": "busy"}, "jobs": jobs_of(3, 1, 3), "runs": [], "outputs": [],
                             "log": []})
    async with app.run_test(size=(150, 40)) as pilot:
        table = app.screen.query_one(DataTable)

        def progress(step: int) -> None:
            app._on_client_event("job.progress", {"job_id": 4, "step": step, "total": 100, "message": f"step {step}"})

        progress(1)
        await pilot.pause(0.6)
        assert table.get_row("4")[6] == "step 1"
        progress(2)
        await pilot.pause(0.6)
        assert table.get_row("4")[6] == "step 1"  # not yet
        app._on_client_event("job", app.state.jobs[5] | {"message": "moved up"})
        await pilot.pause(0.6)
        assert table.get_row("5")[6] == "moved up"  # a job's own change shows at once
        await pilot.pause(LIVE_EVERY_S)
        assert table.get_row("4")[6] == "step 2"  # and the live one within LIVE_EVERY_S
