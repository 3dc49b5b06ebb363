"""Stop, checkpoint and resume: the resumed run's losses equal the uninterrupted run's, step for step."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")

from engine.jobs import JobParamError, validate_train
from engine.project import Project
from tests.conftest import make_project
from tests.train_helpers import stop_at, train

SETTINGS = {"epochs": 4, "batch_size": 2, "grad_accum": 2, "flip": True, "caption_dropout": 0.3,
            "checkpoint_every": 0}  # 6 images → 3 batches → 2 steps per epoch, 8 steps


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("resume") / "proj", **SETTINGS)


@pytest.fixture(scope="module")
def uninterrupted(project: Project) -> dict[int, float]:
    rec = train(project, run="whole")
    assert rec.error is None, rec.error
    assert len(rec.losses) == 8
    return rec.losses


def test_stop_then_resume_gives_identical_losses(project: Project, uninterrupted: dict[int, float]) -> None:
    first = train(project, hook=stop_at(3), run="split")
    assert first.result and first.result["stopped"] and first.result["step"] == 3
    assert "resume with" in first.result["message"]
    assert first.of("run")[-1]["state"] == "stopped"
    assert [c["step"] for c in first.of("train.checkpoint")] == [3]
    assert not (project.loras_dir / "checkpoints" / "split" / "step-000003" / "pinned").exists()

    second = train(project, run="split", resume=True)
    assert second.error is None, second.error
    assert second.of("train.rewind") == [{"run": "split", "step": 3}]
    assert sorted(second.losses) == list(range(4, 9))
    assert {**first.losses, **second.losses} == uninterrupted  # exactly equal, step for step
    assert not second.logs("warning")[1:]  # nothing changed, so no change warning (only the Turbo note)


def test_crash_rerun_resumes_from_the_last_complete_checkpoint(project: Project,
                                                                uninterrupted: dict[int, float]) -> None:
    first = train(project, hook=stop_at(5), run="crash")
    run_dir = project.loras_dir / "checkpoints" / "crash"
    # A checkpoint cut short by a crash (a truncated file) and a leftover temp folder must be ignored.
    torn = run_dir / "step-000006"
    shutil.copytree(run_dir / "step-000005", torn)
    state = json.loads((torn / "state.json").read_text())
    state["step"] = 6
    (torn / "state.json").write_text(json.dumps(state))
    opt = torn / "optimizer.safetensors"
    opt.write_bytes(opt.read_bytes()[:100])
    (run_dir / ".tmp-step-000007-x").mkdir()

    again = train(project, run="crash", attempts=1)  # the engine re-queued the job after a crash
    assert again.error is None, again.error
    assert again.of("train.rewind") == [{"run": "crash", "step": 5}]
    assert {**{s: v for s, v in first.losses.items() if s <= 5}, **again.losses} == uninterrupted
    assert not (run_dir / ".tmp-step-000007-x").exists()


def test_resume_with_changed_settings_warns_or_refuses(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", **SETTINGS)
    assert train(project, hook=stop_at(1), run="r").result["stopped"]
    assert "run r already has checkpoints (last at step 1)" in str(train(project, run="r").error)
    assert validate_train(project, project.load(), {"resume": True})[0][0]["run"] == "r"  # the latest run
    project.update({"train.caption_dropout": 0.1})
    (project.dataset_dir / "img_00.txt").write_text("mika, a new caption")
    rec = train(project, hook=stop_at(2), run="r", resume=True)
    warning = next(m for m in rec.logs("warning") if "changes since step 1" in m)
    assert "train.caption_dropout: 0.3 → 0.1" in warning and "the dataset" in warning

    project.update({"train.rank": 8})
    refused = train(project, run="r", resume=True)
    assert "cannot resume run r: train.rank changed" in str(refused.error) and "was 4" in str(refused.error)


def test_resume_without_checkpoint_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    rec = train(project, run=None, resume=True)
    assert "nothing to resume" in str(rec.error)
    with pytest.raises(JobParamError, match="nothing to resume"):
        validate_train(project, project.load(), {"resume": True})
