"""The dashboard shell: panes, keys, help, palette, header, themes; the UI never imports the heavy stack."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from rich.console import Console

from engine.project import Project
from zchar_tui.app import ZcharApp
from zchar_tui.screens.dialogs import ConfirmScreen, HelpScreen
from zchar_tui.widgets.status_header import StatusHeader


def header_text(app: ZcharApp) -> str:
    return str(app.screen.query_one(StatusHeader).render())


async def test_keys_switch_panes_and_tabs_follow(tiny_project: Project) -> None:
    app = ZcharApp(tiny_project, connect=False)
    async with app.run_test(size=(120, 36)) as pilot:
        assert app.current_mode == "dataset"
        for key, mode in (("2", "training"), ("3", "prompts"), ("4", "queue"), ("1", "dataset")):
            await pilot.press(key)
            await pilot.pause()
            assert app.current_mode == mode
            tabs = app.screen.query_one("PaneTabs")
            assert tabs.active == f"tab-{mode}"
        assert len(app.state._listeners) == 4  # one per pane: an event reaches each pane once


async def test_clicking_a_tab_switches_pane(tiny_project: Project) -> None:
    app = ZcharApp(tiny_project, connect=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.click("#tab-queue")
        await pilot.pause()
        assert app.current_mode == "queue"
        await pilot.click("#tab-training")
        await pilot.pause()
        assert app.current_mode == "training"


async def test_help_lists_every_key_and_closes(tiny_project: Project) -> None:
    app = ZcharApp(tiny_project, connect=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        console = Console(width=100, record=True, file=io.StringIO())
        console.print(app.screen._table())
        text = console.export_text()
        for binding in (*app.BINDINGS, *app.screen.pane.BINDINGS):
            assert (binding.tooltip or binding.description) in text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_q_quits(tiny_project: Project) -> None:
    app = ZcharApp(tiny_project, connect=False)
    async with app.run_test() as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0 and not app.is_running


async def test_a_tick_during_shutdown_is_harmless(tiny_project: Project) -> None:
    # the half-second timer could fire once more after Textual emptied the screen stack (ScreenStackError)
    app = ZcharApp(tiny_project, connect=False)
    async with app.run_test():
        pass
    assert not app.screen_stack
    app._tick()


async def test_command_palette_offers_main_actions(tiny_project: Project) -> None:
    app = ZcharApp(tiny_project, connect=False)
    async with app.run_test(size=(120, 36)):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for expected in ("Go to Training", "Go to Queue", "Help: keys", "Toggle dark/light theme", "Engine: stop"):
            assert expected in titles


async def test_theme_toggle_is_remembered(tiny_project: Project) -> None:
    app = ZcharApp(tiny_project, connect=False)
    async with app.run_test() as pilot:
        assert app.theme == "zchar-dark"
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert app.theme == "zchar-light"
    from zchar_tui.config import config_path

    assert tomllib.loads(config_path().read_text())["theme"] == "zchar-light"
    again = ZcharApp(tiny_project, connect=False)
    async with again.run_test():
        assert again.theme == "zchar-light"


async def test_header_without_engine(tiny_project: Project) -> None:
    app = ZcharApp(tiny_project, connect=False)
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.pause(0.6)
        text = header_text(app)
        assert "Mika" in text and "trigger mika" in text and "engine: not connected" in text


async def test_header_with_engine_shows_state_and_gpu_line(tiny_project: Project, engine_of) -> None:
    engine_of(tiny_project)  # started here so the fixture stops it
    app = ZcharApp(tiny_project)
    async with app.run_test(size=(140, 30)) as pilot:
        for _ in range(60):
            await pilot.pause(0.1)
            if app.state.connected and "GPU:" in header_text(app) and "engine: idle" in header_text(app):
                break
        text = header_text(app)
        assert "engine: idle" in text
        tel = app.state.telemetry
        if tel["available"]:
            assert tel["gpus"][0]["name"].replace("NVIDIA ", "") in text
        else:
            assert f"GPU: {tel['reason']}" in text and tel["reason"] != "engine not connected"


async def test_edited_project_toml_is_reloaded_and_bad_edits_are_refused(tiny_project: Project) -> None:
    app = ZcharApp(tiny_project, connect=False)
    async with app.run_test() as pilot:
        text = tiny_project.toml_path.read_text().replace('trigger = "mika"', 'trigger = "mika2"')
        tiny_project.toml_path.write_text(text)
        for _ in range(20):
            await pilot.pause(0.1)
            if app.settings.trigger == "mika2":
                break
        assert app.settings.trigger == "mika2"
        tiny_project.toml_path.write_text(text.replace('trigger = "mika2"', "trigger = [1"))
        await pilot.pause(0.8)
        assert app.settings.trigger == "mika2"  # the bad file is reported, the last good settings kept
        assert not app.update_settings({"train.rank": 0})


def test_the_ui_process_never_imports_the_heavy_stack(tiny_project: Project) -> None:
    """Run the app headless with a live engine and attach; list what got imported."""
    code = textwrap.dedent(f"""
        import asyncio, json, sys, time
        t0 = time.perf_counter()
        from engine.project import Project
        from zchar_tui.app import ZcharApp
        import zchar_tui.images
        from zchar_tui.client import stop_engine
        project = Project({str(tiny_project.root)!r})
        first_frame = []
        async def main():
            app = ZcharApp(project)
            async with app.run_test(size=(120, 36)) as pilot:
                first_frame.append(time.perf_counter() - t0)
                for key in "12341":
                    await pilot.press(key)
                for _ in range(100):
                    await pilot.pause(0.05)
                    if app.state.connected:
                        break
                connected = app.state.connected
            return connected
        connected = asyncio.run(main())
        stop_engine(project)
        heavy = sorted(m for m in ("torch", "diffusers", "transformers", "peft", "prodigyopt") if m in sys.modules)
        print(json.dumps({{"heavy": heavy, "connected": connected, "first_frame": first_frame[0]}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["connected"] is True
    assert result["heavy"] == []


@pytest.mark.parametrize("args", [["--help"], []])
def test_cli_lists_the_commands(args: list[str]) -> None:
    out = subprocess.run([sys.executable, "-m", "zchar_tui", *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for cmd in ("open", "init", "prepare", "check", "train", "gen", "queue", "engine", "doctor"):
        assert f"    {cmd} " in out.stdout


def test_cli_init_and_check_exit_codes(tmp_path: Path) -> None:
    def zchar(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "zchar_tui", *a], capture_output=True, text=True, timeout=60)

    assert zchar("init", str(tmp_path / "p"), "--trigger", "mika", "--base", "tiny").returncode == 0
    out = zchar("check", str(tmp_path / "p"))
    assert out.returncode == 1 and "too few to train" in out.stdout
    (tmp_path / "p" / "project.toml").write_text('name = "p"\ntrigger = "mika"\n[train]\nrank = "big"\n')
    out = zchar("check", str(tmp_path / "p"))
    assert out.returncode == 2 and "train.rank = 'big': expected an integer" in out.stderr
    out = zchar("check", str(tmp_path / "missing"))
    assert out.returncode == 2 and "no such folder" in out.stderr
    out = zchar("open", str(tmp_path / "p"))
    assert out.returncode == 2 and "train.rank" in out.stderr


async def test_a_long_confirmation_question_wraps_inside_its_box(tiny_project: Project) -> None:
    app = ZcharApp(tiny_project, connect=False)
    async with app.run_test(size=(100, 30)) as pilot:
        question = "Move every one of the 18 selected images to .zchar/trash/? " * 3
        app.push_screen(ConfirmScreen(question, "Trash"))
        await pilot.pause()
        box = app.screen.query_one("#confirm-box")
        label = box.query_one("Label")
        assert label.region.right <= box.region.right and label.region.height >= 3
