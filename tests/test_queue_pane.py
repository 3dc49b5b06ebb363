"""The Queue pane with Pilot (no engine: the state is filled by hand, commands are recorded), and snapshots of the
Queue and Prompts panes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from engine import pngmeta
from engine.project import Project
from tests.conftest import make_project
from zchar_tui.app import ZcharApp
from zchar_tui.config import UserConfig
from zchar_tui.screens.templates import TemplatesScreen
from zchar_tui.widgets.gallery import Gallery, ResultScreen

COLOURS = ((200, 60, 60), (60, 160, 90), (70, 90, 200))


def job(i: int, state: str, **params: Any) -> dict[str, Any]:
    p = {"prompt": f"mika, scene {i}", "seed": 100 + i, "width": 64, "height": 64, "steps": 2, "guidance": 0.0,
         "loras": [], "references": [], "reference_strength": 0.6, **params}
    return {"id": i, "kind": "gen", "state": state, "position": float(i), "priority": 0, "params": p,
            "created": 0.0, "started": None, "finished": None, "progress": 1.0 if state == "done" else 0.0,
            "message": "", "error": "", "result": {}, "attempts": 0}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "proj", images=1)


def snapshot_of(project: Project) -> dict[str, Any]:
    """Three finished jobs with images, one running, one queued (as the engine's attach would send)."""
    outputs = []
    for i in (1, 2, 3):
        rel = f"outputs/2026-01-01/{i:05d}-{100 + i}.png"
        meta = {**job(i, "done")["params"], "base_model": "tiny",
                "loras": [{"path": "loras/mika.safetensors", "name": "mika", "hash": "0123456789ab", "strength": 0.8}],
                "template": {"scene": f"scene {i}"}}
        meta["prompt"] = f"mika, scene {i}"
        (project.root / rel).parent.mkdir(parents=True, exist_ok=True)
        pngmeta.write_png(project.root / rel, Image.new("RGB", (64, 64), COLOURS[i - 1]), meta)
        outputs.insert(0, {"job_id": i, "index": 0, "seed": 100 + i, "path": rel, "params": meta})
    jobs = [job(1, "done"), job(2, "done"), job(3, "done"), job(4, "running", steps=8), job(5, "queued")]
    return {"engine": {"state": "busy", "pid": 1, "job_id": 4}, "jobs": jobs, "runs": [], "outputs": outputs,
            "telemetry": {"available": False, "reason": "no NVIDIA driver", "gpus": []}, "log": []}


def queue_app(project: Project) -> tuple[ZcharApp, list[tuple[str, dict[str, Any]]]]:
    app = ZcharApp(project, config=UserConfig(image_protocol="halfcell"), connect=False, initial_pane="queue")
    app.state.load_snapshot(snapshot_of(project))
    app.state.apply("job.progress", {"job_id": 4, "step": 4, "total": 8, "message": "image step 4/8", "eta_s": 1.0})
    calls: list[tuple[str, dict[str, Any]]] = []
    app.engine_call = lambda cmd, **a: calls.append((cmd, a))  # type: ignore[method-assign, assignment]
    return app, calls


async def test_job_list_shows_states_and_live_progress(project: Project) -> None:
    app, _ = queue_app(project)
    async with app.run_test(size=(150, 40)) as pilot:
        await pilot.pause(0.6)
        table = app.screen.query_one("#jobs-table")
        assert table.row_count == 5
        running = table.get_row("4")
        assert str(running[2]) == "running" and "50%" in str(running[3]) and running[6] == "image step 4/8"
        assert "100%" in str(table.get_row("1")[3]) and "0%" in str(table.get_row("5")[3])
        gallery = app.screen.query_one(Gallery)
        assert gallery.selected["job_id"] == 1  # the highlighted job's result
        await pilot.press("right_square_bracket")
        assert gallery.selected["job_id"] == 1  # the oldest already
        await pilot.press("left_square_bracket")
        assert gallery.selected["job_id"] == 2


async def test_keys_send_the_queue_commands(project: Project) -> None:
    app, calls = queue_app(project)
    async with app.run_test(size=(150, 40)) as pilot:
        await pilot.pause(0.6)
        await pilot.press("down", "down", "down")  # job 4, running
        await pilot.press("c", "x")  # remove refused while running: no command
        await pilot.press("down", "shift+up", "K", "J")  # job 5
        await pilot.press("up", "up", "r", "d")  # job 3
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
    assert calls == [("cancel", {"job_id": 4}), ("move", {"job_id": 5, "to": "up"}),
                     ("move", {"job_id": 5, "to": "up"}), ("move", {"job_id": 5, "to": "down"}),
                     ("retry", {"job_id": 3}), ("duplicate", {"job_id": 3, "new_seed": True}),
                     ("remove", {"job_id": 3})]


async def test_open_a_result_and_send_it_to_the_builder(project: Project) -> None:
    app, _ = queue_app(project)
    async with app.run_test(size=(150, 40)) as pilot:
        await pilot.pause(0.6)
        await pilot.press("down", "o")
        await pilot.pause()
        assert isinstance(app.screen, ResultScreen) and app.screen.output["job_id"] == 2
        await pilot.press("escape", "p")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TemplatesScreen)
        assert screen.query_one("#seed").value == "102" and screen.fields()["scene"] == "scene 2"


def test_queue_pane_snapshot(project: Project, snap_compare: Any) -> None:
    app, _ = queue_app(project)
    assert snap_compare(app, terminal_size=(140, 36), run_before=lambda pilot: pilot.pause(0.8))


def test_prompts_pane_snapshot(project: Project, snap_compare: Any) -> None:
    app = ZcharApp(project, config=UserConfig(image_protocol="halfcell"), connect=False, initial_pane="prompts")

    async def fill(pilot: Any) -> None:
        app.screen.set_fields({"age": "young woman", "outfit": "red dress | hoodie", "scene": "park | beach",
                               "style": "35mm photo"})
        app.screen.query_one("#seed").value = "42"
        app.screen.query_one("#lora-table").focus()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(140, 44), run_before=fill)
