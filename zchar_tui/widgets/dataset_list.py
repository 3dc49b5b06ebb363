"""A virtual list of dataset images: half-cell thumbnail, name, flag badges and caption per row.

Only the rows that fit on screen exist as widgets; moving the cursor re-targets them at other images, so a
dataset of thousands costs the same to draw as one of ten (TUI.md: mount only visible rows). Thumbnails are PIL
images made and loaded off the UI thread by the Dataset pane.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from zchar_tui.images import thumbnail_class
from zchar_tui.safe_text import escape

if TYPE_CHECKING:
    from PIL.Image import Image

    from engine.dataset import ImageHealth

ROW_HEIGHT = 6
THUMB_WIDTH = 12  # 12×6 cells of half-blocks: a square 12×12-pixel thumbnail

_BADGE = {"error": "[b $error]✖ {}[/]", "warning": "[$warning]▲ {}[/]", "info": "[$text-muted]· {}[/]"}


def badges(item: ImageHealth) -> str:
    """The flags as coloured badges (markup), worst first."""
    order = {"error": 0, "warning": 1, "info": 2}
    parts = [_BADGE[f.level].format(escape(f.code)) for f in sorted(item.flags, key=lambda f: order[f.level])]
    if item.excluded:
        parts.insert(0, "[reverse $text-muted] excluded [/]")
    return "  ".join(parts) if parts else "[$success]✔ ok[/]"


def row_markup(item: ImageHealth) -> str:
    m = item.measures
    size = f"{m.width}×{m.height} {m.format}" if m.width else ""
    caption = item.caption.text if item.caption.exists else "(no caption)"
    return (f"[b]{escape(item.name)}[/]  [$text-muted]{escape(size)}[/]\n{badges(item)}\n"
            f"[$text-muted]{escape(caption) or '(empty caption)'}[/]")


class DatasetRow(Horizontal):
    """One visible row; `show()` points it at an image."""

    DEFAULT_CSS = f"""
    DatasetRow {{ height: {ROW_HEIGHT}; padding: 0 1 0 0; }}
    DatasetRow.-selected {{ background: $primary 20%; }}
    DatasetRow.-selected .row-gutter {{ background: $accent; }}
    DatasetRow .row-gutter {{ width: 1; height: 100%; }}
    DatasetRow .row-thumb {{ width: {THUMB_WIDTH}; height: {ROW_HEIGHT}; }}
    DatasetRow .row-text {{ width: 1fr; height: {ROW_HEIGHT}; padding: 0 1; }}
    DatasetRow.-excluded .row-text {{ text-opacity: 60%; }}
    """

    class Clicked(Message):
        def __init__(self, row: DatasetRow) -> None:
            super().__init__()
            self.row = row

    def __init__(self, protocol: str) -> None:
        super().__init__()
        self.index = -1
        self._protocol = protocol
        self._thumb: Image | None = None
        self._markup = ""

    def compose(self) -> ComposeResult:
        yield Static(classes="row-gutter")
        yield thumbnail_class(self._protocol)(classes="row-thumb")
        yield Static(classes="row-text")

    def show(self, index: int, item: ImageHealth | None, thumb: Image | None, selected: bool) -> None:
        self.index = index
        self.display = item is not None
        if item is None:
            return
        self.set_class(selected, "-selected")
        self.set_class(item.excluded, "-excluded")
        markup = row_markup(item)
        if markup != self._markup:
            self._markup = markup
            self.query_one(".row-text", Static).update(markup)
        if thumb is not self._thumb:  # setting the image re-encodes it: only when it changes
            self._thumb = thumb
            self.query_one(".row-thumb").image = thumb  # type: ignore[attr-defined]

    def on_click(self, event: events.Click) -> None:
        self.post_message(self.Clicked(self))


class DatasetList(Widget, can_focus=True):
    """Cursor movement is driven by the pane's bindings (so they show in help and can be remapped)."""

    DEFAULT_CSS = "DatasetList { height: 1fr; }"

    class Highlighted(Message):
        def __init__(self, item: ImageHealth | None) -> None:
            super().__init__()
            self.item = item

    def __init__(self, protocol: str = "auto", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.protocol = protocol
        self.items: list[ImageHealth] = []
        self.thumbs: dict[str, Image] = {}
        self.cursor = 0
        self.top = 0

    @property
    def current(self) -> ImageHealth | None:
        return self.items[self.cursor] if 0 <= self.cursor < len(self.items) else None

    @property
    def page(self) -> int:
        return max(1, self.size.height // ROW_HEIGHT)

    def set_items(self, items: list[ImageHealth], keep: str | None = None) -> None:
        """Replace the list; the cursor stays on `keep` (a name) when it is still there."""
        self.items = items
        names = [it.name for it in items]
        if keep in names:
            self.cursor = names.index(keep)
        self.cursor = min(self.cursor, max(0, len(items) - 1))
        self._sync(announce=True)

    def set_thumbs(self, thumbs: dict[str, Image]) -> None:
        self.thumbs = thumbs
        self._sync()

    def move(self, delta: int) -> None:
        self.move_to(self.cursor + delta)

    def move_to(self, index: int) -> None:
        if not self.items:
            return
        index = max(0, min(len(self.items) - 1, index))
        if index != self.cursor:
            self.cursor = index
            self._sync(announce=True)

    async def on_resize(self, event: events.Resize) -> None:
        rows = list(self.query(DatasetRow))
        want = self.page
        if len(rows) < want:
            await self.mount_all([DatasetRow(self.protocol) for _ in range(want - len(rows))])
        else:
            await self.remove_children(rows[want:])
        self._sync()

    def _sync(self, announce: bool = False) -> None:
        """Scroll so the cursor is visible and point every row at its image."""
        page = self.page
        if self.cursor < self.top:
            self.top = self.cursor
        elif self.cursor >= self.top + page:
            self.top = self.cursor - page + 1
        self.top = max(0, min(self.top, max(0, len(self.items) - page)))
        for offset, row in enumerate(self.query(DatasetRow)):
            index = self.top + offset
            item = self.items[index] if index < len(self.items) else None
            thumb = self.thumbs.get(item.measures.key) if item else None
            row.show(index, item, thumb, selected=index == self.cursor)
        if announce:
            self.post_message(self.Highlighted(self.current))

    def on_dataset_row_clicked(self, event: DatasetRow.Clicked) -> None:
        event.stop()
        self.focus()
        self.move_to(event.row.index)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.move(1)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.move(-1)
