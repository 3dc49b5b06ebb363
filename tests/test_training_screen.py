"""The training pane with synthetic engine data (no engine): settings form, keys → commands, live chart and
progress, GPU gauges from a stand-in NVML, warnings, contact sheet and preview, checkpoints, loading stages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from textual.geometry import Region
from textual.widgets import Input, Select, Static

from engine import protocol
from engine.project import Project
from engine.telemetry import GpuReader
from tests import training_data as td
from tests.conftest import make_project
from tests.fake_nvml import FakeNvml, NVMLError_LibraryNotFound
from zchar_tui.app import ZcharApp
from zchar_tui.screens.dialogs import ConfirmScreen
from zchar_tui.screens.training import TrainingScreen
from zchar_tui.training_warnings import loss_warnings, vram_warnings
from zchar_tui.widgets.checkpoint_list import CheckpointList
from zchar_tui.widgets.contact_sheet import ContactSheet, SampleCell, SamplePreview
from zchar_tui.widgets.loss_chart import LossChart

SIZE = (140, 45)


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("trainui") / "proj").root


@pytest.fixture
def project(project_dir: Path, tmp_path: Path) -> Project:
    """A fresh copy of the module's project (the form tests write its project.toml)."""
    import shutil

    dst = tmp_path / "proj"
    shutil.copytree(project_dir, dst)
    return Project(dst)


class Recorder:
    """Stands in for `app.engine_request`: records commands, answers like the engine."""

    def __init__(self, unknown_kinds: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.unknown_kinds = unknown_kinds

    async def __call__(self, cmd: str, **args: Any) -> Any:
        from zchar_tui.client import EngineError

        self.calls.append((cmd, args))
        if cmd == "submit" and args["kind"] in self.unknown_kinds:
            raise EngineError(f"unknown job kind {args['kind']!r}; known: train, gen")
        return {"job_ids": [len(self.calls) + 10], "notes": []} if cmd == "submit" else {}

    def of(self, cmd: str) -> list[dict[str, Any]]:
        return [a for c, a in self.calls if c == cmd]


def text(widget: Any) -> str:
    """What the widget shows on screen, as plain text lines."""
    return "\n".join(strip.text.rstrip() for strip in widget.render_lines(Region(0, 0, *widget.size)))


def app_for(project: Project, snap: dict[str, Any] | None = None) -> ZcharApp:
    app = ZcharApp(project, connect=False, initial_pane="training")
    if snap is not None:
        app.state.load_snapshot(snap)
    return app


def event(app: ZcharApp, kind: str, data: dict[str, Any]) -> None:
    """Deliver an event the way the engine link does."""
    app._on_client_event(kind, data)


async def settle(pilot: Any, app: ZcharApp) -> TrainingScreen:
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, TrainingScreen)
    screen.redraw(force=True)
    await pilot.pause()
    return screen


# --- pure parts ---------------------------------------------------------------------------------------------

