"""The Dataset pane's Import dialog: the options of `zchar prepare`, checked before anything runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from engine.prepare import PrepareOptions


@dataclass
class ImportRequest:
    raw: Path
    options: PrepareOptions


class ImportScreen(ModalScreen[ImportRequest | None]):
    DEFAULT_CSS = """
    ImportScreen { align: center middle; }
    ImportScreen #import-box { width: 76; max-width: 95%; height: auto; border: round $primary;
                               background: $surface; padding: 0 1; }
    ImportScreen .import-label { margin-top: 1; }
    ImportScreen .import-row { height: 1; margin: 1 0; }
    ImportScreen .import-row Input { width: 10; }
    ImportScreen #import-checks { height: auto; }
    ImportScreen #import-buttons { height: auto; align: right middle; }
    ImportScreen #import-buttons Button { margin-left: 2; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="import_cancel")]

    def __init__(self, default_raw: str, face_check: str) -> None:
        super().__init__()
        self.default_raw = default_raw
        self.face_check = face_check  # '' when faces can be detected

    def compose(self) -> ComposeResult:
        with Vertical(id="import-box"):
            yield Label("Import raw photos into dataset/", classes="section-title")
            yield Static("Every image under the folder is oriented, converted to RGB, cropped square, resized and "
                         "given a caption stub. The folder is never modified; existing dataset images are kept "
                         "unless you tick overwrite.", classes="muted")
            yield Label("Folder of raw photos", classes="import-label")
            yield Input(self.default_raw, placeholder="path/to/raw", id="import-raw", compact=True)
            with Horizontal(classes="import-row"):
                yield Label("Side (px) ")
                yield Input("1024", id="import-size", type="integer", compact=True)
                yield Label("   Face / crop side ")
                yield Input("0.6", id="import-ratio", type="number", compact=True)
            face = Checkbox("Crop around the face", id="import-face", value=not self.face_check, compact=True)
            if self.face_check:
                face.disabled = True
                face.tooltip = self.face_check
            with Vertical(id="import-checks"):
                yield face
                yield Checkbox("Lossless PNG (default: JPEG quality 95)", id="import-png", compact=True)
                yield Checkbox("Overwrite dataset images of the same name", id="import-force", compact=True)
            yield Label("", id="import-error", classes="error-text")
            with Horizontal(id="import-buttons"):
                yield Button("Cancel", id="import-no")
                yield Button("Import", id="import-yes", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#import-raw", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "import-yes":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _submit(self) -> None:
        from engine.prepare import PrepareError

        raw = Path(self.query_one("#import-raw", Input).value.strip()).expanduser()
        error = self.query_one("#import-error", Label)
        if not str(raw) or not raw.is_dir():
            error.update(f"{raw}: not a folder")
            return
        try:
            options = PrepareOptions(
                size=int(self.query_one("#import-size", Input).value or 0),
                crop_face_ratio=float(self.query_one("#import-ratio", Input).value or 0),
                face_detect=self.query_one("#import-face", Checkbox).value and not self.face_check,
                force=self.query_one("#import-force", Checkbox).value,
                format="png" if self.query_one("#import-png", Checkbox).value else "jpg",
            )
            options.check()
        except (ValueError, PrepareError) as exc:
            error.update(str(exc).replace("--", ""))
            return
        self.dismiss(ImportRequest(raw, options))
