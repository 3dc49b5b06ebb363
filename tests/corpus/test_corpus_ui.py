"""The bad-input corpus in the dashboard: hostile file names, captions, prompts and messages show as plain text —
never as markup (`[red]`, `[@click=…]`, a stray `[/]` that raised MarkupError) or as terminal escape sequences."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from PIL import Image

from engine import pngmeta
from tests.conftest import kill_engine, make_project
from tests.corpus.make_corpus import Corpus, broken_images, build
from tests.faults.test_terminal_hangup import read_until, start_dashboard, wait_exit
from zchar_tui.app import EngineEvent, ZcharApp
from zchar_tui.config import UserConfig
from zchar_tui.screens.dataset import DatasetScreen
from zchar_tui.screens.image_preview import ImagePreviewScreen

HOSTILE_PROMPT = "mika [/] \x1b]0;pwned\x07 [age], [@click=app.quit]click"
HOSTILE_ERROR = "LoRA wrong[red]shape.safetensors: [/b] is not a Z-Image LoRA"


def plain(widget: Any) -> str:
    visual = widget.render()
    return getattr(visual, "plain", str(visual))


def hostile_state(corpus: Corpus) -> dict[str, Any]:
    """LoRA files with hostile names, a job and a result whose prompt and error are hostile."""
    root = corpus.project.root
    for name in ("[red]lora.safetensors", "esc\x1b[31mlora.safetensors"):
        (corpus.project.loras_dir / name).write_bytes(b"only the name matters here")
    rel = "outputs/2026-01-01/00001-7.png"
    meta = {"prompt": HOSTILE_PROMPT, "seed": 7, "width": 64, "height": 64, "steps": 2, "guidance": 0.0,
            "loras": [], "references": [], "base_model": "tiny"}
    (root / rel).parent.mkdir(parents=True)
    pngmeta.write_png(root / rel, Image.new("RGB", (64, 64), (90, 20, 20)), meta)
    job = {"id": 1, "kind": "gen", "state": "failed", "position": 1.0, "priority": 0,
           "params": {**meta, "reference_strength": 0.6}, "created": 0.0, "started": None, "finished": None,
           "progress": 0.0, "message": "", "error": HOSTILE_ERROR, "result": {}, "attempts": 0}
    return {"engine": {"state": "idle", "pid": 1}, "jobs": [job], "runs": [], "log": [],
            "outputs": [{"job_id": 1, "index": 0, "seed": 7, "path": rel, "params": meta}],
            "telemetry": {"available": False, "reason": "no NVIDIA driver", "gpus": []}}


async def test_every_pane_shows_hostile_text_as_text(tmp_path: Path) -> None:
    corpus = build(tmp_path / "corpus")
    app = ZcharApp(corpus.project, config=UserConfig(image_protocol="halfcell"), connect=False)
    app.state.load_snapshot(hostile_state(corpus))
    async with app.run_test(size=(150, 45)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DatasetScreen) and screen.report is not None
        names = [it.name for it in screen.image_list.items]
        screen.image_list.move_to(names.index("x[@click=app.quit]markup.png"))
        await pilot.pause()
        detail = plain(screen.query_one("#dataset-detail"))
        assert "x[@click=app.quit]markup.png" in detail and "truncated or corrupt image data" in detail
        screen.image_list.move_to(names.index("esc\x1b]0;pwned\x07.png"))
        await pilot.pause()
        assert "esc\\x1b]0;pwned\\x07.png" in plain(screen.query_one("#dataset-detail"))
        await pilot.press("enter")  # the preview of an unreadable picture names it in its title
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, ImagePreviewScreen)
        title = plain(app.screen.query_one("#preview-title"))
        assert title.startswith("esc\\x1b]0;pwned\\x07.png: truncated or corrupt image data"), title
        await pilot.press("escape")
        # an engine message with a stray closing tag becomes a notification, not a crash
        app.post_message(EngineEvent("log", {"level": "warning", "message": f"skipped {HOSTILE_ERROR}",
                                             "job_id": None}))
        await pilot.pause()
        assert any(HOSTILE_ERROR in n.message for n in app._notifications)
        await pilot.press("4")  # queue: the prompt and the error in the table, the result's details
        await pilot.pause(0.3)
        table = app.screen.query_one("#jobs-table")
        row = [str(c) for c in table.get_row("1")]
        assert any("\\[/]" in c for c in row) and any("wrong\\[red]shape" in c for c in row)
        details = plain(app.screen.query_one("#gallery-details"))
        assert "mika [/] \\x1b]0;pwned\\x07 [age], [@click=app.quit]click" in details
        await pilot.press("3")  # prompts: the LoRA list shows the file names as they are
        await pilot.pause(0.3)
        from textual.widgets import Select

        options = [str(o[0]) for o in app.screen.query_one("#lora-pick", Select)._options]
        assert "\\[red]lora" in options and "esc\\x1b[31mlora" in options
    assert app.return_code in (None, 0)


def test_terminal_output_never_carries_an_escape_sequence_from_a_file_name(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", images=1)
    name, data, _ = next(case for case in broken_images() if case[0].startswith("esc"))
    (project.dataset_dir / name).write_bytes(data)
    pid, fd = start_dashboard(project)
    try:
        seen = read_until(fd, b"pwned")  # the dataset list shows the name: escaped, or (the bug) raw
        if b".png" not in seen[seen.index(b"pwned"):]:
            seen += read_until(fd, b".png", timeout=5)
        assert b"esc\x1b]0;pwned" not in seen and b"esc\\x1b]0;pwned\\x07.png" in seen
    finally:
        os.kill(pid, signal.SIGKILL)
        wait_exit(pid, 10)
        os.close(fd)
        kill_engine(project)
