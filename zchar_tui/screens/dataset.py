"""Dataset pane (issue: dataset review). For now: the images and captions the project has."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import DataTable

from engine.project import list_images
from zchar_tui.screens.base import PaneScreen


class DatasetScreen(PaneScreen):
    MODE = "dataset"
    TITLE = "Dataset"

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="dataset-table", classes="pane-body", cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("image", "caption")
        project = self.zapp.project
        excluded = set(self.zapp.settings.excluded)
        for img in list_images(project.dataset_dir):
            cap = img.with_suffix(".txt")
            caption = cap.read_text("utf-8", errors="replace").strip() if cap.is_file() else "(no caption)"
            name = f"{img.name} (excluded)" if img.name in excluded else img.name
            table.add_row(name, caption[:200])