def _series(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    steps = np.arange(1, len(values) + 1, dtype=float)
    return steps, values, values


def test_loss_warnings_follow_the_seed_guide() -> None:
    rng = np.random.default_rng(0)
    normal = 0.05 + 0.01 * rng.random(600)
    assert loss_warnings(*_series(normal), total_steps=1000) == []
    assert "above the normal" in loss_warnings(*_series(normal + 0.2), total_steps=1000)[0]
    assert "below the normal" in loss_warnings(*_series(normal / 20), total_steps=1000)[0]
    assert any("flat" in w for w in loss_warnings(*_series(np.full(600, 0.05)), total_steps=1000))
    wild = 0.05 * (1 + 0.9 * np.sin(np.arange(600) / 5))
    assert any("volatile" in w for w in loss_warnings(*_series(wild), total_steps=1000))
    broken = normal.copy()
    broken[-3] = np.nan
    assert "NaN" in loss_warnings(*_series(broken), total_steps=1000)[0]
    # still in warm-up: nothing to say yet
    assert loss_warnings(*_series(normal[:90] + 0.5), total_steps=1000) == []


def test_vram_warning_above_ninety_percent() -> None:
    assert vram_warnings(td.gpu_reading()) == []
    assert "GPU0 VRAM is 95% full" in vram_warnings(td.gpu_reading(mem_used=77_500))[0]


# --- the pane -------------------------------------------------------------------------------------------------

async def test_no_run_and_no_gpu(project: Project) -> None:
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot, app)
        assert "No training run yet" in text(screen.query_one("#train-run", Static))
        assert "no NVIDIA GPU" in text(screen.query_one("#gpu-none", Static))
        event(app, protocol.EV_TELEMETRY, GpuReader(nvml=FakeNvml(init_error=NVMLError_LibraryNotFound)).read())
        screen = await settle(pilot, app)
        assert text(screen.query_one("#gpu-none", Static)) == "no NVIDIA GPU (no NVIDIA driver)"
        assert not screen.query(".gpu-card")


async def test_gauges_from_a_stand_in_nvml(project: Project) -> None:
    app = app_for(project, td.snapshot(project.root, with_samples=False))
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot, app)
        for util in (20, 50, 80):
            event(app, protocol.EV_TELEMETRY, td.gpu_reading(util=util))
            await pilot.pause()  # ~1 Hz in life; queued readings would replace each other
        screen = await settle(pilot, app)
        assert not screen.query_one("#gpu-none").display
        g0, g1 = (text(screen.query_one(f"#gpu-{i}", Static)) for i in (0, 1))
        assert "GPU0 H100 80GB HBM3" in g0 and "64°C" in g0 and "1980 MHz" in g0
        assert "59.6/79.6 GiB" in g0 and "engine 56.6" in g0  # driver's view with the engine's share
        assert "torch reserved 54.0 · peak 56.0 GiB" in g0  # allocator's view on the device it uses
        assert "80%" in g0 and "612/700 W" in g0
        lines = g0.splitlines()
        util_history = lines[next(i for i, line in enumerate(lines) if line.startswith("util ")) + 1]
        assert util_history.endswith(" █▂▅▇")  # history on a fixed 0–100 % scale: 93 (at attach), 20, 50, 80
        assert "GPU1" in g1 and "torch" not in g1 and "engine 0.0" in g1
        warnings = screen.query_one("#train-warnings", Static)
        assert not warnings.display
        event(app, protocol.EV_TELEMETRY, td.gpu_reading(mem_used=78_000))
        screen = await settle(pilot, app)
        assert warnings.display and "GPU0 VRAM is 96% full" in text(warnings)


