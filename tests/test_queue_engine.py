"""The generation queue through a real engine on the tiny model: a SIGKILL mid-job, cancel, a failing job."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from engine.project import Project
from tests.conftest import wait_job
from tests.gen_helpers import make_lora
from zchar_tui.cli import main as cli_main
from zchar_tui.client import SyncClient, engine_pid, engine_running


def wait_progress(client: SyncClient, job_id: int, timeout: float = 60) -> None:
    """Until the job reports a step (the engine streams events to an attached client)."""
    deadline = time.monotonic() + timeout
    for ev in client.iter_events(timeout=timeout):
        if ev["event"] == "job.progress" and ev["data"]["job_id"] == job_id:
            return
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"job {job_id} reported no progress")


def submit(client: SyncClient, **params: Any) -> int:
    return client.request("submit", kind="gen", params=params)["job_ids"][0]


def test_queue_survives_an_engine_kill(tiny_project: Project, engine_of: Callable[[Project], SyncClient],
                                      capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    client = engine_of(tiny_project)
    client.request("attach", client="test", replay=False)
    first = submit(client, prompt="mika, first", seed=1)
    second = submit(client, prompt="mika, second", seed=2, steps=150)
    wait_job(client, first, "done")
    wait_progress(client, second)
    pid = engine_pid(tiny_project)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while engine_running(tiny_project) and time.monotonic() < deadline:
        time.sleep(0.05)
    client = engine_of(tiny_project)  # a new engine re-queues the interrupted job and runs it
    assert engine_pid(tiny_project) != pid
    job = wait_job(client, second, "done", "failed")
    assert job["state"] == "done" and job["attempts"] == 1
    done = next(j for j in client.request("jobs") if j["id"] == first)
    assert done["state"] == "done" and done["attempts"] == 0
    snapshot = client.request("attach", client="test")
    paths = sorted(o["path"] for o in snapshot["outputs"])
    assert paths == sorted([done["result"]["path"], job["result"]["path"]])
    assert sorted(str(p.relative_to(tiny_project.root)) for p in tiny_project.outputs_dir.rglob("*.png")) == paths
    # the CLI waits in the foreground and prints the file; an outside reference is copied into the project first
    Image.new("RGB", (80, 50), (200, 90, 40)).save(tmp_path / "outside.png")
    capsys.readouterr()
    assert cli_main(["gen", str(tiny_project.root), "mika, from the cli", "--seed", "3", "--size", "72x64",
                     "--reference", str(tmp_path / "outside.png"), "--strength", "0.5", "--foreground"]) == 0
    out = capsys.readouterr()
    printed = Path(out.out.strip())
    assert printed.is_file() and printed.parent.parent == tiny_project.outputs_dir
    assert "rounded to 64x64" in out.out + out.err and (tiny_project.root / "references" / "outside.png").is_file()


def test_cancel_and_a_failed_job_leave_the_queue_running(tiny_project: Project,
                                                         engine_of: Callable[[Project], SyncClient]) -> None:
    lora = make_lora(tiny_project.loras_dir / "doomed.safetensors")
    client = engine_of(tiny_project)
    client.request("attach", client="test", replay=False)
    long = submit(client, prompt="mika, long", seed=1, steps=200, width=128, height=128)
    doomed = submit(client, prompt="mika", seed=1, loras=[{"path": "doomed", "strength": 0.8}])
    last = submit(client, prompt="mika, after", seed=3)
    lora.unlink()  # gone before its job runs
    wait_progress(client, long)
    client.request("cancel", job_id=long)
    job = wait_job(client, long, "cancelled", "done", "failed")
    assert job["state"] == "cancelled" and job["progress"] < 1.0
    job = wait_job(client, doomed, "done", "failed")
    assert job["state"] == "failed" and "doomed.safetensors is gone" in job["error"]
    job = wait_job(client, last, "done", "failed")
    assert job["state"] == "done"
    assert [p.name for p in tiny_project.outputs_dir.rglob("*.png")] == [f"{last:05d}-3.png"]
