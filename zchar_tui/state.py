"""What the dashboard knows about the engine: a snapshot at attach, then kept current by events.

Screens read from here and redraw on their own timers; `listen()` tells them what changed. Pure Python, no I/O.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable
from typing import Any

from engine import protocol

Listener = Callable[[str, dict[str, Any]], None]
KEEP_FINISHED = 1000  # finished jobs kept (newest first), as the engine's snapshot: memory stays bounded


class RunHistory:
    """Metrics of one training run as compact columns, plus its samples and checkpoints."""

    def __init__(self, run: dict[str, Any]):
        self.run = run
        self.columns: dict[str, array[float]] = {c: array("d") for c in protocol.METRIC_COLUMNS}
        self.samples: list[dict[str, Any]] = []
        self.checkpoints: dict[int, dict[str, Any]] = {}
        self.latest: dict[str, Any] = {}  # the newest metric event (carries totals and ETA)

    @property
    def name(self) -> str:
        return self.run["name"]

    @property
    def steps(self) -> array[float]:
        return self.columns["step"]

    def __len__(self) -> int:
        return len(self.columns["step"])

    def load(self, history: dict[str, Any]) -> None:
        self.run = history.get("run", self.run)
        for c in protocol.METRIC_COLUMNS:
            self.columns[c] = array("d", (float("nan") if v is None else v for v in history["metrics"].get(c, [])))
        self.samples = list(history.get("samples", []))
        self.checkpoints = {c["step"]: c for c in history.get("checkpoints", [])}

    def add_metric(self, data: dict[str, Any]) -> None:
        step = data["step"]
        steps = self.columns["step"]
        if steps and step <= steps[-1]:
            self.rewind(step - 1)  # a resumed run re-does steps after its checkpoint
        for c in protocol.METRIC_COLUMNS:
            v = data.get(c)
            self.columns[c].append(float("nan") if v is None else float(v))
        self.latest = data

    def rewind(self, step: int) -> None:
        steps = self.columns["step"]
        keep = len(steps)
        while keep and steps[keep - 1] > step:
            keep -= 1
        for c in protocol.METRIC_COLUMNS:
            del self.columns[c][keep:]
        self.samples = [s for s in self.samples if s["step"] <= step]


class EngineState:
    def __init__(self) -> None:
        self.connected = False
        self.engine: dict[str, Any] = {}
        self.jobs: dict[int, dict[str, Any]] = {}
        self._finished: dict[int, None] = {}  # ids of finished jobs in `jobs`, in the order they finished
        self.runs: dict[str, dict[str, Any]] = {}
        self.history: RunHistory | None = None  # the run shown on the Training pane (the latest one)
        self.telemetry: dict[str, Any] = {"available": False, "reason": "not connected", "gpus": []}
        self.progress: dict[int, dict[str, Any]] = {}
        self.loading: dict[int, dict[str, Any]] = {}
        self.outputs: list[dict[str, Any]] = []
        self.log: deque[dict[str, Any]] = deque(maxlen=500)
        self._listeners: list[Listener] = []

    # --- listeners ----------------------------------------------------------------------------------------
    def listen(self, fn: Listener) -> Callable[[], None]:
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn) if fn in self._listeners else None

    def notify(self, kind: str, data: dict[str, Any]) -> None:
        for fn in list(self._listeners):
            fn(kind, data)

    # --- views --------------------------------------------------------------------------------------------
    def ordered_jobs(self) -> list[dict[str, Any]]:
        return sorted(self.jobs.values(), key=lambda j: j["position"])

    def running_job(self) -> dict[str, Any] | None:
        return next((j for j in self.jobs.values() if j["state"] in ("running", "stopping")), None)

    def active_train_job(self) -> dict[str, Any] | None:
        return min((j for j in self.jobs.values() if j["kind"] == "train" and j["state"] in protocol.ACTIVE_STATES),
                   key=lambda j: j["position"], default=None)

    # --- updates ------------------------------------------------------------------------------------------
    def load_snapshot(self, snap: dict[str, Any]) -> None:
        self.connected = True
        self.engine = snap.get("engine", {})
        self.jobs = {}
        self._finished.clear()
        for j in sorted(snap.get("jobs", []), key=lambda j: j.get("finished") or j.get("created") or 0):
            self._put_job(j)
        self.runs = {r["name"]: r for r in snap.get("runs", [])}
        latest = snap.get("latest_run")
        self.history = None
        if latest:
            self.history = RunHistory(latest["run"])
            self.history.load(latest)
        self.telemetry = snap.get("telemetry") or self.telemetry
        self.outputs = list(snap.get("outputs", []))
        self.log = deque(snap.get("log", []), maxlen=500)
        self.progress.clear()
        self.loading.clear()

    def disconnected(self) -> None:
        self.connected = False
        self.engine = {**self.engine, "state": "disconnected"}
        self.telemetry = {"available": False, "reason": "engine not connected", "gpus": []}

    def apply(self, kind: str, data: dict[str, Any]) -> None:
        """Fold one event into the state (cheap: called for every event)."""
        if kind == protocol.EV_TELEMETRY:
            self.telemetry = data
        elif kind == protocol.EV_METRIC:
            h = self._history_for(data["run"])
            h.add_metric(data)
        elif kind == protocol.EV_PROGRESS:
            self.progress[data["job_id"]] = data
        elif kind == protocol.EV_LOADING:
            self.loading[data["job_id"]] = data
        elif kind == protocol.EV_JOB:
            self._put_job(data)
            if data["state"] not in ("running", "stopping"):
                self.progress.pop(data["id"], None)
                self.loading.pop(data["id"], None)
        elif kind == protocol.EV_JOB_REMOVED:
            self.jobs.pop(data["id"], None)
            self._finished.pop(data["id"], None)
        elif kind == protocol.EV_ENGINE:
            self.engine = data
        elif kind == protocol.EV_RUN:
            self.runs[data["name"]] = data
            h = self._history_for(data["name"])
            h.run = data
        elif kind == protocol.EV_REWIND:
            self._history_for(data["run"]).rewind(data["step"])
        elif kind == protocol.EV_SAMPLE:
            self._history_for(data["run"]).samples.append(data)
        elif kind == protocol.EV_CHECKPOINT:
            self._history_for(data["run"]).checkpoints[data["step"]] = data
        elif kind == protocol.EV_CHECKPOINT_REMOVED:
            self._history_for(data["run"]).checkpoints.pop(data["step"], None)
        elif kind == protocol.EV_RESULT:
            self.outputs.insert(0, data)
            del self.outputs[1000:]
        elif kind == protocol.EV_LOG:
            self.log.append(data)

    def _put_job(self, job: dict[str, Any]) -> None:
        """Every active job is kept; of finished ones only the newest KEEP_FINISHED."""
        self.jobs[job["id"]] = job
        self._finished.pop(job["id"], None)
        if job["state"] not in protocol.ACTIVE_STATES:
            self._finished[job["id"]] = None
            while len(self._finished) > KEEP_FINISHED:
                oldest = next(iter(self._finished))
                del self._finished[oldest]
                self.jobs.pop(oldest, None)

    def _history_for(self, run: str) -> RunHistory:
        """The shown run follows the newest run that reports anything."""
        if self.history is None or self.history.name != run:
            self.history = RunHistory(self.runs.get(run, {"name": run}))
        return self.history
