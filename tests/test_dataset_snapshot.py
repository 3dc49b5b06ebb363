"""A snapshot of the Dataset pane: thumbnails, badges, the side panel's totals and verdict, one image's details.

Deterministic: generated drawings, faces switched off (OpenCV builds differ), and the scan awaited before the shot.
Update after an intended change with `pytest tests/test_dataset_snapshot.py --snapshot-update`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.pilot import Pilot

from engine import faces
from tests.conftest import make_project
from zchar_tui.app import ZcharApp


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ZcharApp:
    monkeypatch.setattr(faces, "available", lambda: False)
    monkeypatch.setattr(faces, "unavailable_reason", lambda: "face check unavailable (OpenCV not installed)")
    p = make_project(tmp_path / "proj", images=5)
    shutil.copy(p.dataset_dir / "img_00.png", p.dataset_dir / "img_00_copy.png")
    (p.dataset_dir / "img_00_copy.txt").write_text("mika, the same picture again")
    (p.dataset_dir / "img_02.txt").write_text("a drawn character, pose 2")
    (p.dataset_dir / "zz_broken.png").write_bytes(b"")
    return ZcharApp(p, connect=False)


def test_dataset_pane_snapshot(app: ZcharApp, snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def ready(pilot: Pilot) -> None:
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.press("j", "j", "j")  # img_02: the caption lacks the trigger word
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 36), run_before=ready)
