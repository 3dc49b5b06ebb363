"""kill -9 of the engine while a generation batch writes its images (tests/test_queue_engine.py kills it while an
image is being denoised): finished images and their records are kept, a half-written PNG is never recorded, an
image written just before the kill is recorded once (not made twice), and the interrupted job is re-queued."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from engine import pngmeta
from engine.project import Project
from tests.faults.engine_kill import PausingEngine, stored, wait_job

pytest.importorskip("torch")


@pytest.mark.slow
def test_kills_while_a_batch_writes_its_images(tiny_project: Project, tmp_path: Path, engine_of) -> None:
    marker = tmp_path / "paused"
    with PausingEngine(tiny_project, "png:2", marker) as eng:  # the second image: half written
        ids = eng.client.request("submit", kind="gen", params={"prompt": "mika, park", "seed": 7, "count": 2})[
            "job_ids"]
        assert "half written" in eng.wait_paused()
    db = stored(tiny_project)
    assert [db["jobs"][i]["state"] for i in ids] == ["done", "running"]
    assert [o["job_id"] for o in db["outputs"]] == [ids[0]]
    day = (tiny_project.root / db["outputs"][0]["path"]).parent
    assert [p.name.startswith(".") and p.name.endswith(".tmp") for p in day.iterdir()].count(True) == 1

    with PausingEngine(tiny_project, "png-written:1", marker) as eng:  # the re-run writes it whole, then dies
        assert "written, not yet recorded" in eng.wait_paused()
    db = stored(tiny_project)
    assert db["jobs"][ids[1]]["state"] == "running" and db["jobs"][ids[1]]["attempts"] == 1
    assert [o["job_id"] for o in db["outputs"]] == [ids[0]]

    client = engine_of(tiny_project)
    for job_id in ids:
        assert wait_job(client, job_id, "done", "failed")["state"] == "done"
    db = stored(tiny_project)
    assert db["jobs"][ids[1]]["attempts"] == 2
    outputs = sorted(db["outputs"], key=lambda o: o["job_id"])
    assert [o["job_id"] for o in outputs] == ids  # one record per image
    pngs = sorted(p for p in day.iterdir() if p.suffix == ".png")
    assert [str(p.relative_to(tiny_project.root)) for p in pngs] == [o["path"] for o in outputs]  # no duplicate
    for out, seed in zip(outputs, (7, 8), strict=True):
        path = tiny_project.root / out["path"]
        with Image.open(path) as im:
            im.verify()
        meta = pngmeta.read_meta(path)
        assert meta is not None and meta["seed"] == seed and meta["job_id"] == out["job_id"]
    assert not any(o["path"].endswith(".tmp") for o in db["outputs"])
