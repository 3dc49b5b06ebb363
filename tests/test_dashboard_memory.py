"""The dashboard's memory stays bounded while it is used (found by bench/ui.py: GC pauses grew with every pane
switch)."""

from __future__ import annotations

import gc
from pathlib import Path

from textual.widgets._footer import FooterKey

from tests.conftest import make_project
from zchar_tui.app import ZcharApp


def live_footer_keys() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, FooterKey))


async def test_pane_switches_do_not_keep_old_footer_keys(tmp_path: Path) -> None:
    app = ZcharApp(make_project(tmp_path / "proj", images=1), connect=False, initial_pane="queue")
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("3", "4")  # both panes mounted
        await pilot.pause()
        before = live_footer_keys()
        for _ in range(5):
            await pilot.press("3", "4")
        await pilot.pause()
        after = live_footer_keys()
        assert after - before < 5, f"{after - before} footer keys kept after 10 pane switches"


async def test_the_dashboard_collects_young_objects_less_often(tmp_path: Path) -> None:
    """With the default threshold (700) a 200 events/s stream caused a full collection about every second, 0.1-0.3 s
    each (bench/ui.py); the running dashboard raises it."""
    from zchar_tui.app import GC_YOUNG_THRESHOLD

    saved = gc.get_threshold()
    gc.set_threshold(700, *saved[1:])
    try:
        app = ZcharApp(make_project(tmp_path / "proj", images=1), connect=False, initial_pane="queue")
        async with app.run_test(size=(100, 30)):
            assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD > 700
    finally:
        gc.set_threshold(*saved)
