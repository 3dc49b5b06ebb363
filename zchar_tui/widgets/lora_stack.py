"""The LoRA stack: LoRAs from the project's loras/ (checkpoints included) or outside files (copied in first), each
with a strength and the guide's band, and a warning when the strengths total more than 2.0."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Select, Static

from engine.jobs import LORA_TOTAL_WARNING, lora_files
from engine.project import Project
from zchar_tui.project_files import import_lora
from zchar_tui.prompt_matrix import strength_band
from zchar_tui.safe_text import escape

STEP = 0.05


def lora_choices(project: Project) -> list[tuple[str, str]]:
    """(label, path relative to the project) of every LoRA file: finals first, then checkpoints by run and step."""
    root = project.loras_dir
    if not root.is_dir():
        return []
    files = sorted(lora_files(project), key=lambda p: (p.parent != root, str(p)))
    out = []
    for path in files:
        rel = path.relative_to(project.root)
        parts = path.relative_to(root).parts
        label = path.stem if len(parts) == 1 else f"{' / '.join(parts[-3:-1])}  ({path.stem})"
        out.append((escape(label), str(rel)))
    return out


class StackTable(DataTable):
    BINDINGS = [
        Binding("plus,equals_sign,right", "nudge(1)", "Stronger", id="lora_stronger", tooltip="Strength +0.05"),
        Binding("minus,left", "nudge(-1)", "Weaker", id="lora_weaker", tooltip="Strength −0.05"),
        Binding("delete,backspace", "remove", "Remove LoRA", id="lora_remove", tooltip="Take the LoRA off the stack"),
    ]

    def action_nudge(self, direction: int) -> None:
        self.parent_stack().nudge(self.cursor_row, direction * STEP)

    def action_remove(self) -> None:
        self.parent_stack().remove(self.cursor_row)

    def parent_stack(self) -> LoraStack:
        return next(a for a in self.ancestors if isinstance(a, LoraStack))


class LoraStack(Vertical):
    """`value` is the stack as job parameters: [{path, strength}]."""

    DEFAULT_CSS = """
    LoraStack { height: auto; }
    LoraStack #lora-pick, LoraStack #lora-import { margin-bottom: 1; }
    LoraStack #lora-table { height: auto; max-height: 8; }
    LoraStack #lora-total { padding: 0 1; }
    """

    def __init__(self, project: Project, default_strength: float = 0.8, **kw: Any) -> None:
        super().__init__(**kw)
        self.project = project
        self.default_strength = default_strength
        self._items: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Select([], prompt="add a LoRA from loras/ …", id="lora-pick", allow_blank=True, compact=True)
        yield Input(placeholder="…or a .safetensors file outside the project (Enter copies it into loras/)",
                    id="lora-import", compact=True)
        yield StackTable(id="lora-table", cursor_type="row", show_cursor=True, zebra_stripes=False)
        yield Static(id="lora-total")

    def on_mount(self) -> None:
        self.query_one(StackTable).add_columns("LoRA", "strength", "band")
        self.refresh_choices()
        self._redraw()

    @property
    def value(self) -> list[dict[str, Any]]:
        return [{"path": i["path"], "strength": round(i["strength"], 3)} for i in self._items]

    def set_value(self, loras: list[dict[str, Any]]) -> None:
        self._items = [{"path": lo["path"], "strength": float(lo.get("strength", self.default_strength))}
                       for lo in loras]
        self._redraw()

    def refresh_choices(self) -> None:
        self.query_one("#lora-pick", Select).set_options(lora_choices(self.project))

    def add(self, path: str, strength: float | None = None) -> None:
        if any(i["path"] == path for i in self._items):
            self.app.notify(f"{Path(path).name} is already on the stack", timeout=3)
            return
        self._items.append({"path": path, "strength": self.default_strength if strength is None else strength})
        self._redraw()

    def nudge(self, row: int, delta: float) -> None:
        if 0 <= row < len(self._items):
            item = self._items[row]
            item["strength"] = max(-4.0, min(4.0, round(item["strength"] + delta, 2)))
            self._redraw()

    def remove(self, row: int) -> None:
        if 0 <= row < len(self._items):
            del self._items[row]
            self._redraw()

    def total(self) -> float:
        return sum(abs(i["strength"]) for i in self._items)

    def _redraw(self) -> None:
        table = self.query_one(StackTable)
        row = table.cursor_row
        table.clear()
        styles = {"ok": "", "muted": "dim", "warning": "bold yellow"}
        for item in self._items:
            band, kind = strength_band(item["strength"])
            table.add_row(Path(item["path"]).stem, f"{item['strength']:.2f}", Text(band, style=styles[kind]))
        if self._items:
            table.move_cursor(row=min(row, len(self._items) - 1))
        total = self.total()
        line = self.query_one("#lora-total", Static)
        if not self._items:
            line.update("No LoRA: the base model alone. Pick one above; +/− change the strength, Del removes.")
            line.set_class(False, "warning-text")
        elif total > LORA_TOTAL_WARNING:
            line.update(f"Total strength {total:.2f} is over {LORA_TOTAL_WARNING:.1f}: expect artefacts; "
                        "lower some strengths.")
            line.set_class(True, "warning-text")
        else:
            line.update(f"Total strength {total:.2f} (keep it at {LORA_TOTAL_WARNING:.1f} or less)")
            line.set_class(False, "warning-text")

    @on(Select.Changed, "#lora-pick")
    def _picked(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.add(event.value)
            event.select.clear()

    @on(Input.Submitted, "#lora-import")
    def _import(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self._copy_in(event.value.strip())

    @work(thread=True, group="lora-import")
    def _copy_in(self, source: str) -> None:
        """Copying a large file must not block the UI."""
        try:
            path = import_lora(self.project, source)
        except (OSError, ValueError) as exc:
            self.app.call_from_thread(self.app.notify, str(exc), title="LoRA not added", severity="error")
            return
        rel = str(path.relative_to(self.project.root))
        self.app.call_from_thread(self._imported, rel)

    def _imported(self, rel: str) -> None:
        self.query_one("#lora-import", Input).value = ""
        self.refresh_choices()
        self.add(rel)
