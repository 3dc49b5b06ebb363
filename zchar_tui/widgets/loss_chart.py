"""The live loss chart: raw and smoothed loss over steps, log scale, zoom to the last N steps.

Fast with 100k points: the series stay in numpy arrays, each redraw draws at most two points per plot column
(min/max per bucket, `downsample.minmax`), and the owner calls `redraw()` from a 1–2 Hz timer — never per event.
A redraw with unchanged data, width and view does nothing.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static
from textual_hires_canvas import Canvas
from textual_plot import HiResMode, NumericAxisFormatter, PlotWidget
from textual_plot.axis_formatter import AxisFormatter
from textual_plot.plot_widget import LinePlot, map_coordinate_to_hires_pixel

from zchar_tui.widgets.braille import polyline_cells
from zchar_tui.widgets.downsample import Floats, finite, last_steps, minmax

ZOOMS: tuple[int | None, ...] = (None, 10_000, 1_000, 200)  # `z` cycles: every step, then the last N
SMOOTH_WINDOW = 25  # rolling mean used when the engine sent no smoothed loss


class LogAxisFormatter(AxisFormatter):
    """Ticks for values plotted as log10(y): at 1, 2, 5 × powers of ten, labelled with the real value."""

    def get_ticks(self, min_: float, max_: float, max_ticks: int = 8) -> list[float]:
        if not (math.isfinite(min_) and math.isfinite(max_)) or max_ <= min_:
            return []
        ticks: list[float] = []
        for mantissas in ((1,), (1, 5), (1, 2, 5)):
            cand = [math.log10(m) + p for p in range(math.floor(min_), math.ceil(max_) + 1) for m in mantissas]
            cand = [t for t in cand if min_ <= t <= max_]
            if len(cand) > max_ticks:
                break
            ticks = cand
        return ticks or NumericAxisFormatter().get_ticks(min_, max_, max_ticks)

    def get_labels_for_ticks(self, ticks: Sequence[float]) -> list[str]:
        return [f"{10 ** t:.2g}" for t in ticks]


def rolling_mean(y: Floats, window: int = SMOOTH_WINDOW) -> Floats:
    """Trailing mean over up to `window` points (the first points average what there is)."""
    if len(y) == 0:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    n = np.minimum(np.arange(1, len(y) + 1), window)
    return (c[1:] - c[np.arange(1, len(y) + 1) - n]) / n


class LossPlot(PlotWidget, inherit_bindings=False):
    """textual-plot's widget and its mouse zoom/pan; its keys when focused: +/- zoom, arrows pan, 0 resets
    (not r, which resumes a run on the training pane)."""

    BINDINGS = [
        Binding("plus,equals_sign", "zoom_in", "Zoom in", id="plot_zoom_in", tooltip="Zoom the chart in"),
        Binding("minus", "zoom_out", "Zoom out", id="plot_zoom_out", tooltip="Zoom the chart out"),
        Binding("left", "pan_left", "Pan", id="plot_pan_left", tooltip="Pan the chart left"),
        Binding("right", "pan_right", "Pan", id="plot_pan_right", show=False, tooltip="Pan the chart right"),
        Binding("up", "pan_up", "Pan up", id="plot_pan_up", show=False, tooltip="Pan the chart up"),
        Binding("down", "pan_down", "Pan down", id="plot_pan_down", show=False, tooltip="Pan the chart down"),
        Binding("0", "reset_scales", "Fit", id="plot_fit", tooltip="Fit the chart to the data again"),
    ]

    def manual_view(self) -> tuple[float, float] | None:
        """The x range the user zoomed or panned to with the plot's own keys/mouse; None when automatic."""
        if self._auto_x_min and self._auto_x_max:
            return None
        return self._x_min, self._x_max

    def reset_view(self) -> None:
        self.set_xlimits(None, None)
        self.set_ylimits(None, None)

    def _render_plot(self) -> None:
        """textual-plot's drawing, with one repaint request per canvas instead of one per character cell it sets
        (each costs ~10 µs of Textual bookkeeping; a 2-line chart sets thousands of cells)."""
        with contextlib.ExitStack() as batch:
            for canvas in self.query(Canvas):
                batch.enter_context(canvas.batch_refresh())
            super()._render_plot()

    def _render_line_plot(self, dataset: LinePlot) -> None:
        """The same braille dots as textual-plot draws, rasterised in numpy (zchar_tui/widgets/braille.py): 1-3 ms
        instead of 20-40 ms for a noisy loss band."""
        if dataset.hires_mode != HiResMode.BRAILLE:
            super()._render_line_plot(dataset)
            return
        canvas = self.query_one("#plot", Canvas)
        x, y = map_coordinate_to_hires_pixel(np.asarray(dataset.x, dtype=np.float64),
                                             np.asarray(dataset.y, dtype=np.float64), self._x_min, self._x_max,
                                             self._y_min, self._y_max, region=self._scale_rectangle)
        for column, row, char in polyline_cells(x, y, canvas.size.width, canvas.size.height):
            canvas.set_pixel(column, row, char, str(dataset.line_style))


