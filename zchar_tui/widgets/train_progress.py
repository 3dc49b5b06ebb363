"""Where the run stands: step and epoch bars with s/step and the engine's ETA, learning rate (× Prodigy's d),
grad norm, model loading stages, and the seed guide's warnings."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ProgressBar, Static

RUN_STYLE = {"running": "bold green", "stopping": "bold yellow", "failed": "bold red", "done": "bold",
             "stopped": "yellow"}


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def fmt_num(v: Any, spec: str = ".3g") -> str:
    return format(v, spec) if isinstance(v, (int, float)) and math.isfinite(v) else "n/a"


@dataclass
class Figures:
    """What the progress block shows, derived from the run's history (and the live job progress, if any)."""

    run: str = ""
    state: str = ""
    message: str = ""
    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    total_epochs: int = 0
    sec_per_step: float | None = None
    eta_s: float | None = None
    lr: float | None = None
    grad_norm: float | None = None
    peak_mem: float | None = None  # MiB


def _last(column: Any) -> float | None:
    if not len(column):
        return None
    v = column[-1]
    return v if math.isfinite(v) else None


def figures(history: Any, job_progress: dict[str, Any] | None = None) -> Figures:
    """`history` is a `zchar_tui.state.RunHistory`; the newest metric event wins over stored rows and the run."""
    run = history.run
    cols = history.columns
    m = history.latest or {}
    f = Figures(run=history.name, state=run.get("state", ""), message=run.get("message", ""))
    f.step = int(m.get("step") or _last(cols["step"]) or run.get("step") or 0)
    f.total_steps = int(m.get("total_steps") or run.get("total_steps") or 0)
    f.epoch = int(m.get("epoch") or _last(cols["epoch"]) or run.get("epoch") or 0)
    f.total_epochs = int(m.get("total_epochs") or run.get("total_epochs") or 0)
    recent = np.asarray(cols["sec_per_step"][-20:], dtype=float)
    recent = recent[np.isfinite(recent)]
    f.sec_per_step = float(np.median(recent)) if len(recent) else None
    f.lr, f.grad_norm, f.peak_mem = _last(cols["lr"]), _last(cols["grad_norm"]), _last(cols["peak_mem"])
    if f.state in ("running", "stopping"):
        eta = m.get("eta_s")
        if eta is None and job_progress:
            eta = job_progress.get("eta_s")
        if eta is None and f.sec_per_step and f.total_steps:
            eta = (f.total_steps - f.step) * f.sec_per_step  # after a reattach, until the next metric arrives
        f.eta_s = eta
    return f


class TrainProgress(Vertical):
    DEFAULT_CSS = """
    TrainProgress { height: auto; padding: 0 1; }
    TrainProgress > Static { height: auto; }
    TrainProgress > Horizontal { height: 1; }
    TrainProgress Label.bar-label { width: 7; color: $text-muted; }
    TrainProgress ProgressBar { width: auto; }
    TrainProgress ProgressBar > Bar { width: 36; }
    TrainProgress Label.bar-text { width: 1fr; padding-left: 1; }
    TrainProgress #train-loading { display: none; }
    TrainProgress #train-warnings { color: $warning; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="train-run")
        with Horizontal(id="train-loading"):
            yield Label("load", classes="bar-label")
            yield ProgressBar(id="loading-bar", show_eta=False)
            yield Label(id="loading-text", classes="bar-text")
        with Horizontal():
            yield Label("step", classes="bar-label")
            yield ProgressBar(id="step-bar", show_eta=False)
            yield Label(id="step-text", classes="bar-text")
        with Horizontal():
            yield Label("epoch", classes="bar-label")
            yield ProgressBar(id="epoch-bar", show_eta=False)
            yield Label(id="epoch-text", classes="bar-text")
        yield Static(id="train-figures")
        yield Static(id="train-warnings")

    def show(self, f: Figures | None, prodigy: bool = True) -> None:
        if f is None:
            self.query_one("#train-run", Static).update(Text("No training run yet: press s to start one.",
                                                             style="dim"))
            for bar in ("#step-bar", "#epoch-bar"):
                self.query_one(bar, ProgressBar).update(total=None, progress=0)
            self.query_one("#step-text", Label).update("")
            self.query_one("#epoch-text", Label).update("")
            self.query_one("#train-figures", Static).update("")
            return
        head = Text.assemble(("run ", "dim"), (f.run, "bold"), " ", (f.state or "?", RUN_STYLE.get(f.state, "")))
        if f.message:
            head.append(f" · {f.message}", style="dim")
        self.query_one("#train-run", Static).update(head)
        self.query_one("#step-bar", ProgressBar).update(total=f.total_steps or None, progress=f.step)
        speed = f"{f.sec_per_step:.2f} s/step" if f.sec_per_step else "– s/step"
        eta = f" · ETA {fmt_duration(f.eta_s)}" if f.eta_s is not None else ""
        total = f"{f.total_steps:,}" if f.total_steps else "?"
        self.query_one("#step-text", Label).update(f"{f.step:,}/{total} · {speed}{eta}")
        self.query_one("#epoch-bar", ProgressBar).update(total=f.total_epochs or None, progress=f.epoch)
        self.query_one("#epoch-text", Label).update(f"{f.epoch}/{f.total_epochs or '?'}")
        fig = Text()
        fig.append("lr×d " if prodigy else "lr ", style="dim")
        fig.append(fmt_num(f.lr, ".3g"))
        fig.append("  grad norm ", style="dim")
        fig.append(fmt_num(f.grad_norm, ".3g"))
        if f.peak_mem is not None:
            fig.append("  peak mem ", style="dim")
            fig.append(f"{f.peak_mem / 1024:.1f} GiB")
        self.query_one("#train-figures", Static).update(fig)

    def show_loading(self, loading: dict[str, Any] | None) -> None:
        row = self.query_one("#train-loading", Horizontal)
        row.display = loading is not None
        if loading is None:
            return
        total = loading.get("total") or None
        self.query_one("#loading-bar", ProgressBar).update(total=total, progress=loading.get("done") or 0)
        self.query_one("#loading-text", Label).update(
            f"{loading.get('stage', '')}: {loading.get('message', '')}".strip(": "))

    def show_warnings(self, warnings: list[str]) -> None:
        w = self.query_one("#train-warnings", Static)
        w.display = bool(warnings)
        w.update(Text("\n".join(f"⚠ {line}" for line in warnings)))
