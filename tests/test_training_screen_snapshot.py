"""The training pane's layout, fixed by an SVG snapshot (deterministic run history, samples, GPU reading).

Update after an intended change with: pytest tests/test_training_screen_snapshot.py --snapshot-update
"""

from __future__ import annotations

from pathlib import Path

from tests import training_data as td
from tests.conftest import make_project
from zchar_tui.app import ZcharApp
from zchar_tui.widgets.contact_sheet import ContactSheet


def test_training_pane_layout(snap_compare, tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj")
    app = ZcharApp(project, connect=False, initial_pane="training")
    app.state.load_snapshot(td.snapshot(project.root, n=300, total_steps=1000))

    async def until_drawn(pilot) -> None:
        await pilot.pause()
        app.screen.redraw(force=True)
        sheet = app.screen.query_one(ContactSheet)
        for _ in range(200):
            if sheet.loading_done:
                break
            await pilot.pause(0.02)
        assert sheet.loading_done
        await pilot.pause()

    assert snap_compare(app, terminal_size=(140, 45), run_before=until_drawn)
