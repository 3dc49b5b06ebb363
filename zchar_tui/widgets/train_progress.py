"""Where the run stands: step and epoch bars with s/step and the engine's ETA, learning rate (× Prodigy's d),
grad norm, model loading stages, and the seed guide's warnings."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

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
    peak_mem: float | None = None  # GiB (torch's peak allocation, CUDA only)


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


def _bar_row(label: str, done: float, total: float | None, tail: str, width: int,
             colours: dict[str, str]) -> list[Any]:
    pct = f"{100 * done / total:3.0f}%" if total else "   "
    bar = ProgressBar(total=total or 100, completed=done if total else 0, width=width,
                      complete_style=colours.get("primary", "blue"), finished_style=colours.get("success", "green"),
                      style="grey30")
    return [Text(label, style="dim"), bar, Text(f" {pct} {tail}")]


class TrainProgress(Vertical):
    """Two Statics (figures, warnings) drawn with Rich renderables: cheap to mount, which a reattach needs."""

    DEFAULT_CSS = """
    TrainProgress { height: auto; padding: 0 1; }
    TrainProgress > Static { height: auto; }
    TrainProgress #train-warnings { color: $warning; display: none; }
    """
    BAR_W = 36  # at most; narrower panes get shorter bars so the figures after them stay readable

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.figures: Figures | None = None
        self.loading_stage: dict[str, Any] | None = None
        self.prodigy = True
        self.lines: dict[str, str] = {}  # the plain text of each line (tests, status)

    def compose(self) -> ComposeResult:
        yield Static(id="train-run")
        yield Static(id="train-bars")
        yield Static(id="train-warnings")

    def show(self, f: Figures | None, prodigy: bool = True, loading: dict[str, Any] | None = None) -> None:
        """The run's figures and, while a model downloads or loads, the loading stage."""
        self.figures, self.prodigy, self.loading_stage = f, prodigy, loading
        f = self.figures
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=5, no_wrap=True)
        bar_w = max(10, min(self.BAR_W, (self.size.width or 120) - 52))
        grid.add_column(width=bar_w, no_wrap=True)
        grid.add_column(no_wrap=True, overflow="ellipsis")
        lines: dict[str, str] = {}
        colours = self.app.get_css_variables()
        rows: list[Any] = [grid]
        if self.loading_stage is not None:
            ld = self.loading_stage
            lines["loading"] = f"{ld.get('stage', '')}: {ld.get('message', '')}".strip(": ")
            grid.add_row(*_bar_row("load", ld.get("done") or 0, ld.get("total") or None, lines["loading"],
                                   bar_w, colours))
        if f is None:
            head = Text("No training run yet: press s to start one.", style="dim")
        else:
            head = Text.assemble(("run ", "dim"), (f.run, "bold"), " ", (f.state or "?", RUN_STYLE.get(f.state, "")))
            if f.message:
                head.append(f" · {f.message}", style="dim")
            speed = f"{f.sec_per_step:.2f} s/step" if f.sec_per_step else "– s/step"
            eta = f" · ETA {fmt_duration(f.eta_s)}" if f.eta_s is not None else ""
            total = f"{f.total_steps:,}" if f.total_steps else "?"
            lines["step"] = f"{f.step:,}/{total} · {speed}{eta}"
            lines["epoch"] = f"{f.epoch}/{f.total_epochs or '?'}"
            grid.add_row(*_bar_row("step", f.step, f.total_steps or None, lines["step"], bar_w, colours))
            grid.add_row(*_bar_row("epoch", f.epoch, f.total_epochs or None, lines["epoch"], bar_w, colours))
            fig = Text()
            fig.append("lr×d " if self.prodigy else "lr ", style="dim")
            fig.append(fmt_num(f.lr, ".3g"))
            fig.append("  grad norm ", style="dim")
            fig.append(fmt_num(f.grad_norm, ".3g"))
            if f.peak_mem is not None:
                fig.append("  peak mem ", style="dim")
                fig.append(f"{f.peak_mem:.1f} GiB")
            lines["figures"] = fig.plain
            rows.append(fig)
        lines["run"] = head.plain
        self.lines = lines
        self.query_one("#train-run", Static).update(head)
        self.query_one("#train-bars", Static).update(Group(*rows))

    def on_resize(self) -> None:
        if self.is_mounted:
            self.show(self.figures, self.prodigy, self.loading_stage)

    def show_warnings(self, warnings: list[str]) -> None:
        w = self.query_one("#train-warnings", Static)
        w.display = bool(warnings)
        self.lines["warnings"] = "\n".join(f"⚠ {line}" for line in warnings)
        w.update(Text(self.lines["warnings"]))
