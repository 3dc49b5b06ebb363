"""Shared fixtures: isolated environment, tiny projects, engines that are always stopped."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.project import Project, init_project
from zchar_tui.client import SyncClient, engine_pid, engine_running, stop_engine

TRIGGER = "mika"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's config, reaches the network, or leaves an engine behind for long."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ZCHAR_ENGINE_IDLE_EXIT", "120")
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")


def draw_character(path: Path, i: int, size: int = 128) -> None:
    """A small, distinct drawing per index (stands in for a photo of the character)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), ((40 * i) % 255, (90 + 25 * i) % 255, (160 + 13 * i) % 255))
    d = ImageDraw.Draw(img)
    c = size // 2 + (i % 3 - 1) * size // 8
    r = size // 5
    d.ellipse((c - r, size // 4 - r // 2, c + r, size // 4 + r + r // 2), fill=(240, 200, 170))
    d.rectangle((c - r, size // 2, c + r, size - 4), fill=((70 * i) % 255, 60, 120))
    img.save(path)


def make_project(root: Path, images: int = 6, size: int = 128, **train: object) -> Project:
    """A tiny-model project with `images` drawings and captions; training sized for a CPU."""
    project = init_project(root, TRIGGER, name="Mika", base="tiny")
    for i in range(images):
        draw_character(project.dataset_dir / f"img_{i:02d}.png", i, size)
        (project.dataset_dir / f"img_{i:02d}.txt").write_text(f"{TRIGGER}, a drawn character, pose {i}\n")
    changes = {"train.resolution": 64, "train.rank": 4, "train.alpha": 2, "train.epochs": 1,
               "train.checkpoint_every": 0, "validation.every_epochs": 0, "validation.size": 64,
               "model.training_adapter": "", "generate.width": 64, "generate.height": 64, "generate.steps": 2}
    changes.update({f"train.{k}": v for k, v in train.items()})
    project.update(changes)
    return project


@pytest.fixture
def tiny_project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "proj")


def kill_engine(project: Project) -> None:
    """Stop the project's engine politely, or for good."""
    try:
        stop_engine(project, timeout=30)
    except Exception:
        pass
    pid = engine_pid(project)
    if engine_running(project) and pid:
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while engine_running(project) and time.monotonic() < deadline:
            time.sleep(0.05)


def wait_job(client: SyncClient, job_id: int, *states: str, timeout: float = 90) -> dict:
    """Poll the engine until the job reaches one of `states`; fail with its last state and message."""
    deadline = time.monotonic() + timeout
    job: dict = {}
    while time.monotonic() < deadline:
        job = next(j for j in client.request("jobs") if j["id"] == job_id)
        if job["state"] in states:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} stayed {job.get('state')} ({job.get('error') or job.get('message')}), "
                         f"expected {states}")


@pytest.fixture
def engine_of() -> Iterator[callable]:
    """`engine_of(project)` → a connected SyncClient; every engine started this way is stopped at teardown."""
    started: list[tuple[Project, SyncClient]] = []

    def start(project: Project) -> SyncClient:
        client = SyncClient(project)
        started.append((project, client))
        return client

    yield start
    for project, client in started:
        client.close()
        kill_engine(project)


@pytest.fixture
def engine(tiny_project: Project, engine_of: callable) -> SyncClient:
    return engine_of(tiny_project)