async def test_settings_form_writes_project_toml(project: Project) -> None:
    app = app_for(project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        rank = app.screen.query_one("#f-train-rank", Input)
        rank.focus()
        rank.value = ""
        await pilot.press("1", "6", "enter")
        assert project.load().train.rank == 16
        assert app.settings.train.rank == 16
        before = project.toml_path.read_text()
        assert "resolution = 64" in before  # other settings kept

        alpha = app.screen.query_one("#f-train-alpha", Input)
        alpha.focus()
        alpha.value = "0"
        await pilot.press("enter")
        await pilot.pause()
        assert alpha.has_class("-invalid")
        assert project.toml_path.read_text() == before  # refused: nothing written
        assert "not saved" in text(app.screen.query_one("#form-status", Static))

        memory = app.screen.query_one("#f-train-memory", Select)
        memory.value = "low"
        await pilot.pause()
        assert project.load().train.memory == "low"
        assert project.load().train.rank == 16


async def test_keys_send_the_right_commands(project: Project) -> None:
    rec = Recorder()
    app = app_for(project)
    app.engine_request = rec  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("s")
        await pilot.pause()
        assert rec.of("submit") == [{"kind": "train", "params": {}, "priority": 0}]
        await pilot.press("n")  # nothing running: a warning, no command
        await pilot.pause()
        assert not rec.of("train_request")

        app.state.load_snapshot(td.snapshot(project.root, with_samples=False))
        app.state.notify("snapshot", {})
        await settle(pilot, app)
        await pilot.press("s")  # a run is active: not queued twice
        await pilot.press("r")
        await pilot.pause()
        assert len(rec.of("submit")) == 1
        await pilot.press("n", "w")
        await pilot.pause()
        assert rec.of("train_request") == [{"job_id": 1, "what": "sample"}, {"job_id": 1, "what": "save"}]
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        assert rec.of("cancel") == [{"job_id": 1}]

        app.state.load_snapshot(td.snapshot(project.root, state="stopped", with_samples=False))
        app.state.notify("snapshot", {})
        await settle(pilot, app)
        await pilot.click("#btn-resume")
        await pilot.pause()
        assert rec.of("submit")[-1]["params"] == {"resume": True, "run": td.RUN}


async def test_live_metrics_move_chart_and_progress(project: Project) -> None:
    app = app_for(project, td.snapshot(project.root, n=300, with_samples=False))
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot, app)
        chart = screen.query_one(LossChart)
        assert chart.drawn["loss"][0][-1] == 300 and chart.drawn["loss"][0][0] == 1
        step_text = text(screen.query_one("#train-bars"))
        assert "300/1,000" in step_text and "1.50 s/step" in step_text and "ETA 17m30s" in step_text
        for step in range(301, 351):
            event(app, protocol.EV_METRIC, {"run": td.RUN, "step": step, "epoch": 4, "loss": 0.04,
                                            "loss_smooth": 0.041, "lr": 3e-4, "grad_norm": 0.7,
                                            "sec_per_step": 1.2, "peak_mem": 21.5, "total_steps": 1000,
                                            "total_epochs": 10, "eta_s": 780.0, "t": 0})
        await pilot.pause(1.3)  # the pane's own timer redraws (chart at most once a second)
        assert chart.drawn["loss"][0][-1] == 350
        bars = text(screen.query_one("#train-bars"))
        assert "35% 350/1,000" in bars and "ETA 13m00s" in bars  # the engine's ETA
        assert "40% 4/10" in bars
        assert "lr×d 0.0003  grad norm 0.7  peak mem 21.5 GiB" in bars

        event(app, protocol.EV_REWIND, {"run": td.RUN, "step": 320})  # resumed from a checkpoint
        screen = await settle(pilot, app)
        assert chart.drawn["loss"][0][-1] == 320


async def test_chart_keys_log_scale_and_zoom(project: Project) -> None:
    app = app_for(project, td.snapshot(project.root, n=3000, total_steps=5000, with_samples=False))
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot, app)
        chart = screen.query_one(LossChart)
        linear = chart.drawn["loss"][1].copy()
        await pilot.press("l")
        assert chart.log_scale and np.all(chart.drawn["loss"][1] < 0) and linear.min() > 0
        await pilot.press("z")  # 3000 steps: the 10k window would show everything, so 1k comes first
        assert chart.window == 1000 and chart.drawn["loss"][0][0] > 2000
        await pilot.press("z", "z")
        assert chart.window is None and chart.drawn["loss"][0][0] == 1


async def test_loading_stage_shows_until_the_first_step(project: Project) -> None:
    app = app_for(project, td.snapshot(project.root, n=0, with_samples=False))
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot, app)
        bars = screen.query_one("#train-bars")
        assert "load" not in text(bars)
        event(app, protocol.EV_LOADING, {"job_id": 1, "stage": "download", "done": 5, "total": 20,
                                         "message": "transformer 5/20 GB"})
        screen = await settle(pilot, app)
        assert "load" in text(bars) and "25% download: transformer 5/20 GB" in text(bars)
        event(app, protocol.EV_METRIC, {"run": td.RUN, "step": 1, "loss": 0.1, "total_steps": 1000})
        screen = await settle(pilot, app)
        assert "download" not in text(bars) and "1/1,000" in text(bars)


