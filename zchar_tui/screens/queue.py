"""Queue pane: every job of the engine with its state and progress, keys to cancel, retry, duplicate with a new
seed, reorder and remove, and a gallery of results; a result's prompt can be sent back to the Prompts pane."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from engine import protocol
from engine.jobs import params_from_meta
from zchar_tui.safe_text import escape
from zchar_tui.screens.base import PaneScreen
from zchar_tui.screens.dialogs import ConfirmScreen
from zchar_tui.widgets.gallery import Gallery, ResultScreen

STATE_STYLE = {"queued": "", "running": "bold green", "stopping": "yellow", "done": "dim", "failed": "bold red",
               "cancelled": "dim yellow", "stopped": "yellow"}
BAR = 10
# Every change to a DataTable repaints all its visible rows and a rebuild costs per row it holds, so a long queue is
# listed as a window: the jobs first in line and the newest finished ones (the CLI's `zchar queue` lists them all).
MAX_ROWS = 300
# A running job's progress reports change its progress and message with every step, and each change repaints the
# whole table (20-30 ms): they are shown every 2 s rather than every 0.5 s tick (a job's own changes show at once).
LIVE_EVERY_S = 2.0
LIVE_COLUMNS = frozenset({3, 6})  # progress, message
Cells = tuple[Any, ...]


def progress_cell(fraction: float) -> Text:
    filled = max(0, min(BAR, round(fraction * BAR)))
    return Text("█" * filled + "░" * (BAR - filled) + f" {100 * fraction:3.0f}%")


def job_summary(job: dict[str, Any]) -> str:
    p = job["params"]
    if job["kind"] == "train":
        return f"training run {p.get('run') or ''}" + (" (resume)" if p.get("resume") else "")
    text = p.get("prompt", "")
    if job["kind"] == "grid":
        text = f"grid {len(p.get('loras', []))}×{len(p.get('strengths', []))}: {text}"
    if p.get("loras") and job["kind"] == "gen":
        text += "  + " + ", ".join(f"{Path(lo['path']).stem}:{lo['strength']:g}" for lo in p["loras"])
    if p.get("references"):
        text += f"  (reference @ {p.get('reference_strength', 0):g})"
    return text


def window(jobs: list[dict[str, Any]], limit: int = MAX_ROWS) -> list[dict[str, Any]]:
    """The jobs to list (`jobs` in queue order, and so the result): the active ones first in line and the newest
    finished ones; active jobs take the room they need but leave a fifth of it to finished ones."""
    if len(jobs) <= limit:
        return jobs
    active = [j for j in jobs if j["state"] in protocol.ACTIVE_STATES]
    finished = sorted((j for j in jobs if j["state"] not in protocol.ACTIVE_STATES),
                      key=lambda j: (j.get("finished") or 0, j["id"]))
    n_finished = min(len(finished), max(limit // 5, limit - len(active)))
    keep = {j["id"] for j in active[:limit - n_finished]} | {j["id"] for j in finished[len(finished) - n_finished:]}
    return [j for j in jobs if j["id"] in keep]


def row_cells(job: dict[str, Any], live: dict[str, Any] | None) -> Cells:
    fraction = live["step"] / live["total"] if live and live.get("total") else job["progress"]
    message = job["error"] or (live or {}).get("message") or job["message"]
    return (str(job["id"]), job["kind"], Text(job["state"], style=STATE_STYLE.get(job["state"], "")),
            progress_cell(fraction if job["state"] != "done" else 1.0), str(job["params"].get("seed", "")),
            escape(job_summary(job)[:48]), escape(message))


class QueueScreen(PaneScreen):
    MODE = "queue"
    TITLE = "Queue"
    DEFAULT_CSS = """
    QueueScreen #jobs-column { width: 3fr; }
    QueueScreen #jobs-hidden { height: 1; padding: 0 1; color: $text-muted; }
    QueueScreen #gallery { width: 2fr; min-width: 40; }
    """
    HELP = ("Jobs run one at a time in queue order (training first unless moved). A job that was running when the "
            "engine stopped runs again on its next start; finished images are never lost. Results are in "
            "outputs/DATE/ with their parameters inside the PNG.")
    BINDINGS = [
        Binding("c", "cancel", "Cancel", id="queue_cancel",
                tooltip="Cancel the job (a running one stops at the next step)"),
        Binding("r", "retry", "Re-run", id="queue_retry", tooltip="Queue the job again with the same parameters"),
        Binding("d", "duplicate", "New seed", id="queue_duplicate", tooltip="Queue a copy with a new random seed"),
        Binding("shift+up,K", "move('up')", "Move up", id="queue_up", tooltip="Move the job up the queue"),
        Binding("shift+down,J", "move('down')", "Move down", id="queue_down", tooltip="Move the job down the queue"),
        Binding("x,delete", "remove", "Remove", id="queue_remove", tooltip="Forget a finished job (its files stay)"),
        Binding("p", "to_builder", "To builder", id="queue_to_builder",
                tooltip="Send the result's prompt, seed and LoRAs back to the Prompts pane"),
        Binding("o,enter", "open", "Open", id="queue_open", tooltip="Show the result large, with its parameters"),
        Binding("left_square_bracket", "browse(-1)", "Newer", id="queue_newer", tooltip="Newer result in the gallery"),
        Binding("right_square_bracket", "browse(1)", "Older", id="queue_older", tooltip="Older result in the gallery"),
    ]

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="queue-body", classes="pane-body"):
            with Vertical(id="jobs-column"):
                yield Static(id="jobs-hidden")
                yield DataTable(id="jobs-table", cursor_type="row")
            yield Gallery(self.zapp.project.root, self.zapp.config.image_protocol, id="gallery")

    def on_mount(self) -> None:
        self._columns = self.query_one(DataTable).add_columns("job", "kind", "state", "progress", "seed", "what",
                                                               "message")
        self.query_one("#jobs-hidden").display = False
        self._rebuild = True  # the whole list (after a snapshot); otherwise only the jobs in `_changed`
        self._changed: set[int] = set()
        self._live: set[int] = set()  # jobs with new progress reports only
        self._shown: dict[str, Cells] = {}  # row key -> cells, in table order
        self._live_at = 0.0  # when live cells were last brought up to date
        self._outputs_dirty = True
        self._highlighted: int | None = None
        self.set_interval(0.5, self._redraw)
        self._redraw()
        self.query_one(DataTable).focus()

    def on_screen_resume(self) -> None:  # PaneScreen's runs too (Textual calls each class's handler)
        self._redraw()

    def on_engine_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind in (protocol.EV_JOB, protocol.EV_JOB_REMOVED):
            self._changed.add(data["id"])
        elif kind == protocol.EV_PROGRESS:
            self._live.add(data["job_id"])
        elif kind in ("snapshot", "disconnected"):
            self._rebuild = True
        if kind in (protocol.EV_RESULT, "snapshot"):
            self._outputs_dirty = True

    def palette_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("Queue: cancel job", "Cancel the selected job", self.action_cancel)
        yield SystemCommand("Queue: re-run job", "Queue the selected job again", self.action_retry)
        yield SystemCommand("Queue: duplicate with a new seed", "Copy the job with a new seed", self.action_duplicate)
        yield SystemCommand("Queue: send prompt to builder", "Fill the Prompts pane from the result",
                            self.action_to_builder)

    # --- drawing (timer; only while shown, so a stream of events costs nothing on the other panes) --------------
    def _redraw(self) -> None:
        if not self.is_current:
            return
        if self._outputs_dirty:
            self._outputs_dirty = False
            self.query_one(Gallery).set_outputs(self.zapp.state.outputs)
        if not (self._rebuild or self._changed or self._live):
            return
        state = self.zapp.state
        ordered = state.ordered_jobs()
        jobs = window(ordered)
        rows = {str(j["id"]): row_cells(j, state.progress.get(j["id"])) for j in jobs}
        table = self.query_one(DataTable)
        selected = self.selected_job()
        kept = [key for key in self._shown if key in rows]
        deferred: set[int] = set()
        # removing a row costs far more than adding one (a rebuild of 300 rows: 5 ms; removing 270 of them: 40 ms)
        if self._rebuild or kept != list(rows)[:len(kept)] or len(self._shown) - len(kept) > MAX_ROWS // 4:
            table.clear()
            for key, cells in rows.items():
                table.add_row(*cells, key=key)
        else:  # the same rows in the same order, some gone and some new at the end: change only what changed
            now = time.monotonic()
            live_due = now - self._live_at >= LIVE_EVERY_S
            if live_due:
                self._live_at = now
            for key in self._shown.keys() - rows.keys():
                table.remove_row(key)
            for key in kept:
                shown, new = self._shown[key], rows[key]
                changed = [i for i in range(len(new)) if shown[i] != new[i]]
                if changed and not live_due and int(key) not in self._changed and LIVE_COLUMNS.issuperset(changed):
                    rows[key] = shown  # still shown as it was
                    deferred.add(int(key))
                    continue
                for i in changed:
                    table.update_cell(key, self._columns[i], new[i])
            for key in list(rows)[len(kept):]:
                table.add_row(*rows[key], key=key)
        self._shown = rows
        self._rebuild = False
        self._changed.clear()
        self._live = deferred
        hidden = self.query_one("#jobs-hidden", Static)
        hidden.display = len(jobs) < len(ordered)
        if hidden.display:
            queued = sum(1 for j in ordered if j["state"] == "queued") - sum(1 for j in jobs if j["state"] == "queued")
            hidden.update(f"listing {len(jobs):,} jobs, those first in line and the newest finished; {queued:,} more "
                          "are queued (`zchar queue` lists every job)")
        if selected is not None and str(selected["id"]) in rows:
            table.move_cursor(row=table.get_row_index(str(selected["id"])))

    # --- selection ----------------------------------------------------------------------------------------
    def selected_job(self) -> dict[str, Any] | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:
            return None
        return self.zapp.state.jobs.get(int(key)) if key else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        job = self.zapp.state.jobs.get(int(event.row_key.value)) if event.row_key.value else None
        if job is None or job["id"] == self._highlighted:
            return  # a redraw re-highlights the same row: keep what the user browsed to in the gallery
        self._highlighted = job["id"]
        for out in self.zapp.state.outputs:
            if out.get("job_id") == job["id"]:
                self.query_one(Gallery).select_path(out["path"])
                break

    def _job_or_say(self) -> dict[str, Any] | None:
        job = self.selected_job()
        if job is None:
            self.notify("No job selected.", severity="warning", timeout=3)
        return job

    # --- actions ------------------------------------------------------------------------------------------
    def action_cancel(self) -> None:
        job = self._job_or_say()
        if job:
            self.zapp.engine_call("cancel", job_id=job["id"])

    def action_retry(self) -> None:
        job = self._job_or_say()
        if job:
            self.zapp.engine_call("retry", job_id=job["id"])

    def action_duplicate(self) -> None:
        job = self._job_or_say()
        if job:
            self.zapp.engine_call("duplicate", job_id=job["id"], new_seed=True)

    def action_move(self, to: str) -> None:
        job = self._job_or_say()
        if job:
            self.zapp.engine_call("move", job_id=job["id"], to=to)

    def action_remove(self) -> None:
        job = self._job_or_say()
        if job is None:
            return
        if job["state"] in protocol.ACTIVE_STATES:
            self.notify(f"job {job['id']} is {job['state']}; cancel it first (c)", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.zapp.engine_call("remove", job_id=job["id"])

        self.app.push_screen(ConfirmScreen(f"Remove job {job['id']} from the list? Its images stay in outputs/.",
                                           yes="Remove"), answered)

    def action_browse(self, delta: int) -> None:
        self.query_one(Gallery).move(delta)

    def action_open(self) -> None:
        out = self.query_one(Gallery).selected
        if out is None:
            self.notify("No result yet.", severity="warning", timeout=3)
            return
        self.app.push_screen(ResultScreen(self.zapp.project.root, out, self.zapp.config.image_protocol))

    async def action_to_builder(self) -> None:
        params = self._builder_params()
        if params is None:
            self.notify("Choose a generation job or a result first.", severity="warning", timeout=3)
            return
        await self.app.switch_mode("prompts")
        screen = self.app.screen
        if hasattr(screen, "load_params"):
            screen.load_params(params)
            self.app.notify("prompt, seed and LoRAs sent to the builder", timeout=3)

    def _builder_params(self) -> dict[str, Any] | None:
        """The selected gen job's parameters, else those embedded in the gallery's chosen result."""
        job = self.selected_job()
        if job is not None and job["kind"] == "gen":
            return job["params"]
        out = self.query_one(Gallery).selected
        meta = out.get("params") if out else None
        if meta and meta.get("prompt") and not meta.get("grid"):
            return params_from_meta(meta)
        if meta and meta.get("prompt"):
            return {"prompt": meta["prompt"], "seed": meta.get("seed")}
        return None
