"""The Dataset pane driven by keys (Textual Pilot, no engine): move, preview, captions, exclude, trash/undo,
filters, import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from engine.project import Project
from tests.conftest import make_project
from tests.dataset_images import landscape
from zchar_tui.app import ZcharApp
from zchar_tui.screens.dataset import DatasetScreen
from zchar_tui.screens.dialogs import ConfirmScreen
from zchar_tui.screens.image_preview import ImagePreviewScreen
from zchar_tui.screens.import_dialog import ImportScreen
from zchar_tui.screens.text_report import ReportScreen

SIZE = (120, 40)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """6 drawings with captions, a copy of the first (a near-duplicate), one caption without the trigger."""
    p = make_project(tmp_path / "proj", images=6)
    shutil.copy(p.dataset_dir / "img_00.png", p.dataset_dir / "img_00_copy.png")
    (p.dataset_dir / "img_00_copy.txt").write_text("mika, the same picture again")
    (p.dataset_dir / "img_02.txt").write_text("a drawn character, pose 2")
    return p


async def settle(pilot: Pilot) -> DatasetScreen:
    """Wait for scans and imports to finish and the screen to catch up."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    screen = next(s for s in pilot.app.screen_stack if isinstance(s, DatasetScreen))
    assert screen.report is not None
    return screen


def names(screen: DatasetScreen) -> list[str]:
    return [it.name for it in screen.image_list.items]


def item(screen: DatasetScreen, name: str):  # type: ignore[no-untyped-def]
    assert screen.report is not None
    return next(it for it in screen.report.items if it.name == name)


async def test_moving_through_the_list(project: Project) -> None:
    async with ZcharApp(project, connect=False).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        assert names(screen) == ["img_00.png", "img_00_copy.png", "img_01.png", "img_02.png", "img_03.png",
                                 "img_04.png", "img_05.png"]
        await pilot.press("j", "j", "down")
        assert screen.image_list.current.name == "img_02.png"
        await pilot.press("k")
        assert screen.image_list.current.name == "img_01.png"
        await pilot.press("G")
        assert screen.image_list.current.name == "img_05.png"
        await pilot.press("g")
        assert screen.image_list.cursor == 0
        await pilot.press("pagedown")
        assert screen.image_list.cursor == screen.image_list.page
        detail = str(screen.query_one("#dataset-detail").render())
        assert screen.image_list.current.name in detail
        assert "near-duplicate" in str(screen.query_one("#dataset-summary").render())


async def test_only_visible_rows_are_mounted(tmp_path: Path) -> None:
    p = make_project(tmp_path / "many", images=30, size=64)
    async with ZcharApp(p, connect=False).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        rows = screen.image_list.query("DatasetRow")
        assert len(screen.image_list.items) == 30
        assert 0 < len(rows) <= screen.image_list.page
        await pilot.press("G")
        assert rows.last().index == 29


async def test_preview_opens_steps_and_closes(project: Project) -> None:
    async with ZcharApp(project, connect=False).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(pilot.app.screen, ImagePreviewScreen)
        await pilot.press("right", "right")
        await pilot.app.workers.wait_for_complete()
        assert pilot.app.screen.index == 2
        assert pilot.app.screen.query_one("#preview-image").image is not None
        await pilot.press("escape")
        await pilot.pause()
        assert pilot.app.screen is screen
        assert screen.image_list.cursor == 2  # the list follows the preview


async def test_inline_caption_edit_fixes_the_flag(project: Project) -> None:
    async with ZcharApp(project, connect=False).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        assert any(f.code == "no trigger" for f in item(screen, "img_02.png").flags)
        await pilot.press("j", "j", "j", "e")
        editor = screen.query_one("#caption-editor", Input)
        assert editor.display and editor.has_focus and editor.value == "a drawn character, pose 2"
        await pilot.press("home", *"mika, ", "enter")
        screen = await settle(pilot)
        assert (project.dataset_dir / "img_02.txt").read_text() == "mika, a drawn character, pose 2\n"
        assert not any(f.code == "no trigger" for f in item(screen, "img_02.png").flags)
        assert not editor.display and screen.image_list.has_focus


async def test_escape_cancels_a_caption_edit(project: Project) -> None:
    async with ZcharApp(project, connect=False).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        await pilot.press("e", "z", "z", "escape")
        await settle(pilot)
        assert (project.dataset_dir / "img_00.txt").read_text() == "mika, a drawn character, pose 0\n"
        assert not screen.query_one("#caption-editor").display