async def test_contact_sheet_thumbnails_and_preview(project: Project) -> None:
    app = app_for(project, td.snapshot(project.root, n=300))
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot, app)
        sheet = screen.query_one(ContactSheet)
        assert sheet.grid.steps == [100, 200, 300] and len(sheet.grid.rows) == 4
        for _ in range(100):
            if sheet.loading_done:
                break
            await pilot.pause(0.05)
        assert sheet.loading_done and len(sheet.query(".thumb")) == 12

        event(app, protocol.EV_SAMPLE, td.samples(project.root, [400], prompts=1)[0])  # a new column arrives
        screen = await settle(pilot, app)
        assert sheet.grid.steps == [100, 200, 300, 400]
        assert len(sheet.query(SampleCell)) == 16  # 4 prompts × 4 steps, 3 of them still empty

        await pilot.press("v")  # the newest sample: prompt 1 at step 400
        assert isinstance(app.focused, SampleCell) and app.focused.sample["step"] == 400
        await pilot.press("down")  # prompts 2–4 have nothing at step 400 yet: focus stays
        assert app.focused.sample["step"] == 400
        await pilot.press("left", "left", "down")
        assert (app.focused.sample["step"], app.focused.sample["prompt_index"]) == (200, 1)
        await pilot.press("up")
        await pilot.press("enter")
        await pilot.pause()
        preview = app.screen
        assert isinstance(preview, SamplePreview) and preview.sample["step"] == 200
        await pilot.press("right")
        assert preview.sample["step"] == 300
        await pilot.press("right")  # prompt 1 has a sample at 400
        assert preview.sample["step"] == 400
        await pilot.press("down")  # prompt 2 at step 400 is missing: stays
        assert preview.sample["prompt_index"] == 0
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, TrainingScreen)


async def test_checkpoints_pin_and_compare(project: Project) -> None:
    rec = Recorder()
    app = app_for(project, td.snapshot(project.root, n=300, with_samples=False))
    app.engine_request = rec  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot, app)
        await pilot.press("t")
        table = screen.query_one(CheckpointList)
        assert table.row_count == 3 and table.highlighted_step() == 300
        await pilot.press("p")
        await pilot.pause()
        assert rec.of("pin") == [{"run": td.RUN, "step": 300, "pinned": True}]
        event(app, protocol.EV_CHECKPOINT, {**app.state.history.checkpoints[300], "pinned": True})
        screen = await settle(pilot, app)
        assert "pinned" in str(table.get_row("300")[4])

        table.focus()
        await pilot.press("space", "up", "space", "c")
        await pilot.pause()
        grid = rec.of("submit")[-1]
        assert grid["kind"] == "grid"
        assert grid["params"] == {
            "prompt": "mika, portrait photo, looking at the camera, plain white background, soft studio light",
            "seed": 42, "strengths": [0.6, 0.8, 1.0],
            "loras": [f"loras/checkpoints/{td.RUN}/step-000200/Mika-step000200.safetensors",
                      f"loras/checkpoints/{td.RUN}/step-000300/Mika-step000300.safetensors"]}


async def test_compare_one_checkpoint_without_a_grid_kind(project: Project) -> None:
    rec = Recorder(unknown_kinds=("grid",))
    app = app_for(project, td.snapshot(project.root, n=300, with_samples=False))
    app.engine_request = rec  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("c")
        await pilot.pause(0.2)
        gens = [a["params"] for a in rec.of("submit") if a["kind"] == "gen"]
        assert [g["loras"][0]["strength"] for g in gens] == [0.6, 0.8, 1.0]
        assert {g["seed"] for g in gens} == {42} and all(g["seed_mode"] == "fixed" for g in gens)
