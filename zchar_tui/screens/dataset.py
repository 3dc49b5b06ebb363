"""Dataset pane: review images and captions, fix what the health check flags, import raw photos.

Scanning, thumbnails and imports run in thread workers of this process (Pillow/numpy/OpenCV only, never torch;
see engine/dataset.py for why not in the engine). The list draws only the rows on screen.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image
from textual import work
from textual.app import ComposeResult, SuspendNotSupported, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, ProgressBar, Static
from textual.worker import get_current_worker

from engine import dataset
from engine.captions import caption_path, write_caption
from engine.project import ProjectError
from zchar_tui.safe_text import escape
from zchar_tui.screens.base import PaneScreen
from zchar_tui.screens.dialogs import ConfirmScreen
from zchar_tui.screens.image_preview import ImagePreviewScreen
from zchar_tui.screens.import_dialog import ImportRequest, ImportScreen
from zchar_tui.screens.text_report import ReportScreen
from zchar_tui.widgets.dataset_list import DatasetList, badges

VIEWS = ("all", "flagged", "duplicates", "excluded")
VIEW_TOKENS = {":flagged": "flagged", ":dup": "duplicates", ":duplicates": "duplicates", ":excluded": "excluded",
               ":all": "all"}
VERDICT_STYLE = {"error": "$error", "warning": "$warning", "ok": "$success", "great": "$success"}


def edit_file(app: Any, path: Path) -> str:
    """Open `path` in $VISUAL/$EDITOR with the dashboard suspended; '' or why it could not."""
    command = shlex.split(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi")
    try:
        with app.suspend():
            subprocess.run([*command, str(path)], check=False)
    except SuspendNotSupported:
        return "this terminal cannot hand over to an editor; press e to edit the caption here"
    except OSError as exc:
        return f"cannot start the editor {command[0]!r} ({exc.strerror or exc}); set $EDITOR"
    return ""


def matches(item: dataset.ImageHealth, view: str, text: str) -> bool:
    if view == "flagged" and item.level == "ok":
        return False
    if view == "duplicates" and not item.duplicate_group:
        return False
    if view == "excluded" and not item.excluded:
        return False
    needle = text.casefold()
    return not needle or needle in item.name.casefold() or needle in item.caption.text.casefold()


class DatasetScreen(PaneScreen):
    MODE = "dataset"
    TITLE = "Dataset"
    DEFAULT_CSS = """
    DatasetScreen #dataset-main { width: 1fr; }
    DatasetScreen #dataset-side { width: 46; padding: 0 1; border-left: solid $panel-lighten-2; }
    DatasetScreen DatasetList { border: round $panel-lighten-2; border-title-color: $text-muted; }
    DatasetScreen DatasetList:focus { border: round $accent; }
    DatasetScreen #dataset-empty { height: 1fr; padding: 2 4; color: $text-muted; }
    DatasetScreen #dataset-summary { height: auto; margin-bottom: 1; }
    DatasetScreen #dataset-progress { height: auto; margin-bottom: 1; }
    DatasetScreen #dataset-detail { height: 1fr; }
    """
    HELP = ("Badges: ✖ error (training would fail or use a broken image), ▲ warning, · note. "
            "The filter (/) takes text and :flagged, :dup, :excluded or :all. Excluded images stay in dataset/ "
            "and are listed in project.toml; trashed ones go to .zchar/trash/ (u brings the last one back).")
    BINDINGS = [
        Binding("j,down", "move(1)", "Down", id="dataset_down", show=False, tooltip="Next image"),
        Binding("k,up", "move(-1)", "Up", id="dataset_up", show=False, tooltip="Previous image"),
        Binding("pagedown", "page(1)", "Page down", id="dataset_page_down", show=False, tooltip="Next page"),
        Binding("pageup", "page(-1)", "Page up", id="dataset_page_up", show=False, tooltip="Previous page"),
        Binding("home,g", "jump(0)", "First", id="dataset_first", show=False, tooltip="First image"),
        Binding("end,G", "jump(-1)", "Last", id="dataset_last", show=False, tooltip="Last image"),
        Binding("enter", "preview", "Preview", id="dataset_preview", tooltip="Large preview (←/→ step, Esc closes)"),
        Binding("e", "edit_caption", "Caption", id="dataset_caption", tooltip="Edit the caption here (Enter saves)"),
        Binding("E", "edit_external", "Editor", id="dataset_editor", show=False,
                tooltip="Edit the caption in $EDITOR"),
        Binding("x", "toggle_exclude", "Exclude", id="dataset_exclude",
                tooltip="Leave the image out of training (or take it back in)"),
        Binding("d", "trash", "Trash", id="dataset_trash", tooltip="Move the image and caption to .zchar/trash/"),
        Binding("u", "undo", "Undo", id="dataset_undo", show=False, tooltip="Bring back the last trashed image"),
        Binding("slash", "filter", "Filter", id="dataset_filter",
                tooltip="Filter by text, :flagged, :dup or :excluded"),
        Binding("f", "cycle_view", "View", id="dataset_view",
                tooltip="Show all → flagged → duplicates → excluded"),
        Binding("i", "import_raw", "Import", id="dataset_import", tooltip="Import a folder of raw photos"),
        Binding("r", "rescan", "Rescan", id="dataset_rescan", show=False,
                tooltip="Check the dataset again (after changes made outside)"),
        Binding("escape", "escape", "Back", id="dataset_escape", show=False,
                tooltip="Close the editor or filter; cancel an import"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.report: dataset.DatasetReport | None = None
        self.view = "all"
        self.text = ""
        self.thumbs: dict[str, Any] = {}
        self.undo_stack: list[dataset.TrashRecord] = []
        self._editing: str | None = None
        self._select: str | None = None  # put the cursor here after the next scan (a restored or imported image)
        self._progress: tuple[str, int, int] | None = None  # written by workers, drawn by a timer

    # --- layout -------------------------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        with Horizontal(id="dataset-body", classes="pane-body"):
            with Vertical(id="dataset-main"):
                yield Input(placeholder="filter: text, :flagged, :dup, :excluded (Enter keeps, Esc clears)",
                            id="dataset-filter", compact=True)
                yield Static("Scanning dataset/…", id="dataset-empty")
                yield DatasetList(self.zapp.config.image_protocol, id="dataset-list")
                yield Input(placeholder="caption (Enter saves, Esc cancels)", id="caption-editor",
                            select_on_focus=False)
            with Vertical(id="dataset-side"):
                yield Static(id="dataset-summary")
                yield ProgressBar(id="dataset-progress", show_eta=False)
                yield Static(id="dataset-detail")

    @property
    def image_list(self) -> DatasetList:
        return self.query_one(DatasetList)

    def on_mount(self) -> None:
        for wid in ("#dataset-filter", "#caption-editor", "#dataset-progress", "#dataset-list"):
            self.query_one(wid).display = False
        self.image_list.set_thumbs(self.thumbs)
        self.set_interval(0.25, self._draw_progress)
        self.image_list.focus()
        self.rescan()

    def on_screen_resume(self) -> None:  # PaneScreen's runs too (Textual calls each class's handler)
        if self.report is not None:
            self.rescan()  # cheap (cached): picks up files changed while another pane was shown

    def on_engine_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "settings" and self.is_mounted:
            self.rescan()  # trigger word, resolution or excluded list changed

    # --- scanning -----------------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="dataset-scan")
    def rescan(self) -> None:
        worker = get_current_worker()
        app = self.zapp

        def progress(done: int, total: int, name: str) -> None:
            self._progress = ("Checking images", done, total)

        report = dataset.scan(app.project, app.settings, thumbs=True, progress=progress,
                              cancel=lambda: worker.is_cancelled)
        self._progress = None
        if worker.is_cancelled:
            return
        thumbs = {}
        for item in report.items:
            key = item.measures.key
            if key and key not in self.thumbs and not item.measures.error:
                with contextlib.suppress(OSError), Image.open(dataset.thumbnail_path(app.project, key)) as im:
                    thumbs[key] = im.convert("RGB")
        app.call_from_thread(self._apply_report, report, thumbs)

    def _apply_report(self, report: dataset.DatasetReport, thumbs: dict[str, Any]) -> None:
        self.thumbs.update(thumbs)
        self.report = report
        self._refresh_list()

    def _refresh_list(self) -> None:
        if self.report is None:
            return
        lst = self.image_list
        current = self._select or (lst.current.name if lst.current else None)
        self._select = None
        items = [it for it in self.report.items if matches(it, self.view, self.text)]
        lst.display = bool(items)
        empty = self.query_one("#dataset-empty", Static)
        empty.display = not items
        if not self.report.items:
            empty.update(f"No images in {self.zapp.project.dataset_dir}.\n\nPress i to import a folder of photos "
                         "(they are cropped, resized and captioned), or copy images there and press r.")
        elif not items:
            empty.update(f"No image matches the view '{self.view}'{f' and filter {self.text!r}' if self.text else ''}."
                         "\nPress f to change the view or Esc to clear the filter.")
        lst.set_items(items, keep=current)
        shown = f"{len(items)} of {len(self.report.items)}" if len(items) != len(self.report.items) else \
            f"{len(items)}"
        lst.border_title = f"images: {shown} · view: {self.view}" + (f" · filter: {self.text}" if self.text else "")
        self._draw_summary()
        self._draw_detail(lst.current)

    def on_dataset_list_highlighted(self, event: DatasetList.Highlighted) -> None:
        self._draw_detail(event.item)

    def _draw_summary(self) -> None:
        r = self.report
        if r is None:
            return
        errors = sum(1 for it in r.items if not it.excluded and it.level == "error")
        warned = sum(1 for it in r.items if not it.excluded and it.level == "warning")
        style = VERDICT_STYLE.get(r.verdict_level, "$text")
        lines = [
            "[b]Dataset[/]",
            f"{len(r.items)} images · {r.excluded} excluded · {r.images} usable",
            f"[$error]✖ {errors}[/] with errors   [$warning]▲ {warned}[/] with warnings",
            f"⧉ {len(r.duplicate_groups)} near-duplicate group{'s' if len(r.duplicate_groups) != 1 else ''}",
            "",
            f"[b {style}]{escape(r.verdict)}[/]",
            "[$text-muted]guide: 5 minimum · 15–20 recommended · 30+ high quality; "
            "at least half front or three-quarter views, 3–4 profiles, varied expressions, outfits, light[/]",
        ]
        lines += [f"[$text-muted]note: {escape(n)}[/]" for n in r.notes]
        self.query_one("#dataset-summary", Static).update("\n".join(lines))

    def _draw_detail(self, item: dataset.ImageHealth | None) -> None:
        self.query_one("#dataset-detail", Static).update(self.describe(item) if item else "")

    def describe(self, item: dataset.ImageHealth) -> str:
        m = item.measures
        lines = [f"[b]{escape(item.name)}[/]" + ("  [reverse] excluded [/]" if item.excluded else "")]
        if not m.error:
            face = "faces n/a" if m.faces is None else f"{m.faces} face{'s' if m.faces != 1 else ''}"
            lines.append(f"[$text-muted]{m.width}×{m.height} {m.format} · blur {m.blur:.2f} · "
                         f"brightness {m.brightness:.0f} · {face}[/]")
        lines.append(badges(item))
        glyph = {"error": "[$error]✖[/]", "warning": "[$warning]▲[/]", "info": "[$text-muted]·[/]"}
        lines += [f"{glyph[f.level]} {escape(f.message)}" for f in item.flags]
        cap = item.caption
        lines += ["", "[b]caption[/]", escape(cap.text) if cap.text else "[$text-muted](none)[/]"]
        return "\n".join(lines)

    def _draw_progress(self) -> None:
        bar = self.query_one("#dataset-progress", ProgressBar)
        progress = self._progress
        bar.display = progress is not None
        if progress is not None:
            label, done, total = progress
            bar.update(total=max(total, 1), progress=done)
            bar.border_title = f"{label} {done}/{total}"

    # --- actions: moving --------------------------------------------------------------------------------------
    def action_move(self, delta: int) -> None:
        self.image_list.move(delta)

    def action_page(self, delta: int) -> None:
        self.image_list.move(delta * self.image_list.page)

    def action_jump(self, index: int) -> None:
        lst = self.image_list
        lst.move_to(index if index >= 0 else len(lst.items) - 1)

    def action_preview(self) -> None:
        lst = self.image_list
        if lst.current is None:
            return
        items = list(lst.items)
        self.app.push_screen(
            ImagePreviewScreen([it.path for it in items], lst.cursor, lambda i: self.describe(items[i]),
                               self.zapp.config.image_protocol),
            callback=lambda index: lst.move_to(index) if index is not None else None)

    # --- actions: captions ------------------------------------------------------------------------------------
    def action_edit_caption(self) -> None:
        item = self.image_list.current
        if item is None:
            return
        editor = self.query_one("#caption-editor", Input)
        self._editing = item.name
        trigger = self.zapp.settings.trigger
        text = item.caption.text
        editor.value = f"{trigger}, " if text.strip(" ,") in ("", trigger) else text
        editor.border_title = f"caption of {item.name}"
        editor.display = True
        editor.focus()
        editor.cursor_position = len(editor.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "caption-editor" and self._editing:
            image = self.zapp.project.dataset_dir / self._editing
            try:
                write_caption(image, event.value)
            except OSError as exc:
                self.notify(f"{caption_path(image).name} not saved: {exc.strerror or exc}", severity="error")
                return
            self.notify(f"saved {caption_path(image).name}", timeout=2)
            self._close_editor()
            self.rescan()
        elif event.input.id == "dataset-filter":
            self.image_list.focus()
            event.input.display = bool(event.value)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "dataset-filter":
            return
        words = event.value.split()
        views = [VIEW_TOKENS[w] for w in words if w in VIEW_TOKENS]
        if views:
            self.view = views[-1]
        self.text = " ".join(w for w in words if w not in VIEW_TOKENS)
        self._refresh_list()

    def _close_editor(self) -> None:
        self._editing = None
        self.query_one("#caption-editor", Input).display = False
        self.image_list.focus()

    def action_edit_external(self) -> None:
        item = self.image_list.current
        if item is None:
            return
        path = caption_path(item.path)
        try:
            if not path.exists():
                write_caption(item.path, item.caption.text or self.zapp.settings.trigger)
        except OSError as exc:
            self.notify(f"cannot create {path.name}: {exc.strerror or exc}", severity="error")
            return
        problem = edit_file(self.app, path)
        if problem:
            self.notify(problem, severity="error")
        self.rescan()

    # --- actions: exclude, trash, undo ------------------------------------------------------------------------
    def action_toggle_exclude(self) -> None:
        item = self.image_list.current
        if item is None:
            return
        names = set(self.zapp.settings.excluded) ^ {item.name}
        if self.zapp.update_settings({"excluded": sorted(names)}):  # its "settings" event rescans
            item.excluded = item.name in names
            self.notify(f"{item.name} {'excluded from' if item.excluded else 'included in'} training", timeout=2)
            self.image_list.set_items(self.image_list.items, keep=item.name)
            self._draw_detail(item)

    def action_trash(self) -> None:
        item = self.image_list.current
        if item is None:
            return
        question = f"Move {item.name} (and caption) to .zchar/trash/?"
        self.app.push_screen(ConfirmScreen(question, yes="Move to trash"),
                             callback=lambda ok: self._trash(item.name) if ok else None)

    def _trash(self, name: str) -> None:
        try:
            record = dataset.trash_image(self.zapp.project, name)
        except (ProjectError, OSError) as exc:
            self.notify(f"{name} not moved: {exc}", severity="error")
            return
        self.undo_stack.append(record)
        self.notify(f"moved {name} to .zchar/trash/ (u undoes)", timeout=4)
        self.rescan()

    def action_undo(self) -> None:
        if not self.undo_stack:
            self.notify("nothing to undo", timeout=2)
            return
        record = self.undo_stack.pop()
        try:
            dataset.restore(record)
        except (ProjectError, OSError) as exc:
            self.undo_stack.append(record)
            self.notify(str(exc), severity="error")
            return
        self._select = record.moves[0][0].name
        self.notify(f"restored {self._select}", timeout=3)
        self.rescan()

    # --- actions: views -------------------------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#dataset-filter", Input)
        box.display = True
        box.focus()

    def action_cycle_view(self) -> None:
        self.set_view(VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)])

    def set_view(self, view: str) -> None:
        self.view = view
        self._refresh_list()

    def action_escape(self) -> None:
        if self._editing:
            self._close_editor()
            return
        box = self.query_one("#dataset-filter", Input)
        if box.display:
            box.value = ""
            box.display = False
            self.view = "all"
            self._refresh_list()
            self.image_list.focus()
            return
        if self.workers_busy("dataset-import"):
            self.workers.cancel_group(self, "dataset-import")
            self.notify("import cancelled (files already written stay)", timeout=4)

    def workers_busy(self, group: str) -> bool:
        return any(w.group == group and w.is_running for w in self.workers)

    def action_rescan(self) -> None:
        self.rescan()

    def action_show_report(self) -> None:
        if self.report is not None:
            self.app.push_screen(ReportScreen("Dataset health", dataset.report_lines(self.report)))

    # --- import -----------------------------------------------------------------------------------------------
    def action_import_raw(self) -> None:
        from engine import faces

        if self.workers_busy("dataset-import"):
            self.notify("an import is already running (Esc cancels it)", severity="warning")
            return
        raw = self.zapp.project.root / "raw"
        self.app.push_screen(ImportScreen(str(raw) if raw.is_dir() else "", faces.unavailable_reason()),
                             callback=self._start_import)

    def _start_import(self, request: ImportRequest | None) -> None:
        if request is not None:
            self.run_import(request)

    @work(thread=True, exclusive=True, group="dataset-import")
    def run_import(self, request: ImportRequest) -> None:
        from engine.prepare import PrepareError, prepare

        worker = get_current_worker()

        def progress(done: int, total: int, name: str) -> None:
            self._progress = ("Importing", done, total)

        try:
            result = prepare(self.zapp.project, self.zapp.settings, request.raw, request.options,
                             progress=progress, cancel=lambda: worker.is_cancelled)
        except (PrepareError, OSError) as exc:
            self.app.call_from_thread(self.notify, str(exc), title="Import", severity="error", timeout=10)
            return
        finally:
            self._progress = None
        self.app.call_from_thread(self._import_done, result)

    def _import_done(self, result: Any) -> None:
        if result.written:
            self._select = result.written[0].dest
        self.notify(f"imported {len(result.written)}, skipped {len(result.skipped)}"
                    + (f", unchanged {result.unchanged}" if result.unchanged else ""), title="Import")
        self.app.push_screen(ReportScreen("Import summary", result.lines()))
        self.rescan()

    # --- command palette --------------------------------------------------------------------------------------
    def palette_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("Dataset: import raw photos", "Crop, resize and caption a folder of photos (i)",
                            self.action_import_raw)
        yield SystemCommand("Dataset: health report", "The full report `zchar check` prints",
                            self.action_show_report)
        yield SystemCommand("Dataset: check again", "Rescan dataset/ (r)", self.action_rescan)
        for view in VIEWS:
            yield SystemCommand(f"Dataset: show {view}", f"List {view} images", lambda v=view: self.set_view(v))
