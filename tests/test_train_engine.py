"""A training job through a real engine: events into the store, save/sample requests, stop and retry-resume."""

from __future__ import annotations

import time

import pytest

from engine.project import Project
from tests.conftest import wait_job
from zchar_tui.client import SyncClient

pytest.importorskip("torch")


def wait_step(client: SyncClient, step: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metric = client.request("status").get("metric") or {}
        if (metric.get("step") or 0) >= step:
            return
        time.sleep(0.02)
    raise AssertionError(f"training did not reach step {step}")


@pytest.mark.slow
def test_training_job_in_the_engine(tiny_project: Project, engine: SyncClient) -> None:
    tiny_project.update({"train.epochs": 100, "train.checkpoint_every": 0, "validation.prompts": ["a portrait"]})
    job_id = engine.request("submit", kind="train", params={"run": "e1"})["job_ids"][0]
    wait_step(engine, 3)
    engine.request("train_request", job_id=job_id, what="save")
    engine.request("train_request", job_id=job_id, what="sample")
    wait_step(engine, 8)
    engine.request("cancel", job_id=job_id)
    stopped = wait_job(engine, job_id, "stopped", "failed", "done")
    assert stopped["state"] == "stopped", stopped
    history = engine.request("run_history", run="e1")
    assert history["run"]["state"] == "stopped"
    last = history["metrics"]["step"][-1]
    assert history["metrics"]["step"] == list(range(1, last + 1))
    ckpt_steps = [c["step"] for c in history["checkpoints"]]
    assert len(ckpt_steps) == 2 and ckpt_steps[-1] == last  # the requested save, then the stop's checkpoint
    assert history["samples"] and all((tiny_project.root / s["path"]).is_file() for s in history["samples"])

    engine.request("pin", run="e1", step=ckpt_steps[0], pinned=True)
    epochs = last // 6 + 2  # 6 steps per epoch: at least one more epoch to go
    tiny_project.update({"train.epochs": epochs, "train.keep_checkpoints": 1})  # keep 1 unpinned
    retry = engine.request("retry", job_id=job_id)["job_id"]  # a retried training job resumes
    done = wait_job(engine, retry, "done", "failed", "stopped")
    assert done["state"] == "done", done
    history = engine.request("run_history", run="e1")
    assert history["metrics"]["step"] == list(range(1, 6 * epochs + 1))
    assert history["run"]["state"] == "done" and history["run"]["lora"] == "loras/Mika.safetensors"
    assert (tiny_project.root / "loras" / "Mika.safetensors").is_file()
    steps = [c["step"] for c in history["checkpoints"]]
    assert steps == [ckpt_steps[0], 6 * epochs]  # the pinned one survives pruning
    log = engine.request("attach")["log"]
    assert any(f"resumed run e1 from step {last}" in e["message"] for e in log)
