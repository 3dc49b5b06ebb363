"""Detach and reattach: a stored 10k-step run replays into a fresh dashboard from step 1; two dashboards attached
to one engine both follow it live."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from engine.project import Project
from engine.store import Store
from tests import training_data as td
from tests.conftest import make_project
from zchar_tui.app import ZcharApp
from zchar_tui.screens.training import TrainingScreen
from zchar_tui.widgets.checkpoint_list import CheckpointList
from zchar_tui.widgets.contact_sheet import ContactSheet
from zchar_tui.widgets.loss_chart import LossChart
from zchar_tui.widgets.train_progress import TrainProgress

STEPS = 10_000


def store_history(project: Project, steps: int = STEPS, total: int = 20_000) -> None:
    """What an engine that trained `steps` steps and was then stopped leaves in the state database."""
    store = Store(project.db_path)
    try:
        store.db.execute("BEGIN")
        store.upsert_run(td.RUN, **{k: v for k, v in td.run_record(steps, total, state="stopped").items()
                                    if k not in ("name", "created", "updated")})
        cols = td.metrics(steps, total)
        for i in range(steps):
            store.add_metric(td.RUN, {c: cols[c][i] for c in cols})
        for s in td.samples(project.root, [2500, 5000, 7500, 10_000]):
            store.add_sample(td.RUN, s)
        for c in td.checkpoints(project.root, [5000, 10_000], pinned=(5000,)):
            store.upsert_checkpoint(td.RUN, c)
        store.db.execute("COMMIT")
    finally:
        store.close()


async def wait_for(pilot: Any, condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


@pytest.fixture
def stored_project(tmp_path: Path) -> Project:
    project = make_project(tmp_path / "proj")
    store_history(project)
    return project


async def test_stored_10k_run_replays_into_a_fresh_ui(stored_project: Project, engine_of: Any) -> None:
    engine_of(stored_project)  # the engine that outlived the previous dashboard
    app = ZcharApp(stored_project, initial_pane="training")
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: app.state.connected and app.state.history is not None)
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        chart = screen.query_one(LossChart)
        await wait_for(pilot, lambda: len(chart.steps) == STEPS and chart.drawn)
        x, _ = chart.drawn["loss"]
        assert x[0] == 1 and x[-1] == STEPS  # the whole curve, from step 1
        assert len(x) <= 2 * chart.size.width + 2  # drawn downsampled
        assert "10,000/20,000" in screen.query_one(TrainProgress).lines["step"]
        sheet = screen.query_one(ContactSheet)
        await wait_for(pilot, lambda: sheet.grid.steps == [2500, 5000, 7500, 10_000] and sheet.loading_done)
        table = screen.query_one(CheckpointList)
        assert table.row_count == 2 and table.checkpoints[5000]["pinned"]


async def test_two_dashboards_follow_one_engine(stored_project: Project, engine_of: Any) -> None:
    client = engine_of(stored_project)
    a = ZcharApp(stored_project, initial_pane="training")
    b = ZcharApp(stored_project, initial_pane="queue")
    ended = ("done", "failed", "cancelled")

    def submit() -> int:  # a job queued from elsewhere (the CLI); it runs (or fails fast) in the engine
        return client.request("submit", kind="gen", params={"prompt": "mika, portrait"})["job_ids"][0]

    async with b.run_test(size=(140, 45)) as pb:
        async with a.run_test(size=(140, 45)) as pa:
            await wait_for(pa, lambda: a.state.connected and b.state.connected)
            job_id = await asyncio.to_thread(submit)
            await wait_for(pa, lambda: a.state.jobs.get(job_id, {}).get("state") in ended)
            await wait_for(pb, lambda: b.state.jobs.get(job_id, {}).get("state") in ended)
            assert a.state.jobs[job_id]["state"] == b.state.jobs[job_id]["state"]
        # The first dashboard quit; the second still follows the engine.
        job_id = await asyncio.to_thread(submit)
        await wait_for(pb, lambda: b.state.jobs.get(job_id, {}).get("state") in ended)
        assert b.state.connected and b.state.history is not None and b.state.history.name == td.RUN
