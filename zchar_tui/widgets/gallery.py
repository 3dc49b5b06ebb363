"""Results gallery: a large preview of the chosen result, its parameters, and a strip of thumbnails around it.

Images are decoded and shrunk with Pillow in a thread worker (never in the UI thread) and kept in a small cache;
the preview uses the best protocol the terminal has, thumbnails are half-cell (cheap, fine over SSH).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from zchar_tui.images import preview_class, thumbnail_class
from zchar_tui.safe_text import printable

STRIP = 4
PREVIEW_PX = 768
THUMB_PX = 96
CACHE = 64


def describe(output: dict[str, Any]) -> Text:
    """The parameters of a result, for people."""
    p = output.get("params") or {}
    text = Text()
    text.append(f"{printable(output['path'])}\n", style="bold")
    if p.get("prompt"):
        text.append(printable(p["prompt"]) + "\n")  # from a PNG's metadata: maybe an image from elsewhere
    bits = [f"seed {p.get('seed', output.get('seed'))}"]
    if p.get("width"):
        bits.append(f"{p['width']}x{p['height']}")
    if p.get("steps"):
        bits.append(f"{p['steps']} steps, guidance {p.get('guidance', 0):g}")
    text.append("  ·  ".join(bits) + "\n", style="dim")
    for lo in p.get("loras") or []:
        text.append(f"LoRA {lo.get('name', lo['path'])} @ {lo['strength']:g}  [{lo.get('hash', '')}]\n", style="dim")
    for ref in p.get("references") or []:
        text.append(f"reference {ref['path']} @ {p.get('reference_strength', 0):g}\n", style="dim")
    grid = p.get("grid")
    if grid:
        text.append(f"grid: {len(grid['rows'])} LoRAs × strengths {', '.join(f'{s:g}' for s in grid['strengths'])}\n",
                    style="dim")
    return text


class Gallery(Vertical):
    """Call `set_outputs(outputs)` (newest first) when they change; `selected` is the chosen output."""

    DEFAULT_CSS = """
    Gallery { padding: 0 1; }
    Gallery #gallery-preview { height: 1fr; min-height: 8; align: center middle; }
    Gallery #gallery-image { width: auto; height: 100%; }
    Gallery #gallery-details { height: auto; max-height: 8; }
    Gallery #gallery-strip { height: 9; }
    Gallery .thumb { width: 15; height: 9; border: round $panel; }
    Gallery .thumb.-selected { border: heavy $accent; }
    Gallery .thumb > * { width: 13; height: 7; }
    """

    def __init__(self, project_root: Path, protocol: str = "auto", **kw: Any) -> None:
        super().__init__(**kw)
        self.root = project_root
        self.protocol = protocol
        self.outputs: list[dict[str, Any]] = []
        self.index = 0
        self._cache: OrderedDict[tuple[str, int], Any] = OrderedDict()

    def compose(self) -> ComposeResult:
        with Container(id="gallery-preview"):
            yield preview_class(self.protocol)(id="gallery-image")
        yield Static("No results yet: queue prompts on the Prompts pane (3).", id="gallery-details")
        with Horizontal(id="gallery-strip"):
            for i in range(STRIP):
                with Container(classes="thumb", id=f"thumb-{i}"):
                    yield thumbnail_class(self.protocol)()

    @property
    def selected(self) -> dict[str, Any] | None:
        return self.outputs[self.index] if 0 <= self.index < len(self.outputs) else None

    def set_outputs(self, outputs: list[dict[str, Any]]) -> None:
        current = self.selected["path"] if self.selected else None
        self.outputs = list(outputs)
        paths = [o["path"] for o in self.outputs]
        self.index = paths.index(current) if current in paths else 0
        self._show()

    def select_path(self, path: str) -> bool:
        paths = [o["path"] for o in self.outputs]
        if path not in paths:
            return False
        if paths.index(path) != self.index:
            self.index = paths.index(path)
            self._show()
        return True

    def move(self, delta: int) -> None:
        if self.outputs:
            self.index = max(0, min(len(self.outputs) - 1, self.index + delta))
            self._show()

    def window(self) -> list[int]:
        """Indexes of the outputs in the thumbnail strip, the selected one among them."""
        start = max(0, min(self.index - STRIP // 2, len(self.outputs) - STRIP))
        return list(range(start, min(len(self.outputs), start + STRIP)))

    def _show(self) -> None:
        sel = self.selected
        self.query_one("#gallery-details", Static).update(
            describe(sel) if sel else "No results yet: queue prompts on the Prompts pane (3).")
        window = self.window()
        for slot in range(STRIP):
            cell = self.query_one(f"#thumb-{slot}", Container)
            cell.set_class(slot < len(window) and window[slot] == self.index, "-selected")
            cell.display = slot < len(window)
        wanted = [(self.outputs[i]["path"], THUMB_PX) for i in window]
        if sel:
            wanted.insert(0, (sel["path"], PREVIEW_PX))
        else:
            self.query_one("#gallery-image").image = None  # type: ignore[attr-defined]
        self._load(wanted, [self.outputs[i]["path"] for i in window], sel["path"] if sel else None)

    @work(thread=True, exclusive=True, group="gallery")
    def _load(self, wanted: list[tuple[str, int]], strip: list[str], preview: str | None) -> None:
        images = {key: self._image(*key) for key in wanted}
        self.app.call_from_thread(self._place, images, strip, preview)

    def _image(self, rel: str, size: int) -> Any:
        from PIL import Image, UnidentifiedImageError

        key = (rel, size)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        try:
            with Image.open(self.root / rel) as im:
                im.thumbnail((size, size))
                small = im.convert("RGB")
        except (OSError, UnidentifiedImageError):
            small = None  # deleted or unreadable: shown as empty
        self._cache[key] = small
        while len(self._cache) > CACHE:
            self._cache.popitem(last=False)
        return small

    def _place(self, images: dict[tuple[str, int], Any], strip: list[str], preview: str | None) -> None:
        if preview is not None:
            self.query_one("#gallery-image").image = images.get((preview, PREVIEW_PX))  # type: ignore[attr-defined]
        for slot, rel in enumerate(strip):
            thumb = self.query_one(f"#thumb-{slot}").children[0]
            thumb.image = images.get((rel, THUMB_PX))  # type: ignore[attr-defined]


class ResultScreen(ModalScreen[None]):
    """One result, as large as the terminal allows, with its parameters."""

    DEFAULT_CSS = """
    ResultScreen { align: center middle; }
    ResultScreen #result-box { width: 95%; height: 95%; border: round $primary; background: $surface; }
    ResultScreen #result-image { width: auto; height: 1fr; }
    ResultScreen #result-details { height: auto; padding: 0 1; }
    """

    BINDINGS = [Binding("escape,q,o,enter", "dismiss", "Close", id="result_close", tooltip="Back to the queue")]

    def __init__(self, root: Path, output: dict[str, Any], protocol: str = "auto") -> None:
        super().__init__()
        self.root, self.output, self.protocol = root, output, protocol

    def compose(self) -> ComposeResult:
        with Vertical(id="result-box"):
            yield preview_class(self.protocol)(id="result-image")
            yield Static(describe(self.output), id="result-details")

    def on_mount(self) -> None:
        self._load()

    @work(thread=True)
    def _load(self) -> None:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(self.root / self.output["path"]) as im:
                im.thumbnail((1536, 1536))
                image = im.convert("RGB")
        except (OSError, UnidentifiedImageError) as exc:
            self.app.call_from_thread(self.app.notify, f"cannot open {self.output['path']}: {exc}", severity="error")
            return
        self.app.call_from_thread(setattr, self.query_one("#result-image"), "image", image)
