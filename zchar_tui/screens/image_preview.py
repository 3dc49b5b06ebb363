"""A large preview of one image (Kitty graphics or Sixel where the terminal has them, half-cells elsewhere), with
its details underneath; ←/→ step through the list it was opened from."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from zchar_tui.images import preview_class
from zchar_tui.safe_text import escape

PREVIEW_SIDE = 1024  # decoded at most this large: the terminal never shows more, and huge photos stay cheap


class ImagePreviewScreen(ModalScreen[int]):
    """Dismisses with the index shown last (so the list can follow)."""

    DEFAULT_CSS = """
    ImagePreviewScreen { align: center middle; }
    ImagePreviewScreen #preview-box { width: 95%; height: 95%; border: round $primary; background: $surface; }
    ImagePreviewScreen #preview-title { height: 1; text-style: bold; padding: 0 1; }
    ImagePreviewScreen #preview-frame { height: 1fr; align: center middle; }
    ImagePreviewScreen #preview-image { width: auto; height: 1fr; }
    ImagePreviewScreen #preview-details { height: auto; max-height: 10; padding: 0 1; }
    """

    BINDINGS = [
        Binding("escape,enter,q,space", "close", "Close", id="preview_close"),
        Binding("right,l,j,down", "step(1)", "Next", id="preview_next"),
        Binding("left,h,k,up", "step(-1)", "Previous", id="preview_prev"),
    ]

    def __init__(self, paths: Sequence[Path], index: int, describe: Callable[[int], str], protocol: str) -> None:
        super().__init__()
        self.paths = list(paths)
        self.index = index
        self.describe = describe
        self.protocol = protocol

    def compose(self) -> ComposeResult:
        with Vertical(id="preview-box"):
            yield Static("loading…", id="preview-title")
            with Center(id="preview-frame"):
                yield preview_class(self.protocol)(id="preview-image")
            yield Static(id="preview-details")

    def on_mount(self) -> None:
        self._show()

    def _show(self) -> None:
        path = self.paths[self.index]
        self.query_one("#preview-title", Static).update(f"{escape(path.name)}  ({self.index + 1}/{len(self.paths)})")
        self.query_one("#preview-details", Static).update(self.describe(self.index))
        self._load(self.index, path)

    @work(thread=True, exclusive=True, group="preview")
    def _load(self, index: int, path: Path) -> None:
        from engine.image_io import ImageReadError, open_rgb

        try:
            image = open_rgb(path, draft=PREVIEW_SIDE).image
            image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
        except ImageReadError as exc:
            self.app.call_from_thread(self._failed, index, str(exc))
            return
        self.app.call_from_thread(self._loaded, index, image)

    def _loaded(self, index: int, image: object) -> None:
        if index == self.index and self.is_attached:
            widget = self.query_one("#preview-image")
            widget.image = image  # type: ignore[attr-defined]

    def _failed(self, index: int, message: str) -> None:
        if index == self.index and self.is_attached:
            self.query_one("#preview-image").image = None  # type: ignore[attr-defined]
            self.query_one("#preview-title", Static).update(escape(f"{self.paths[index].name}: {message}"))

    def action_step(self, delta: int) -> None:
        index = max(0, min(len(self.paths) - 1, self.index + delta))
        if index != self.index:
            self.index = index
            self._show()

    def action_close(self) -> None:
        self.dismiss(self.index)
