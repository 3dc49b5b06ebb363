"""The training pane on a real engine and the tiny model: start from the pane, watch the chart, progress, samples
and checkpoints advance, stop, then reattach a fresh dashboard to the same history; `zchar engine status`."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_project
from zchar_tui.app import ZcharApp
from zchar_tui.cli import main as zchar
from zchar_tui.screens.training import TrainingScreen
from zchar_tui.widgets.checkpoint_list import CheckpointList
from zchar_tui.widgets.contact_sheet import ContactSheet
from zchar_tui.widgets.loss_chart import LossChart
from zchar_tui.widgets.train_progress import TrainProgress

pytest.importorskip("torch")
SIZE = (140, 45)


async def wait_for(pilot: Any, condition: Any, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


def status_text(root: Path) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert zchar(["engine", "status", str(root)]) == 0
    return out.getvalue()


@pytest.mark.slow
async def test_a_run_started_from_the_pane(tmp_path: Path, engine_of: Any) -> None:
    project = make_project(tmp_path / "proj", epochs=100, checkpoint_every=4)
    project.update({"validation.every_epochs": 1, "validation.prompts": ["a portrait"]})
    engine_of(project)  # stopped at teardown whatever happens
    app = ZcharApp(project, initial_pane="training")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.state.connected, "the engine link")
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.state.active_train_job() is not None, "the job to be queued")
        chart, panel = screen.query_one(LossChart), screen.query_one(TrainProgress)
        await wait_for(pilot, lambda: chart.drawn and len(chart.drawn["loss"][0]) >= 2, "the first steps drawn")
        first = chart.drawn["loss"][0][-1]
        first_line = panel.lines["step"]
        await wait_for(pilot, lambda: chart.drawn["loss"][0][-1] >= first + 3, "the chart to advance")
        assert panel.lines["step"] != first_line  # the progress line moved with the chart
        assert "/600" in panel.lines["step"] and "s/step" in panel.lines["step"] and "ETA" in panel.lines["step"]

        sheet, table = screen.query_one(ContactSheet), screen.query_one(CheckpointList)
        await wait_for(pilot, lambda: sheet.grid.steps and sheet.loading_done and sheet.query(".thumb"),
                       "a validation sample in the contact sheet")
        await wait_for(pilot, lambda: table.row_count >= 1, "a checkpoint in the list")

        status = await asyncio.to_thread(status_text, project.root)
        run = app.state.history.name
        assert f"run {run}: running, step " in status and "/600" in status and "loss " in status and "ETA" in status

        await pilot.press("x")
        await pilot.pause()
        await pilot.press("y")  # confirm: finish the step, save a checkpoint, stop
        await wait_for(pilot, lambda: app.state.runs.get(run, {}).get("state") == "stopped", "the run to stop")
        stopped_at = int(app.state.history.steps[-1])
        await wait_for(pilot, lambda: stopped_at in table.checkpoints, "the stop's checkpoint", timeout=10)
        sample_steps = list(sheet.grid.steps)

    # The dashboard is gone; a new one shows the whole run from step 1.
    again = ZcharApp(project, initial_pane="training")
    async with again.run_test(size=SIZE) as pilot:
        screen = again.screen
        chart, sheet = screen.query_one(LossChart), screen.query_one(ContactSheet)
        await wait_for(pilot, lambda: chart.drawn and chart.drawn["loss"][0][-1] == stopped_at, "the replayed chart")
        assert chart.drawn["loss"][0][0] == 1
        assert sheet.grid.steps == sample_steps
        assert f"{stopped_at}/600" in screen.query_one(TrainProgress).lines["step"]
        assert "stopped" in screen.query_one(TrainProgress).lines["run"]
