"""kill -9 of the engine during a training run — mid-checkpoint, mid-sample, mid-step while stopping — and what a
restarted engine makes of it: it resumes from the last complete checkpoint (the losses equal an uninterrupted
run's, step for step), no half-written checkpoint, LoRA or sample is ever picked up, the loss history up to that
checkpoint stays in state.db, and neither the job nor the run is left 'running' or 'stopping'.

Each kill happens at a fault point of tests/faults/harness.py: the engine stops dead there (a test-side patch of the
writer or of the loss), so the window is exact instead of a race, and is then SIGKILLed.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from PIL import Image

from engine.jobs import JobParamError, resolve_lora
from engine.project import Project
from engine.train_checkpoint import checkpoints_root, complete_checkpoints
from tests.conftest import make_project
from tests.faults.engine_kill import PausingEngine, losses, stored
from tests.train_helpers import train
from zchar_tui.widgets.lora_stack import lora_choices

pytest.importorskip("torch")

RUN = "r1"


def setup_project(root: Path) -> Project:
    project = make_project(root, epochs=3, checkpoint_every=2)  # 6 steps per epoch
    project.update({"validation.every_epochs": 1})  # 4 prompts × 1 seed after each epoch
    return project


@pytest.mark.slow
def test_kills_during_a_training_run_lose_nothing_before_the_last_checkpoint(tmp_path: Path, engine_of) -> None:
    project = setup_project(tmp_path / "p")
    run_dir = checkpoints_root(project) / RUN

    # 1. killed while the checkpoint of step 4 is half written
    with PausingEngine(project, "checkpoint:4", tmp_path / "paused") as eng:
        job_id = eng.client.request("submit", kind="train", params={"run": RUN})["job_ids"][0]
        assert "optimizer.safetensors half written" in eng.wait_paused()
    assert [s for s, _ in complete_checkpoints(run_dir)] == [2]
    assert [p.name[:17] for p in run_dir.iterdir() if p.name.startswith(".")] == [".tmp-step-000004-"]
    # the torn checkpoint is offered nowhere
    assert not any("step000004" in path for _, path in lora_choices(project))
    with pytest.raises(JobParamError, match="unknown LoRA"):
        resolve_lora(project, "Mika-step000004")
    db = stored(project)
    assert db["jobs"][job_id]["state"] == "running" and db["runs"][RUN]["state"] == "running"
    assert db["metrics"][RUN]["step"] == [1, 2, 3, 4]
    assert [c["step"] for c in db["checkpoints"][RUN]] == [2]
    kept = losses(db, RUN, up_to=2)

    # 2. the restart resumes from step 2; killed while the samples after epoch 1 are written
    with PausingEngine(project, "sample:6", tmp_path / "paused") as eng:
        assert "step000006-p1-s42.png half written" in eng.wait_paused()
        job = next(j for j in eng.client.request("jobs") if j["id"] == job_id)
        assert job["state"] == "running" and job["attempts"] == 1
    db = stored(project)
    assert losses(db, RUN, up_to=2) == kept
    assert "resumed run r1 from step 2" in db["log"]
    assert db["metrics"][RUN]["step"] == list(range(1, 7))
    assert [s for s, _ in complete_checkpoints(run_dir)] == [2, 4, 6]
    assert db["samples"][RUN] == []  # samples are recorded once all of a round are written
    kept = losses(db, RUN, up_to=6)

    # 3. killed in the middle of a step, after a stop was asked for (the job is 'stopping')
    seed = random.randrange(10**6)
    k = random.Random(seed).randint(2, 5)  # the step of this process at which it dies
    with PausingEngine(project, f"step:{k}", tmp_path / "paused") as eng:
        eng.wait_paused()
        stopping = eng.client.request("cancel", job_id=job_id)
        assert stopping["state"] == "stopping", stopping
    last = 6 + k - 1  # steps fully done before the kill
    expected_ckpt = last - last % 2
    db = stored(project)
    assert losses(db, RUN, up_to=6) == kept, f"seed {seed}"
    assert [s for s, _ in complete_checkpoints(run_dir)][-1] == expected_ckpt, f"seed {seed}"
    assert db["jobs"][job_id]["state"] == "stopping"

    # 4. a new engine completes the stop and says the run was interrupted (resuming it is tests/test_train_engine.py)
    client = engine_of(project)
    job = next(j for j in client.request("jobs") if j["id"] == job_id)
    assert job["state"] == "stopped" and job["attempts"] == 2, job
    history = client.request("run_history", run=RUN)
    assert history["run"]["state"] == "stopped", history["run"]
    assert history["run"]["message"].startswith(f"interrupted at step {last} when the engine stopped; resume it")
    assert history["metrics"]["step"] == list(range(1, last + 1))

    # every loss, before and after each kill, is the loss of the same run never interrupted
    reference = train(setup_project(tmp_path / "ref"), run=RUN, max_steps=last)
    assert reference.error is None, reference.error
    assert losses(stored(project), RUN) == reference.losses, f"seed {seed}"
    # nothing torn is recorded or offered: every recorded checkpoint and sample is whole
    db = stored(project)
    assert [c["step"] for c in db["checkpoints"][RUN]] == [s for s, _ in complete_checkpoints(run_dir)]
    for sample in db["samples"][RUN]:
        with Image.open(project.root / sample["path"]) as im:
            im.verify()
    assert not any(".tmp" in path for _, path in lora_choices(project))