class LossChart(Vertical):
    DEFAULT_CSS = """
    LossChart { height: 1fr; min-height: 8; }
    LossChart > #loss-title { height: 1; padding: 0 1; }
    LossChart > LossPlot { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.steps: Floats = np.empty(0)
        self.loss: Floats = np.empty(0)
        self.smooth: Floats = np.empty(0)
        self.log_scale = False
        self.zoom_index = 0
        self.drawn: dict[str, tuple[Floats, Floats]] = {}  # what the last redraw plotted (tests, bench)
        self._drawn_key: Any = None

    @property
    def window(self) -> int | None:
        return ZOOMS[self.zoom_index]

    def compose(self) -> ComposeResult:
        yield Static(id="loss-title")
        yield LossPlot(id="loss-plot")

    def on_mount(self) -> None:
        plot = self.query_one(LossPlot)
        plot.margin_left = 8
        plot.margin_bottom = 2
        plot.margin_top = 0
        plot.show_legend(is_visible=False)
        self._show_title()

    # --- data and view ------------------------------------------------------------------------------------
    def set_data(self, steps: Floats, loss: Floats, smooth: Floats | None = None) -> None:
        """Replace the series (copies the caller may keep appending to are fine: nothing here aliases them)."""
        self.steps = np.asarray(steps, dtype=np.float64)
        self.loss = np.asarray(loss, dtype=np.float64)
        if smooth is None or len(smooth) != len(loss) or not np.isfinite(smooth).any():
            smooth = rolling_mean(np.where(np.isfinite(self.loss), self.loss, np.nan))
        self.smooth = np.asarray(smooth, dtype=np.float64)

    def toggle_log(self) -> bool:
        self.log_scale = not self.log_scale
        self.query_one(LossPlot).reset_view()
        return self.log_scale

    def cycle_zoom(self) -> int | None:
        """Next zoom: every step, then the last 10k/1k/200 steps (skipping those that would show everything)."""
        span = (self.steps[-1] - self.steps[0]) if len(self.steps) else 0
        for _ in ZOOMS:
            self.zoom_index = (self.zoom_index + 1) % len(ZOOMS)
            if self.window is None or self.window < span:
                break
        self.query_one(LossPlot).reset_view()
        return self.window

    def _series(self, y: Floats, buckets: int, view: tuple[float, float] | None) -> tuple[Floats, Floats]:
        x, y = last_steps(self.steps, y, self.window)
        if view is not None:  # the plot's own zoom: draw full detail inside what is shown
            lo, hi = np.searchsorted(x, view[0], "left"), np.searchsorted(x, view[1], "right")
            x, y = x[max(0, lo - 1):hi + 1], y[max(0, lo - 1):hi + 1]
        if self.log_scale:
            with np.errstate(divide="ignore", invalid="ignore"):
                y = np.log10(np.where(y > 0, y, np.nan))
        return minmax(*finite(x, y), buckets)

    def redraw(self, force: bool = False) -> bool:
        """Draw the current series if anything changed since the last draw; True when it drew."""
        plot = self.query_one(LossPlot)
        width = max(10, plot.size.width - plot.margin_left)
        view = plot.manual_view()
        last = (float(self.steps[-1]), float(self.loss[-1])) if len(self.steps) else None
        key = (len(self.steps), last, width, view, self.log_scale, self.zoom_index)
        if key == self._drawn_key and not force:
            return False
        self._drawn_key = key
        buckets = width  # two points per column: as much as braille can show
        raw = self._series(self.loss, buckets, view)
        smooth = self._series(self.smooth, buckets, view)
        theme = self.app.current_theme
        plot.clear()
        plot.set_y_formatter(LogAxisFormatter() if self.log_scale else NumericAxisFormatter())
        if len(raw[0]):
            plot.plot(*raw, line_style=theme.secondary or "grey50", hires_mode=HiResMode.BRAILLE)
        if len(smooth[0]):
            plot.plot(*smooth, line_style=theme.warning or "yellow", hires_mode=HiResMode.BRAILLE)
        self.drawn = {"loss": raw, "smooth": smooth}
        self._show_title()
        return True

    def _show_title(self) -> None:
        theme = self.app.current_theme
        title = Text.assemble(("Loss", "bold"), " ")
        if len(self.steps):
            x, _ = last_steps(self.steps, self.loss, self.window)
            title.append(f"steps {x[0]:.0f}–{x[-1]:.0f} · ")
            title.append(f"raw {_fmt(self.loss[-1])}", style=theme.secondary or "grey50")
            title.append(" · ")
            title.append(f"smoothed {_fmt(self.smooth[-1])}", style=f"bold {theme.warning or 'yellow'}")
        else:
            title.append("no steps yet", style="dim")
        title.append(f"  [{'log' if self.log_scale else 'linear'}"
                     f"{'' if self.window is None else f', last {self.window:,} steps'}]", style="dim")
        self.query_one("#loss-title", Static).update(title)


def _fmt(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else "n/a"
