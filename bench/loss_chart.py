"""Training-pane figures on this machine (CPU only, no GPU needed):

1. one loss-chart redraw (downsample + textual-plot drawing + a frame) with 1k / 10k / 100k steps;
2. reattach to an engine holding a 10k-step run: from the dashboard's start to the chart drawn from step 1.

    python bench/loss_chart.py            (from the repository root)
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual.app import App, ComposeResult

from zchar_tui.widgets.loss_chart import LossChart, LossPlot

PANE = (120, 30)


class ChartApp(App[None]):
    CSS = f"LossChart {{ width: {PANE[0]}; height: {PANE[1]}; }}"

    def compose(self) -> ComposeResult:
        yield LossChart()


async def chart_redraws() -> None:
    app = ChartApp()
    async with app.run_test(size=(PANE[0] + 2, PANE[1] + 2)) as pilot:
        chart = app.query_one(LossChart)
        plot = chart.query_one(LossPlot)
        rng = np.random.default_rng(0)
        for n in (1_000, 10_000, 100_000):
            steps = np.arange(1, n + 1, dtype=float)
            loss = 0.04 + 0.05 * np.exp(-steps / (n / 4)) + 0.02 * rng.random(n)
            times, draws = [], []
            for i in range(7):
                chart.set_data(steps, loss * (1 + 1e-9 * i), None)  # new data each time: a real redraw
                t0 = time.perf_counter()
                chart.redraw()
                plot._render_plot()  # the drawing textual-plot would do in its next render
                times.append(time.perf_counter() - t0)
                draws.append(len(chart.drawn["loss"][0]) + len(chart.drawn["smooth"][0]))
                await pilot.pause()
            print(f"chart redraw, {n:>7,} steps: {1000 * statistics.median(times):6.1f} ms median "
                  f"(drew {draws[-1]} points for a {PANE[0]}-column pane)")


async def reattach(steps: int = 10_000) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from tests.conftest import kill_engine, make_project
    from tests.test_reattach import store_history
    from zchar_tui.app import ZcharApp
    from zchar_tui.client import SyncClient

    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp) / "proj")
        store_history(project, steps)
        SyncClient(project).close()  # the engine is already running, as after a detach
        time.sleep(1.0)  # and idle (not still starting up)
        try:
            with SyncClient(project, spawn=False) as c:
                t0 = time.perf_counter()
                snap = c.request("attach")
                wire = time.perf_counter() - t0
            print(f"attach snapshot of a {steps:,}-step run: {len(json.dumps(snap)) / 1e6:.1f} MB, "
                  f"{1000 * wire:.0f} ms over the socket")
            shown = []
            for _ in range(3):
                t0 = time.perf_counter()
                app = ZcharApp(project, initial_pane="training")
                async with app.run_test(size=(140, 45)) as pilot:
                    chart = app.screen.query_one(LossChart)
                    while not (len(chart.steps) == steps and chart.drawn):
                        await pilot.pause(0.005)
                    shown.append(time.perf_counter() - t0)
            print(f"reattach, dashboard start → chart drawn from step 1 ({steps:,} steps): "
                  f"{1000 * statistics.median(shown):.0f} ms median of 3 "
                  f"({', '.join(f'{1000 * t:.0f}' for t in shown)})")
        finally:
            kill_engine(project)


if __name__ == "__main__":
    asyncio.run(chart_redraws())
    asyncio.run(reattach())
