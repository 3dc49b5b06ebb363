"""The loss chart: min/max downsampling, windows, log axis, and the widget drawing at most two points a column."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from textual.app import App, ComposeResult

from zchar_tui.widgets.downsample import finite, last_steps, minmax
from zchar_tui.widgets.loss_chart import LogAxisFormatter, LossChart, LossPlot, rolling_mean


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=3000), st.integers(1, 300))
def test_minmax_keeps_extremes_order_and_bound(values: list[float], buckets: int) -> None:
    y = np.array(values)
    x = np.arange(1, len(y) + 1, dtype=float)
    dx, dy = minmax(x, y, buckets)
    assert len(dx) <= max(len(y), 2 * buckets + 2) and (len(y) > 2 * buckets or len(dx) == len(y))
    assert np.all(np.diff(dx) > 0)  # still in step order, no point twice
    assert dx[0] == 1 and dx[-1] == len(y)  # the whole x range
    assert dy.min() == y.min() and dy.max() == y.max()
    assert np.array_equal(dy, y[dx.astype(int) - 1])  # only real points


def test_minmax_keeps_a_single_spike() -> None:
    y = np.full(100_000, 0.05)
    y[54_321] = 3.0
    x = np.arange(1, 100_001, dtype=float)
    dx, dy = minmax(x, y, 200)
    assert len(dx) <= 402 and 3.0 in dy and dx[dy.argmax()] == 54_322


def test_finite_and_last_steps() -> None:
    x = np.array([1.0, 2, 3, 4, 5])
    y = np.array([1.0, np.nan, 3, np.inf, 5])
    fx, fy = finite(x, y)
    assert fx.tolist() == [1, 3, 5] and fy.tolist() == [1, 3, 5]
    lx, _ = last_steps(x, x, 2)
    assert lx.tolist() == [4, 5]
    assert last_steps(x, x, None)[0] is x


def test_log_axis_ticks_are_real_values() -> None:
    fmt = LogAxisFormatter()
    ticks = fmt.get_ticks(math.log10(0.012), math.log10(0.4))
    labels = fmt.get_labels_for_ticks(ticks)
    assert "0.1" in labels and all(0.012 <= 10**t <= 0.4 for t in ticks)
    assert 2 <= len(ticks) <= 8


def test_rolling_mean() -> None:
    assert rolling_mean(np.array([1.0, 3, 5, 7]), window=2).tolist() == [1, 2, 4, 6]


class ChartApp(App[None]):
    CSS = "LossChart { width: 100; height: 20; }"

    def compose(self) -> ComposeResult:
        yield LossChart(id="chart")


async def test_chart_draws_100k_points_as_two_per_column() -> None:
    app = ChartApp()
    async with app.run_test(size=(110, 24)) as pilot:
        chart = app.query_one(LossChart)
        steps = np.arange(1, 100_001, dtype=float)
        loss = 0.05 + 0.04 * np.exp(-steps / 20_000) + 0.01 * np.sin(steps)
        chart.set_data(steps, loss, None)  # no smoothed column from the engine: a rolling mean stands in
        assert chart.redraw()
        await pilot.pause()
        width = chart.query_one(LossPlot).size.width - chart.query_one(LossPlot).margin_left
        x, _ = chart.drawn["loss"]
        assert 0 < len(x) <= 2 * width + 2 and x[0] == 1 and x[-1] == 100_000
        assert np.isfinite(chart.drawn["smooth"][1]).all()
        assert not chart.redraw()  # nothing changed: nothing drawn

        chart.toggle_log()
        assert chart.redraw()
        assert np.allclose(10 ** chart.drawn["loss"][1].max(), loss.max())

        assert chart.cycle_zoom() == 10_000
        chart.redraw()
        x, _ = chart.drawn["loss"]
        assert x[0] > 90_000 and x[-1] == 100_000
        title = str(app.query_one("#loss-title").render())
        assert "last 10,000 steps" in title and "log" in title

        chart.set_data(steps[:50], loss[:50], None)  # a short series: zoom skips windows wider than it
        assert chart.cycle_zoom() is None or chart.window < 49


async def test_drawing_the_chart_asks_for_one_repaint_per_canvas(monkeypatch: pytest.MonkeyPatch) -> None:
    """textual-plot sets the chart cell by cell; each cell used to ask Textual for a repaint (thousands per draw,
    ~10 µs each: most of a redraw's time). Found by bench/ui.py."""
    from textual.widget import Widget
    from textual_hires_canvas import Canvas

    app = ChartApp()
    async with app.run_test(size=(110, 24)) as pilot:
        chart = app.query_one(LossChart)
        steps = np.arange(1, 100_001, dtype=float)
        chart.set_data(steps, 0.05 + 0.02 * np.sin(steps / 7), None)
        chart.redraw()
        await pilot.pause()
        plot = chart.query_one(LossPlot)
        repaints: list[Widget] = []
        original = Widget.refresh

        def counted(self: Widget, *args: object, **kwargs: object) -> Widget:
            if isinstance(self, Canvas):
                repaints.append(self)
            return original(self, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Widget, "refresh", counted)
        plot._render_plot()
        drawn = sum(1 for row in plot.query_one("#plot", Canvas)._buffer for ch in row if ch.strip())
        assert drawn > 200  # the draw set hundreds of cells …
        assert len(repaints) <= len(plot.query(Canvas))  # … and asked for one repaint per canvas


def test_braille_polyline_cells() -> None:
    from zchar_tui.widgets.braille import polyline_cells

    # a horizontal line through the top dot row of cells 0-2: each cell gets its two top dots (⠉)
    assert polyline_cells(np.array([0.0, 2.9]), np.array([0.1, 0.1]), 5, 2) == [(c, 0, "⠉") for c in range(3)]
    assert polyline_cells(np.array([1.2]), np.array([1.9]), 5, 2) == [(1, 1, chr(0x2800 + 0x40))]  # one dot
    assert polyline_cells(np.array([-5.0, -1.0]), np.array([0.5, 1.5]), 5, 2) == []  # wholly outside
    clipped = polyline_cells(np.array([-10.0, 10.0]), np.array([1.0, 1.0]), 5, 2)
    assert [c for c, _, _ in clipped] == [0, 1, 2, 3, 4]  # clipped to the canvas, not dropped
    assert polyline_cells(np.array([0.0, np.nan, 1.0]), np.array([0.0, 0.0, np.nan]), 5, 2) == [(0, 0, "⠁")]


@pytest.mark.parametrize("view", [None, (30_000.0, 31_000.0)])
async def test_numpy_braille_draws_what_textual_plot_draws(monkeypatch: pytest.MonkeyPatch,
                                                           view: tuple[float, float] | None) -> None:
    from textual_hires_canvas import Canvas
    from textual_plot import PlotWidget

    app = ChartApp()
    async with app.run_test(size=(110, 24)) as pilot:
        chart = app.query_one(LossChart)
        plot = chart.query_one(LossPlot)
        rng = np.random.default_rng(3)
        steps = np.arange(1, 60_001, dtype=float)
        chart.set_data(steps, 0.04 + 0.05 * np.exp(-steps / 15_000) + 0.02 * rng.random(len(steps)), None)
        if view:
            plot.set_xlimits(*view)
        chart.redraw(force=True)
        await pilot.pause()

        def drawn() -> dict[tuple[int, int], str]:
            plot._render_plot()
            buf = plot.query_one("#plot", Canvas)._buffer
            return {(x, y): ch for y, row in enumerate(buf) for x, ch in enumerate(row) if "\u2800" < ch <= "\u28ff"}

        ours = drawn()
        monkeypatch.setattr(LossPlot, "_render_line_plot", PlotWidget._render_line_plot)
        theirs = drawn()
        assert len(theirs) > 300
        same = sum(1 for cell, ch in theirs.items() if ours.get(cell) == ch)
        assert ours == theirs, f"{len(theirs) - same} of {len(theirs)} cells differ"
