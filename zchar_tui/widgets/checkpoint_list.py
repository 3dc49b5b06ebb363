"""The run's checkpoints: step, epoch, loss at save, pinned flag; Space marks rows for a comparison."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist


def lora_file(project_root: Path, checkpoint: dict[str, Any]) -> str | None:
    """The LoRA weights of a checkpoint, relative to the project: the path itself when it is a file, else the
    `*-stepNNNNNN.safetensors` in its folder (the optimizer state next to it is not a LoRA)."""
    rel = checkpoint["path"]
    path = project_root / rel
    if path.suffix == ".safetensors":
        return rel
    if not path.is_dir():
        return None
    step = int(checkpoint["step"])
    named = sorted(path.glob(f"*-step{step:06d}.safetensors")) or sorted(path.glob("*-step*.safetensors"))
    return str(named[0].relative_to(project_root)) if named else None


class CheckpointList(DataTable):
    DEFAULT_CSS = """
    CheckpointList { height: 1fr; }
    """
    BINDINGS = [
        Binding("space", "mark", "Mark", id="checkpoint_mark", tooltip="Mark/unmark for a comparison grid"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.run: str | None = None
        self.checkpoints: dict[int, dict[str, Any]] = {}
        self.marked: set[int] = set()
        self._shown: Any = None

    def on_mount(self) -> None:
        self.add_column(" ", key="mark", width=1)
        self.add_column("step", key="step")
        self.add_column("epoch", key="epoch")
        self.add_column("loss at save", key="loss")
        self.add_column("pinned", key="pinned")
        self.add_column("folder", key="path")

    def show(self, run: str | None, checkpoints: dict[int, dict[str, Any]]) -> None:
        key = (run, tuple((s, c.get("pinned"), c.get("loss"), c.get("path")) for s, c in sorted(checkpoints.items())),
               tuple(sorted(self.marked)))
        if key == self._shown:
            return
        self._shown = key
        if run != self.run:
            self.marked.clear()
        self.run = run
        self.checkpoints = dict(checkpoints)
        self.marked &= set(checkpoints)
        current = self.highlighted_step()
        self.clear()
        for step, c in sorted(checkpoints.items()):
            loss = c.get("loss")
            self.add_row(
                Text("●", style="bold") if step in self.marked else "",
                str(step),
                "" if c.get("epoch") is None else str(c["epoch"]),
                f"{loss:.4f}" if isinstance(loss, (int, float)) and math.isfinite(loss) else "n/a",
                Text("★ pinned", style="bold") if c.get("pinned") else "",
                c.get("path", ""),
                key=str(step),
            )
        if current in checkpoints:
            self.move_cursor(row=self.get_row_index(str(current)))
        elif checkpoints:
            self.move_cursor(row=len(checkpoints) - 1)

    def highlighted_step(self) -> int | None:
        if not self.row_count or self.cursor_row < 0:
            return None
        try:
            return int(self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value or "")
        except (CellDoesNotExist, ValueError):
            return None

    def highlighted(self) -> dict[str, Any] | None:
        step = self.highlighted_step()
        return self.checkpoints.get(step) if step is not None else None

    def selection(self) -> list[dict[str, Any]]:
        """The marked checkpoints (by step), or the highlighted one when none is marked."""
        if self.marked:
            return [self.checkpoints[s] for s in sorted(self.marked) if s in self.checkpoints]
        one = self.highlighted()
        return [one] if one else []

    def action_mark(self) -> None:
        step = self.highlighted_step()
        if step is None:
            return
        self.marked ^= {step}
        self.show(self.run, self.checkpoints)
