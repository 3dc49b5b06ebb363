"""The validation contact sheet: one row per validation prompt (and seed), one column per sampling step of the
current run; each cell a half-cell thumbnail that opens a larger preview (Kitty/Sixel where the terminal has it).

Thumbnails are made with Pillow in a thread worker and kept in memory; focus styling sits on the cell, not on the
image, so moving the cursor never re-encodes pictures (TUI.md).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, ScrollableContainer, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Label, Static
from textual.worker import get_current_worker

from zchar_tui.images import preview_class, thumbnail_class

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

THUMB_PX = 96  # thumbnail source size: enough for a 16-cell half-cell image (TUI.md: ~6 ms each to draw)
CELL_W = 18  # a cell: 16×8 characters of half-cell image (16×16 "pixels") inside a border
THUMB_H = 8
LABEL_W = 28


def row_key(sample: dict[str, Any]) -> tuple[int, int]:
    return int(sample["prompt_index"]), int(sample["seed"])


@dataclass
class Grid:
    """Samples arranged as rows (prompt, seed) × columns (step)."""

    rows: list[tuple[int, int]]
    steps: list[int]
    cells: dict[tuple[tuple[int, int], int], dict[str, Any]]
    epochs: dict[int, Any]
    prompts: dict[tuple[int, int], str]

    @classmethod
    def of(cls, samples: list[dict[str, Any]]) -> Grid:
        cells = {(row_key(s), int(s["step"])): s for s in samples}
        rows = sorted({r for r, _ in cells})
        steps = sorted({st for _, st in cells})
        epochs = {int(s["step"]): s.get("epoch") for s in samples}
        prompts = {row_key(s): s.get("prompt", "") for s in samples}
        return cls(rows, steps, cells, epochs, prompts)

    def neighbour(self, sample: dict[str, Any], drow: int, dstep: int) -> dict[str, Any] | None:
        """The next sample from `sample` in a direction (rows: prompts, columns: steps), skipping gaps."""
        r, step = row_key(sample), int(sample["step"])
        if r not in self.rows or step not in self.steps:
            return None
        ri, si = self.rows.index(r) + drow, self.steps.index(step) + dstep
        while 0 <= ri < len(self.rows) and 0 <= si < len(self.steps):
            found = self.cells.get((self.rows[ri], self.steps[si]))
            if found:
                return found
            ri, si = ri + drow, si + dstep
        return None


def load_thumbnail(path: Path, size: int = THUMB_PX) -> PILImage:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        im.thumbnail((size, size))
        return im


def load_preview(path: Path, size: int = 1024) -> PILImage:
    return load_thumbnail(path, size)


class SampleCell(Widget, can_focus=True):
    """One sample; Enter or a click opens the preview."""

    DEFAULT_CSS = f"""
    SampleCell {{ width: {CELL_W}; height: {THUMB_H + 2}; border: round $panel; }}
    SampleCell:focus {{ border: round $accent; }}
    SampleCell > .thumb {{ width: {CELL_W - 2}; height: {THUMB_H}; }}
    SampleCell > .placeholder {{ width: 1fr; height: 1fr; color: $text-muted; content-align: center middle; }}
    """
    BINDINGS = [
        Binding("enter", "open", "Preview", id="sample_open", tooltip="Open this sample larger"),
        Binding("left", "move(0, -1)", "Earlier", id="sample_left", show=False, tooltip="The sample to the left"),
        Binding("right", "move(0, 1)", "Later", id="sample_right", show=False, tooltip="The sample to the right"),
        Binding("up", "move(-1, 0)", "Up", id="sample_up", show=False, tooltip="The prompt above"),
        Binding("down", "move(1, 0)", "Down", id="sample_down", show=False, tooltip="The prompt below"),
    ]

    class Open(Message):
        def __init__(self, sample: dict[str, Any]) -> None:
            super().__init__()
            self.sample = sample

    def __init__(self, sample: dict[str, Any] | None) -> None:
        super().__init__(classes="sample-cell")
        self.sample = sample
        self.loaded = sample is None
        self.can_focus = sample is not None

    def compose(self) -> ComposeResult:
        yield Static("…" if self.sample else "", classes="placeholder")

    def show_image(self, image: PILImage | None, protocol: str) -> None:
        self.loaded = True
        if image is None:
            self.query_one(".placeholder", Static).update("unreadable")
            return
        self.query(".placeholder").remove()
        self.mount(thumbnail_class(protocol)(image, classes="thumb"))

    def action_open(self) -> None:
        if self.sample:
            self.post_message(self.Open(self.sample))

    def action_move(self, drow: int, dstep: int) -> None:
        sheet = next((a for a in self.ancestors if isinstance(a, ContactSheet)), None)
        if sheet is not None and self.sample:
            sheet.focus_near(self.sample, drow, dstep)

    def on_click(self, event: events.Click) -> None:
        self.action_open()


class SheetRow(Horizontal):
    """One prompt (and seed): its label, then one cell per sampled step."""

    DEFAULT_CSS = f"""
    SheetRow {{ width: auto; height: {THUMB_H + 2}; }}
    SheetRow.header {{ height: 1; }}
    SheetRow > .row-label {{ width: {LABEL_W}; height: 100%; padding: 1 1 0 0; color: $text-muted; }}
    SheetRow > .step-label {{ width: {CELL_W}; content-align: center middle; color: $text-muted; }}
    """


class ContactSheet(ScrollableContainer):
    DEFAULT_CSS = """
    ContactSheet { height: 1fr; }
    ContactSheet > .sheet-empty { height: 1; color: $text-muted; }
    """

    def __init__(self, project_root: Path, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.project_root = project_root
        self.run: str | None = None
        self.grid = Grid([], [], {}, {}, {})
        self._rows: dict[tuple[int, int], SheetRow] = {}
        self._header: SheetRow | None = None
        self._thumbs: dict[str, PILImage | None] = {}

    def compose(self) -> ComposeResult:
        yield Static("no validation samples yet", classes="sheet-empty")

    @property
    def protocol(self) -> str:
        return getattr(getattr(self.app, "config", None), "image_protocol", "auto")

    def show(self, run: str | None, samples: list[dict[str, Any]]) -> None:
        """Bring the sheet up to date: a new step adds a column, a new run or a rewind rebuilds it."""
        grid = Grid.of(samples)
        old = self.grid
        if run == self.run and grid.cells.keys() == old.cells.keys():
            return
        rebuild = (run != self.run or grid.rows != old.rows or grid.steps[: len(old.steps)] != old.steps
                   or any(k not in grid.cells for k in old.cells))
        self.run, self.grid = run, grid
        if rebuild:
            self._rebuild()
        else:
            for r in grid.rows:  # cells that arrived for a step already shown (its later prompts)
                for i, step in enumerate(old.steps):
                    if (r, step) in grid.cells and (r, step) not in old.cells:
                        row = self._rows[r]
                        cell = row.query(SampleCell)[i]
                        new = SampleCell(grid.cells[(r, step)])
                        row.mount(new, after=cell)
                        cell.remove()
            new_steps = grid.steps[len(old.steps):]
            if new_steps and self._header is not None:
                self._header.mount_all([self._step_label(st) for st in new_steps])
                for r, row in self._rows.items():
                    row.mount_all([SampleCell(grid.cells.get((r, st))) for st in new_steps])
        self.call_after_refresh(self._load_missing)
        self.call_after_refresh(lambda: self.scroll_to(x=self.max_scroll_x, animate=False))

    def _step_label(self, step: int) -> Label:
        epoch = self.grid.epochs.get(step)
        return Label(f"e{epoch} · {step}" if epoch is not None else f"step {step}", classes="step-label")

    def _rebuild(self) -> None:
        self.remove_children()
        self._rows = {}
        self._header = None
        keep = {s["path"] for s in self.grid.cells.values()}
        self._thumbs = {k: v for k, v in self._thumbs.items() if k in keep}
        if not self.grid.rows:
            self.mount(Static("no validation samples yet", classes="sheet-empty"))
            return
        seeds = {seed for _, seed in self.grid.rows}
        self._header = SheetRow(Static("", classes="row-label"), *(self._step_label(st) for st in self.grid.steps),
                                classes="header")
        rows = [self._header]
        for r in self.grid.rows:
            head = f"#{r[0] + 1}" + (f" seed {r[1]}" if len(seeds) > 1 else "")
            label = Static(Text.assemble((head, "bold"), " ", self.grid.prompts.get(r, "")[:90]), classes="row-label")
            row = SheetRow(label, *(SampleCell(self.grid.cells.get((r, st))) for st in self.grid.steps))
            self._rows[r] = row
            rows.append(row)
        self.mount_all(rows)

    def _load_missing(self) -> None:
        todo = [c for c in self.query(SampleCell) if not c.loaded]
        for c in [c for c in todo if c.sample["path"] in self._thumbs]:
            c.show_image(self._thumbs[c.sample["path"]], self.protocol)
        rest = [c for c in todo if c.sample["path"] not in self._thumbs]
        if rest:
            self._load_thumbnails(rest)

    class ThumbnailReady(Message):
        def __init__(self, cell: SampleCell, image: PILImage | None) -> None:
            super().__init__()
            self.cell = cell
            self.image = image

    @work(thread=True, group="thumbnails")
    def _load_thumbnails(self, cells: list[SampleCell]) -> None:
        worker = get_current_worker()
        for cell in cells:
            if worker.is_cancelled:
                return
            path = cell.sample["path"]
            try:
                image = load_thumbnail(self.project_root / path)
            except Exception:  # a missing or broken file shows as "unreadable", never an error dialog
                image = None
            self._thumbs[path] = image
            # A message, not call_from_thread: that blocks on the UI loop and, if the UI quits meanwhile (an SSH
            # drop), leaves a thread that keeps the process from exiting.
            with contextlib.suppress(RuntimeError):  # the UI loop already closed
                self.post_message(self.ThumbnailReady(cell, image))

    @on(ThumbnailReady)
    def _deliver(self, event: ThumbnailReady) -> None:
        if event.cell.is_attached and not event.cell.loaded:
            event.cell.show_image(event.image, self.protocol)

    @property
    def loading_done(self) -> bool:
        return all(c.loaded for c in self.query(SampleCell))

    def _cell(self, row: tuple[int, int], step: int) -> SampleCell | None:
        if row not in self._rows or step not in self.grid.steps:
            return None
        return self._rows[row].query(SampleCell)[self.grid.steps.index(step)]

    def focus_latest(self) -> None:
        """Focus the newest sample of the first prompt."""
        for step in reversed(self.grid.steps):
            for row in self.grid.rows:
                cell = self._cell(row, step)
                if cell is not None and cell.sample:
                    cell.focus()
                    return

    def focus_near(self, sample: dict[str, Any], drow: int, dstep: int) -> None:
        """Move focus to the next filled cell in a direction (empty cells are skipped)."""
        nxt = self.grid.neighbour(sample, drow, dstep)
        cell = self._cell(row_key(nxt), int(nxt["step"])) if nxt else None
        if cell is not None:
            cell.focus()

    @on(SampleCell.Open)
    def _open(self, event: SampleCell.Open) -> None:
        event.stop()
        self.app.push_screen(SamplePreview(self.project_root, self.grid, event.sample, self.protocol))


class SamplePreview(ModalScreen[None]):
    """One sample large; left/right walk through the steps of the same prompt, up/down through the prompts."""

    DEFAULT_CSS = """
    SamplePreview { align: center middle; }
    SamplePreview > #preview-box { width: 90%; height: 90%; border: round $primary; background: $surface; }
    SamplePreview #preview-caption { height: auto; padding: 0 1; }
    SamplePreview #preview-image { width: 1fr; height: 1fr; align: center middle; }
    SamplePreview #preview-image > * { width: auto; height: 100%; }
    """
    BINDINGS = [
        Binding("escape,q", "dismiss", "Close", id="preview_close"),
        Binding("left", "move(0, -1)", "Earlier", id="preview_earlier", tooltip="Same prompt, earlier step"),
        Binding("right", "move(0, 1)", "Later", id="preview_later", tooltip="Same prompt, later step"),
        Binding("up", "move(-1, 0)", "Prompt above", id="preview_up", show=False),
        Binding("down", "move(1, 0)", "Prompt below", id="preview_down", show=False),
    ]

    def __init__(self, project_root: Path, grid: Grid, sample: dict[str, Any], protocol: str) -> None:
        super().__init__()
        self.project_root = project_root
        self.grid = grid
        self.sample = sample
        self.protocol = protocol

    def compose(self) -> ComposeResult:
        with Vertical(id="preview-box"):
            yield Static(id="preview-caption")
            yield Vertical(id="preview-image")

    def on_mount(self) -> None:
        self._show()

    def _show(self) -> None:
        s = self.sample
        self.query_one("#preview-caption", Static).update(Text.assemble(
            (f"step {s['step']}", "bold"), f" · epoch {s.get('epoch')} · seed {s['seed']}",
            f" · prompt #{s['prompt_index'] + 1}  (←/→ steps, ↑/↓ prompts, Esc closes)\n",
            (s.get("prompt", ""), "italic"), "\n", (s["path"], "dim")))
        self._load(self.project_root / s["path"], s["path"])

    class Loaded(Message):
        def __init__(self, key: str, image: PILImage | None, error: str | None) -> None:
            super().__init__()
            self.key, self.image, self.error = key, image, error

    @work(thread=True, exclusive=True, group="preview")
    def _load(self, path: Path, key: str) -> None:
        image, error = None, None
        try:
            image = load_preview(path)
        except Exception as exc:  # shown in the preview instead of the picture
            error = f"cannot read {key}: {exc}"
        with contextlib.suppress(RuntimeError):  # the UI loop already closed
            self.post_message(self.Loaded(key, image, error))

    @on(Loaded)
    def _place(self, event: Loaded) -> None:
        if event.key != self.sample["path"]:
            return  # the user moved on meanwhile
        box = self.query_one("#preview-image", Vertical)
        box.remove_children()
        box.mount(preview_class(self.protocol)(event.image) if event.image is not None else Static(event.error or ""))

    def action_move(self, drow: int, dstep: int) -> None:
        nxt = self.grid.neighbour(self.sample, drow, dstep)
        if nxt:
            self.sample = nxt
            self._show()