async def test_external_editor(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[Path] = []

    def fake_editor(app: object, path: Path) -> str:
        opened.append(path)
        path.write_text("mika, edited elsewhere\n")
        return ""

    monkeypatch.setattr("zchar_tui.screens.dataset.edit_file", fake_editor)
    (project.dataset_dir / "img_01.txt").unlink()
    async with ZcharApp(project, connect=False).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        await pilot.press("j", "j", "E")
        screen = await settle(pilot)
        assert opened == [project.dataset_dir / "img_01.txt"]
        assert item(screen, "img_01.png").caption.text == "mika, edited elsewhere"


async def test_external_editor_unavailable_is_a_message(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    messages: list[str] = []
    monkeypatch.setattr(DatasetScreen, "notify", lambda self, message, **kw: messages.append(message))
    async with ZcharApp(project, connect=False).run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("E")  # a headless app cannot suspend: a notification, not a crash
        await settle(pilot)
        assert any("cannot hand over to an editor" in m for m in messages)


async def test_exclude_toggles_project_toml_and_clears_the_duplicate(project: Project) -> None:
    async with ZcharApp(project, connect=False).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        assert screen.report.duplicate_groups == [["img_00.png", "img_00_copy.png"]]
        await pilot.press("j", "x")
        screen = await settle(pilot)
        assert project.load().excluded == ["img_00_copy.png"]
        assert screen.report.duplicate_groups == [] and screen.report.excluded == 1
        assert item(screen, "img_00_copy.png").excluded
        await pilot.press("x")
        screen = await settle(pilot)
        assert project.load().excluded == []


async def test_trash_asks_first_and_undo_restores(project: Project) -> None:
    image = project.dataset_dir / "img_00_copy.png"
    async with ZcharApp(project, connect=False).run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("j", "d")
        assert isinstance(pilot.app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        assert image.is_file()
        await pilot.press("d", "y")
        screen = await settle(pilot)
        assert not image.exists() and not image.with_suffix(".txt").exists()
        assert list((project.state_dir / "trash").rglob("img_00_copy.png"))
        assert "img_00_copy.png" not in names(screen)
        await pilot.press("u")
        screen = await settle(pilot)
        assert image.is_file() and image.with_suffix(".txt").read_text() == "mika, the same picture again"
        assert screen.image_list.current.name == "img_00_copy.png"


async def test_filters(project: Project) -> None:
    async with ZcharApp(project, connect=False).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        await pilot.press("slash", *"img_03")
        assert names(screen) == ["img_03.png"]
        await pilot.press("escape")
        assert len(names(screen)) == 7
        await pilot.press("slash", *":dup", "enter")
        assert names(screen) == ["img_00.png", "img_00_copy.png"]
        assert screen.image_list.has_focus
        await pilot.press("escape")
        await pilot.press("f")  # all → flagged
        assert set(names(screen)) == {"img_00.png", "img_00_copy.png", "img_02.png"}
        await pilot.press("f", "f")  # → duplicates → excluded
        assert names(screen) == [] and screen.query_one("#dataset-empty").display
        await pilot.press("f")
        assert len(names(screen)) == 7


async def test_import_dialog_runs_prepare(project: Project, tmp_path: Path) -> None:
    raw = tmp_path / "raw photos"
    raw.mkdir()
    landscape(1, 200).save(raw / "new one.png")
    landscape(2, 200).save(raw / "new two.jpg")
    (raw / "broken.jpg").write_bytes(b"nope")
    async with ZcharApp(project, connect=False).run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("i")
        assert isinstance(pilot.app.screen, ImportScreen)
        pilot.app.screen.query_one("#import-raw", Input).value = str(tmp_path / "missing")
        await pilot.press("enter")
        assert isinstance(pilot.app.screen, ImportScreen)  # refused in place, with the reason shown
        assert "not a folder" in str(pilot.app.screen.query_one("#import-error").render())
        pilot.app.screen.query_one("#import-raw", Input).value = str(raw)
        pilot.app.screen.query_one("#import-size", Input).value = "128"
        await pilot.press("enter")
        screen = await settle(pilot)
        assert isinstance(pilot.app.screen, ReportScreen)
        summary = str(pilot.app.screen.query_one("#report-body").render())
        assert "written 2 image(s)" in summary and "broken.jpg: not an image" in summary
        await pilot.press("escape")
        assert {"new one.jpg", "new two.jpg"} <= set(names(screen))
        assert (project.dataset_dir / "new one.txt").read_text() == "mika\n"


async def test_empty_dataset_explains_what_to_do(tmp_path: Path) -> None:
    p = make_project(tmp_path / "empty", images=0)
    async with ZcharApp(p, connect=False).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        text = str(screen.query_one("#dataset-empty").render())
        assert "Press i to import" in text
        await pilot.press("j", "enter", "e", "x", "d")  # nothing selected: no crash, no dialog
        assert pilot.app.screen is screen


def test_the_ui_side_never_imports_torch(project: Project) -> None:
    code = ("import sys; import zchar_tui.app, zchar_tui.screens.dataset; from engine import dataset, prepare; "
            "from engine.project import Project; p = Project(sys.argv[1]); dataset.scan(p, p.load(), thumbs=True); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code, str(project.root)], check=True, cwd=Path(__file__).parent.parent)
