"""Training pane: run settings, Start/Stop/Resume, live loss chart, progress with ETA, GPU gauges, warnings,
the validation contact sheet and the checkpoint list.

Events only mark what changed (`on_engine_event`); a 0.5 s timer redraws what is marked, and the chart at most
once a second, so a fast stream of metrics or a 10k-step snapshot costs one redraw.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np
from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.lazy import Lazy
from textual.widgets import Button, Static, TabbedContent, TabPane

from engine import protocol
from engine.project import with_trigger
from zchar_tui.client import EngineError
from zchar_tui.screens.base import PaneScreen
from zchar_tui.screens.dialogs import ConfirmScreen
from zchar_tui.training_warnings import loss_warnings, vram_warnings
from zchar_tui.widgets.checkpoint_list import CheckpointList, lora_file
from zchar_tui.widgets.contact_sheet import ContactSheet
from zchar_tui.widgets.gpu_gauges import GpuGauges
from zchar_tui.widgets.loss_chart import LossChart
from zchar_tui.widgets.run_form import RunForm
from zchar_tui.widgets.train_progress import TrainProgress, figures

TICK_S = 0.5
CHART_EVERY_S = 1.0
COMPARE_STRENGTHS = [0.6, 0.8, 1.0]


class TrainingScreen(PaneScreen):
    MODE = "training"
    TITLE = "Training"
    HELP = ("Settings are saved to project.toml when you press Enter or leave a field, and apply to the next run. "
            "Quitting the dashboard (or losing SSH) leaves the run going: `zchar open` shows it again. "
            "In the chart (focus it with Tab or a click) +/- zoom, arrows pan and 0 fits the data again; "
            "the mouse wheel zooms too.")
    BINDINGS = [
        Binding("s", "start", "Start", id="train_start", tooltip="Queue a new training run with these settings"),
        Binding("x", "stop", "Stop", id="train_stop", tooltip="Finish the step, save a checkpoint, stop (resumable)"),
        Binding("r", "resume", "Resume", id="train_resume", tooltip="Carry on the latest run from its last checkpoint"),
        Binding("n", "sample_now", "Sample now", id="train_sample", tooltip="Render the validation prompts now"),
        Binding("w", "save_now", "Save now", id="train_save", tooltip="Save a checkpoint now"),
        Binding("l", "toggle_log", "Log scale", id="chart_log", tooltip="Loss chart: linear / logarithmic"),
        Binding("z", "zoom", "Zoom", id="chart_zoom", tooltip="Loss chart: all steps / last 10k / 1k / 200"),
        Binding("t", "switch_tab", "Samples/Ckpts", id="train_tab", tooltip="Show samples or checkpoints"),
        Binding("v", "samples", "View samples", id="train_view_samples", show=False,
                tooltip="Go to the newest validation samples (arrows move, Enter opens)"),
        Binding("p", "pin", "Pin", id="checkpoint_pin", show=False,
                tooltip="Pin/unpin the highlighted checkpoint (pinned ones are kept)"),
        Binding("c", "compare", "Compare", id="checkpoint_compare", show=False,
                tooltip="Compare marked (Space) or highlighted checkpoints at strengths 0.6/0.8/1.0"),
        Binding("e", "edit_settings", "Settings", id="train_settings", show=False,
                tooltip="Jump to the run settings form"),
        Binding("escape", "leave_form", "Leave form", id="train_leave_form", show=False,
                tooltip="Back from the settings form to the chart"),
    ]
    DEFAULT_CSS = """
    TrainingScreen #train-body { height: 1fr; }
    TrainingScreen #train-left { width: 46; border-right: vkey $panel; }
    TrainingScreen #train-right { width: 1fr; }
    TrainingScreen #gpu-gauges { max-height: 50%; overflow-y: auto; padding: 0 1; }
    TrainingScreen #train-buttons { height: 1; padding: 0 1; }
    TrainingScreen #train-buttons Button { margin-right: 1; min-width: 8; }
    TrainingScreen #train-tabs { height: 45%; }
    """

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="train-body"):
            with Vertical(id="train-left"):
                yield Static("GPU", classes="section-title")
                yield GpuGauges(id="gpu-gauges")
                yield Static("Run settings", classes="section-title")
                yield Lazy(RunForm(id="run-form"))  # mounted after the first frame: a reattach shows data first
            with Vertical(id="train-right"):
                yield TrainProgress(id="train-progress")
                with Horizontal(id="train-buttons"):
                    for label, action, variant in (("Start s", "start", "success"), ("Stop x", "stop", "error"),
                                                   ("Resume r", "resume", "primary"), ("Sample n", "sample_now",
                                                                                       "default"),
                                                   ("Save w", "save_now", "default")):
                        yield Button(label, id=f"btn-{action}", variant=variant, compact=True)
                yield LossChart(id="loss-chart")
                with TabbedContent(id="train-tabs"):
                    with TabPane("Samples", id="tab-samples"):
                        yield ContactSheet(self.zapp.project.root, id="contact-sheet")
                    with TabPane("Checkpoints", id="tab-checkpoints"):
                        yield CheckpointList(id="checkpoints")

    def on_mount(self) -> None:  # PaneScreen.on_mount runs too (Textual calls each class's handler)
        self._dirty: set[str] = {"all"}
        self._series_key: Any = None
        self._chart_at = 0.0
        self._loading_at = 0.0
        self._metric_at = 0.0
        self.query_one(GpuGauges).record(self.zapp.state.telemetry)
        self.set_interval(TICK_S, self.redraw)
        self.call_after_refresh(self.redraw)
        self.query_one(LossChart).query_one("#loss-plot").focus()

    def on_screen_resume(self) -> None:  # PaneScreen's runs too (Textual calls each class's handler)
        self._dirty.add("all")
        self.redraw()

    # --- events: mark, never draw -------------------------------------------------------------------------
    def on_engine_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == protocol.EV_TELEMETRY:
            self.query_one(GpuGauges).record(data)
            self._dirty.add("gpu")
        elif kind == protocol.EV_METRIC:
            self._metric_at = time.monotonic()
            self._dirty.add("metrics")
        elif kind == protocol.EV_LOADING:
            self._loading_at = time.monotonic()
            self._dirty.add("progress")
        elif kind in (protocol.EV_SAMPLE, protocol.EV_REWIND):
            self._dirty.update(("samples", "metrics"))
        elif kind in (protocol.EV_CHECKPOINT, protocol.EV_CHECKPOINT_REMOVED):
            self._dirty.add("checkpoints")
        elif kind in (protocol.EV_RUN, protocol.EV_JOB, protocol.EV_PROGRESS, protocol.EV_ENGINE):
            self._dirty.add("progress")
        elif kind == "settings":
            for form in self.query(RunForm):
                form.refresh_values()
            self._dirty.add("progress")
        elif kind in ("snapshot", "disconnected"):
            self.query_one(GpuGauges).record(self.zapp.state.telemetry)
            self._dirty.add("all")

    # --- drawing (timer) ----------------------------------------------------------------------------------
    def redraw(self, force: bool = False) -> None:
        if not self.is_current and not force:
            return
        dirty, self._dirty = self._dirty, set()
        every = "all" in dirty
        state = self.zapp.state
        h = state.history
        if every or "gpu" in dirty:
            self.query_one(GpuGauges).show(state.telemetry)
        now = time.monotonic()
        chart_due = every or force or now - self._chart_at >= CHART_EVERY_S - 0.05
        if "metrics" in dirty and not chart_due:
            self._dirty.add("metrics")  # draw with the next tick that is due
        if (every or "metrics" in dirty) and chart_due:
            self._chart_at = now
            self._update_chart()
        if every or dirty & {"metrics", "progress", "gpu"}:
            self._update_progress()
        if every or "samples" in dirty:
            self.query_one(ContactSheet).show(h.name if h else None, list(h.samples) if h else [])
        if every or "checkpoints" in dirty:
            self.query_one(CheckpointList).show(h.name if h else None, h.checkpoints if h else {})

    def _update_chart(self) -> None:
        h = self.zapp.state.history
        chart = self.query_one(LossChart)
        steps = h.columns["step"] if h else ()
        key = (id(h), len(steps), steps[-1] if len(steps) else None)
        if key != self._series_key:
            self._series_key = key
            if h is None:
                chart.set_data(np.empty(0), np.empty(0), np.empty(0))
            else:  # copies: array('d') columns keep growing, a numpy view would pin their buffers
                chart.set_data(np.array(h.columns["step"]), np.array(h.columns["loss"]),
                               np.array(h.columns["loss_smooth"]))
        chart.redraw()

    def _update_progress(self) -> None:
        state = self.zapp.state
        h = state.history
        panel = self.query_one(TrainProgress)
        job = state.active_train_job()
        loading = state.loading.get(job["id"]) if job else None
        if not loading or loading.get("stage") == "ready" or self._loading_at < self._metric_at:
            loading = None  # hidden once loading is over or steps are arriving
        if h is None:
            panel.show(None, loading=loading)
            panel.show_warnings(vram_warnings(state.telemetry))
            return
        run_train = ((h.run.get("config") or {}).get("train") or {})  # the settings the run was started with
        optimizer = run_train.get("optimizer") or self.zapp.settings.train.optimizer
        f = figures(h, state.progress.get(job["id"]) if job else None)
        panel.show(f, prodigy=optimizer == "prodigy", loading=loading)
        chart = self.query_one(LossChart)
        warnings = loss_warnings(chart.steps, chart.loss, chart.smooth, f.total_steps) if f.state in (
            "running", "stopping") else []
        panel.show_warnings(warnings + vram_warnings(state.telemetry))

    # --- actions ------------------------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id and event.button.id.startswith("btn-"):
            event.stop()
            getattr(self, f"action_{event.button.id.removeprefix('btn-')}")()

    def action_start(self) -> None:
        job = self.zapp.state.active_train_job()
        if job:
            self.notify(f"training job {job['id']} is already {job['state']}; stop it first", severity="warning")
            return
        self.zapp.submit_job("train", {})

    def action_resume(self) -> None:
        job = self.zapp.state.active_train_job()
        if job:
            self.notify(f"training job {job['id']} is already {job['state']}", severity="warning")
            return
        h = self.zapp.state.history
        self.zapp.submit_job("train", {"resume": True, **({"run": h.name} if h else {})})

    def action_stop(self) -> None:
        job = self.zapp.state.active_train_job()
        if not job:
            self.notify("no training run is queued or running", severity="warning")
            return
        if job["state"] == "stopping":
            self.notify("already stopping: the run finishes its step and saves a checkpoint")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.zapp.engine_call("cancel", job_id=job["id"])

        what = "Stop after this step? A checkpoint is saved; r resumes." if job[
            "state"] == "running" else f"Cancel queued training job {job['id']}?"
        self.app.push_screen(ConfirmScreen(what, yes="Stop"), answer)

    def _request(self, what: str) -> None:
        job = self.zapp.state.active_train_job()
        if not job or job["state"] != "running":
            self.notify(f"no training run is running to {what}", severity="warning")
            return
        self.zapp.engine_call("train_request", job_id=job["id"], what=what)
        self.notify("sampling at the end of this step" if what == "sample" else "saving a checkpoint after this step",
                    timeout=3)

    def action_sample_now(self) -> None:
        self._request("sample")

    def action_save_now(self) -> None:
        self._request("save")

    def action_toggle_log(self) -> None:
        self.query_one(LossChart).toggle_log()
        self._redraw_chart_now()

    def action_zoom(self) -> None:
        self.query_one(LossChart).cycle_zoom()
        self._redraw_chart_now()

    def _redraw_chart_now(self) -> None:
        self._chart_at = time.monotonic()
        self._update_chart()

    def action_switch_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = "tab-checkpoints" if tabs.active == "tab-samples" else "tab-samples"

    def action_edit_settings(self) -> None:
        fields = self.query("RunForm Input, RunForm Select")
        if fields:  # the form mounts just after the first frame
            fields.first().focus()

    def action_samples(self) -> None:
        self.query_one(TabbedContent).active = "tab-samples"
        self.query_one(ContactSheet).focus_latest()

    def action_leave_form(self) -> None:
        self.query_one(LossChart).query_one("#loss-plot").focus()

    def action_pin(self) -> None:
        table = self.query_one(CheckpointList)
        ckpt = table.highlighted()
        if ckpt is None or table.run is None:
            self.notify("no checkpoint highlighted (press t for the checkpoint list)", severity="warning")
            return
        self.zapp.engine_call("pin", run=table.run, step=int(ckpt["step"]), pinned=not ckpt.get("pinned"))

    def action_compare(self) -> None:
        table = self.query_one(CheckpointList)
        chosen = table.selection()
        if not chosen:
            self.notify("no checkpoint to compare yet", severity="warning")
            return
        root = self.zapp.project.root
        loras = [lora_file(root, c) for c in chosen]
        if None in loras:
            missing = [c["path"] for c, f in zip(chosen, loras, strict=True) if f is None]
            self.notify(f"no LoRA file found in {', '.join(missing)}", severity="error")
            return
        s = self.zapp.settings
        params = {"prompt": with_trigger(s.trigger, s.validation.prompts[0]), "seed": s.validation.seeds[0],
                  "loras": loras, "strengths": list(COMPARE_STRENGTHS)}
        self.submit_comparison(params)

    @work(group="engine-call")
    async def submit_comparison(self, params: dict[str, Any]) -> None:
        """A `grid` job (checkpoints × strengths); with one checkpoint and no grid kind, plain generations."""
        try:
            result = await self.zapp.engine_request("submit", kind="grid", params=params)
        except EngineError as exc:
            if "unknown job kind" not in str(exc) or len(params["loras"]) != 1:
                self.notify(str(exc), title="Cannot queue the comparison", severity="error", timeout=10)
                return
            ids = []
            for strength in params["strengths"]:
                gen = {"prompt": params["prompt"], "seed": params["seed"], "seed_mode": "fixed",
                       "loras": [{"path": params["loras"][0], "strength": strength}]}
                try:
                    ids += (await self.zapp.engine_request("submit", kind="gen", params=gen))["job_ids"]
                except EngineError as gen_exc:
                    self.notify(str(gen_exc), title="Cannot queue the comparison", severity="error", timeout=10)
                    return
            self.notify(f"queued comparison (jobs {', '.join(map(str, ids))}): this checkpoint at strengths "
                        f"{', '.join(map(str, params['strengths']))}; see the Queue pane", timeout=5)
            return
        ids = result.get("job_ids", [])
        self.notify(f"queued comparison grid (job {', '.join(map(str, ids))}): {len(params['loras'])} checkpoint(s) "
                    f"× strengths {', '.join(map(str, params['strengths']))}; see the Queue pane", timeout=5)

    def palette_commands(self) -> Iterable[SystemCommand]:
        for b in self.BINDINGS:
            if isinstance(b, Binding) and b.id != "train_leave_form":
                yield SystemCommand(f"Training: {b.description}", b.tooltip or b.description,
                                    getattr(self, f"action_{b.action}"))
