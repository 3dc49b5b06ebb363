"""The dashboard's speed and memory, headless, on this machine (no GPU needed); prints a table.

    python bench/ui.py                 (from the repository root; about 3 minutes on 2 cores)
    python bench/ui.py --quick         (fewer runs and samples, a 60k-step memory feed)

1. Cold start: a fresh Python process that does what `zchar open` does (imports, then `ZcharApp.run()`; here
   `run_test()`, headless) until the first frame of the Dataset pane is handed to the terminal; median of N runs,
   with an idle engine already running for the project (the usual re-open).
2. Input latency, key press to the frame that shows its effect (pane switches 1–4, list navigation on the Queue
   and Dataset panes, typing in a Prompts field, the chart's log-scale toggle), while a real engine process streams
   a fake training run at 100 steps/s (one `train.metric` and one `job.progress` per step, as engine/train.py
   reports, plus a GPU reading a second) and 40 generation jobs wait in the queue. Keys enter through the driver
   as a terminal's keys do; a frame counts once Textual hands it to the driver, rendered to terminal bytes.
3. Loss-chart redraw with 100k steps on the Training pane: from the timer tick (copy the columns, downsample,
   hand the points to the plot) to the frame that shows the new chart (drawing it included).
4. Memory after an hour-equivalent of events (360k steps: 360k metric + 360k progress events, 3.6k GPU readings)
   fed as fast as the dashboard takes them: RSS and tracemalloc growth against what the metric columns must hold.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    ROOT,
    FrameClock,
    isolate_env,
    percentile,
    proc_mem,
    start_engine,
    stop_engine,
    table,
)

SIZE = (160, 48)
GOALS = {"cold": 0.6, "p95": 50.0, "chart": 20.0}

COLD_CHILD = """
import sys, time
sys.path.insert(0, sys.argv[1])
import asyncio
import zchar_tui.images  # zchar open imports it first (terminal probe)
from engine.project import Project
from zchar_tui.app import ZcharApp
from zchar_tui.screens.base import PaneScreen
imported = time.monotonic()

class Probe(ZcharApp):
    first = None

    def _display(self, screen, renderable):
        if self.first is None and renderable is not None and isinstance(screen, PaneScreen):
            renderable.render_segments(self.console)
            self.first = time.monotonic()
        super()._display(screen, renderable)

async def main():
    app = Probe(Project(sys.argv[2]))
    async with app.run_test(size=(int(sys.argv[3]), int(sys.argv[4]))):
        while app.first is None:
            await asyncio.sleep(0.001)
    print(imported, app.first)

asyncio.run(main())
"""


# --- 1. cold start ----------------------------------------------------------------------------------------------

def cold_start(project: Any, runs: int) -> dict[str, float]:
    proc = start_engine(project)
    try:
        totals, imports = [], []
        for _ in range(runs):
            t0 = time.monotonic()
            out = subprocess.run([sys.executable, "-c", COLD_CHILD, str(ROOT), str(project.root), *map(str, SIZE)],
                                 capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL).stdout
            imported, first = map(float, out.split()[-2:])
            totals.append(first - t0)
            imports.append(imported - t0)
    finally:
        stop_engine(project, proc)
    return {"median": statistics.median(totals), "min": min(totals), "max": max(totals),
            "imports": statistics.median(imports)}


# --- 2. input latency under a 100 steps/s stream ------------------------------------------------------------

async def input_latency(project: Any, presses: int, rate: float) -> dict[str, Any]:
    from textual import events
    from textual.widgets import DataTable, Input

    from bench import stream_job
    from engine.project import TEMPLATE_FIELDS
    from tests.training_data import gpu_reading
    from zchar_tui.app import ZcharApp
    from zchar_tui.client import SyncClient
    from zchar_tui.widgets.dataset_list import DatasetList
    from zchar_tui.widgets.loss_chart import LossChart

    proc = start_engine(project, stream_job.engine_command(project.root))
    results: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    try:
        with SyncClient(project, spawn=False) as c:
            c.request("submit", kind="stream", params={"rate": rate, "telemetry": gpu_reading()}, priority=5)
            c.request("submit", kind="gen", params={"prompt": "mika, waiting in the queue", "count": 40})
        app = ZcharApp(project)
        received = {"train.metric": 0, "job.progress": 0, "gpu": 0}

        def count(kind: str, data: dict[str, Any]) -> None:
            if kind in received:
                received[kind] += 1

        async with app.run_test(size=SIZE) as pilot:
            clock = FrameClock.install(app)
            app.state.listen(count)
            deadline = time.monotonic() + 30
            while not (app.state.history and len(app.state.history) > 200):
                assert time.monotonic() < deadline, "the stream never reached the dashboard"
                await pilot.pause(0.05)

            async def press(key: str, char: str | None, shown: Any, label: str) -> None:
                await asyncio.sleep(random.uniform(0.03, 0.12))  # let the stream flow between keys
                frame = clock.next_frame_showing(shown)
                t0, c0 = time.perf_counter(), time.thread_time()
                app._driver.send_message(events.Key(key, char))
                t1, c1 = await asyncio.wait_for(frame, 10)
                results.setdefault(label, []).append(1000 * (t1 - t0))
                cpu.setdefault(label, []).append(1000 * (c1 - c0))

            def on_pane(mode: str) -> Any:
                return lambda: app.current_mode == mode

            for key, mode in (("4", "queue"), ("2", "training"), ("3", "prompts"), ("1", "dataset")):
                await press(key, key, on_pane(mode), "first visit to a pane (mounts it)")
            t_start, metrics_start = time.monotonic(), received["train.metric"]
            rounds = max(1, presses // 10)
            keys = {"dataset": "1", "training": "2", "prompts": "3", "queue": "4"}
            for r in range(rounds):
                for mode in ("queue", "dataset", "training", "prompts"):
                    await press(keys[mode], keys[mode], on_pane(mode), "pane switch (1-4)")
                    screen = app.screen
                    if mode == "queue":
                        tbl = screen.query_one(DataTable)
                        for key in ("down", "down", "up"):
                            want = tbl.cursor_row + (1 if key == "down" else -1)
                            await press(key, None, lambda t=tbl, w=want: t.cursor_row == w, "queue list: up/down")
                    elif mode == "dataset":
                        lst = screen.query_one(DatasetList)
                        key = "down" if r % 2 == 0 else "up"
                        want = lst.cursor + (1 if key == "down" else -1)
                        await press(key, None, lambda x=lst, w=want: x.cursor == w, "dataset list: up/down")
                    elif mode == "training":
                        chart = screen.query_one(LossChart)
                        want = not chart.log_scale
                        await press("l", "l", lambda c=chart, w=want: c.log_scale == w,
                                    "chart log toggle (redraws it)")
                    else:
                        field = screen.query_one(f"#field-{TEMPLATE_FIELDS[0]}", Input)
                        field.focus()
                        await pilot.pause()
                        want = field.value + "a"
                        await press("a", "a", lambda f=field, w=want: f.value == w, "typing in a prompt field")
                        field.value = ""
                        app.set_focus(None)  # so that 1-4 switch panes again (Esc does the same)
            elapsed = time.monotonic() - t_start
            stream_rate = (received["train.metric"] - metrics_start) / elapsed
            history = len(app.state.history) if app.state.history else 0
    finally:
        stop_engine(project, proc)
    return {"results": results, "cpu": cpu, "stream_rate": stream_rate, "received": received, "history": history,
            "frames": clock.frames}


# --- 3. chart redraw with 100k steps --------------------------------------------------------------------------

def metric_event(step: int, loss: float, smooth: float, total: int = 1_000_000) -> dict[str, Any]:
    return {"run": "bench", "step": step, "epoch": 1, "loss": loss, "loss_smooth": smooth, "lr": 1e-4,
            "grad_norm": 0.4, "sec_per_step": 0.01, "peak_mem": 21.5, "t": 1.7e9 + step / 100,
            "total_steps": total, "total_epochs": 1, "eta_s": (total - step) / 100}


def feed(app: Any, first: int, last: int, gpu: dict[str, Any]) -> None:
    """Events for steps first..last as the engine link delivers them (`_on_client_event`, from the read loop)."""
    rnd = random.Random(first)
    for step in range(first, last + 1):
        loss = 0.04 + 0.06 * 2.718 ** (-step / 50_000) + 0.02 * rnd.random()
        app._on_client_event("train.metric", metric_event(step, loss, loss))
        app._on_client_event("job.progress", {"job_id": 1, "step": step, "total": 1_000_000,
                                              "message": f"step {step}/1000000, loss {loss:.4f}", "eta_s": 1.0})
        if step % 100 == 0:
            app._on_client_event("gpu", gpu)


async def drain(app: Any) -> None:
    """Until the app's queue has taken everything fed so far."""
    while app._message_queue.qsize():
        await asyncio.sleep(0.001)
    await asyncio.sleep(0)


async def chart_redraw(project: Any, steps: int, repeats: int) -> dict[str, float]:
    from tests.training_data import gpu_reading
    from zchar_tui.app import ZcharApp
    from zchar_tui.widgets.loss_chart import LossChart

    app = ZcharApp(project, connect=False, initial_pane="training")
    gpu = gpu_reading()
    async with app.run_test(size=SIZE) as pilot:
        clock = FrameClock.install(app)
        for first in range(1, steps + 1, 5000):
            feed(app, first, min(steps, first + 4999), gpu)
            await drain(app)
        await pilot.pause()
        screen = app.screen
        chart = screen.query_one(LossChart)
        ticks, frames = [], []
        n = steps
        for _ in range(repeats):
            n += 1
            feed(app, n, n, gpu)  # one new step, so the tick has a changed series to draw
            await drain(app)
            screen._chart_at = 0.0  # due now
            shown = clock.next_frame_showing(lambda c=chart, k=n: c._drawn_key is not None and c._drawn_key[0] == k)
            t0 = time.perf_counter()
            screen.redraw()
            ticks.append(1000 * (time.perf_counter() - t0))
            frames.append(1000 * ((await asyncio.wait_for(shown, 10))[0] - t0))
            await pilot.pause(0.05)
        drawn = len(chart.drawn["loss"][0]) + len(chart.drawn["smooth"][0])
    return {"tick": statistics.median(ticks), "frame": statistics.median(frames), "p95_frame": percentile(frames, 95),
            "points": drawn, "steps": n}


# --- 4. memory after an hour of events -------------------------------------------------------------------------

async def memory(project: Any, steps: int) -> dict[str, Any]:
    import gc
    import tracemalloc

    from engine import protocol
    from tests.training_data import gpu_reading
    from zchar_tui.app import ZcharApp

    app = ZcharApp(project, connect=False, initial_pane="training")
    gpu = gpu_reading()
    warm = min(10_000, steps // 10)
    chunk = 5_000
    rows = []
    async with app.run_test(size=SIZE) as pilot:
        feed(app, 1, warm, gpu)
        await drain(app)
        await pilot.pause(1.2)  # one chart tick drawn: imports and caches done
        gc.collect()
        tracemalloc.start()
        base_traced = tracemalloc.get_traced_memory()[0]
        base_rss = proc_mem()[0]
        t0 = time.monotonic()
        step = warm
        marks = {steps * k // 4 for k in range(1, 5)}
        while step < steps:
            last = min(steps, step + chunk)
            feed(app, step + 1, last, gpu)
            await drain(app)
            await asyncio.sleep(0.01)  # timers (chart redraw, header) run as they would
            crossed = [m for m in marks if step < m <= last]
            step = last
            if crossed:
                gc.collect()
                traced = tracemalloc.get_traced_memory()[0]
                grown = step - warm
                rows.append({"steps": step, "rss": proc_mem()[0], "traced": (traced - base_traced) / 2**20,
                             "per_step": (traced - base_traced) / grown, "elapsed": time.monotonic() - t0})
        top = tracemalloc.take_snapshot().statistics("filename")[:6]
        tracemalloc.stop()
        history = app.state.history
        columns = len(protocol.METRIC_COLUMNS)
        held = sum(col.buffer_info()[1] * col.itemsize for col in history.columns.values()) if history else 0
    return {"rows": rows, "base_rss": base_rss, "columns": columns, "held_columns": held, "top": top,
            "warm": warm, "rate": (steps - warm) * 2 / rows[-1]["elapsed"] if rows else 0.0}


# --- report -----------------------------------------------------------------------------------------------------

def ok(value: float, goal: float) -> str:
    return "yes" if value <= goal else "NO"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer runs and samples, a 60k-step memory feed")
    ap.add_argument("--runs", type=int, help="cold-start runs (default 7, quick 3)")
    ap.add_argument("--presses", type=int, help="key presses measured (default 200, quick 60)")
    ap.add_argument("--rate", type=float, default=100.0, help="steps/s the engine streams (default 100)")
    ap.add_argument("--steps", type=int, help="steps fed for the memory figure (default 360000, quick 60000)")
    ap.add_argument("--only", choices=("cold", "latency", "chart", "memory"), action="append",
                    help="run only these parts (repeatable)")
    args = ap.parse_args()
    runs = args.runs or (3 if args.quick else 7)
    presses = args.presses or (60 if args.quick else 200)
    steps = args.steps or (60_000 if args.quick else 360_000)
    parts = set(args.only or ("cold", "latency", "chart", "memory"))

    from tests.conftest import make_project

    started = time.monotonic()
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="zchar-bench-ui-") as tmp:
        isolate_env(Path(tmp))
        project = make_project(Path(tmp) / "proj", images=12)
        summary: list[list[Any]] = []
        if "cold" in parts:
            cold = cold_start(project, runs)
            summary.append(["cold start → first frame (median)", f"{cold['median']:.3f} s",
                            f"≤ {GOALS['cold']} s", ok(cold["median"], GOALS["cold"]),
                            f"of {runs}: {cold['min']:.3f}–{cold['max']:.3f} s; python + imports "
                            f"{cold['imports']:.3f} s"])
            print(f"cold start done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
        if "latency" in parts:
            lat = asyncio.run(input_latency(project, presses, args.rate))
            steady = [v for k, vs in lat["results"].items() if not k.startswith("first") for v in vs]
            summary.append(["input latency p50 / p95 (all keys)",
                            f"{percentile(steady, 50):.1f} / {percentile(steady, 95):.1f} ms",
                            f"p95 ≤ {GOALS['p95']:.0f} ms", ok(percentile(steady, 95), GOALS["p95"]),
                            f"{len(steady)} keys while the engine streamed {lat['stream_rate']:.0f} steps/s "
                            f"({2 * lat['stream_rate']:.0f} events/s)"])
            rows = [[label, len(v), f"{percentile(v, 50):.1f}", f"{percentile(v, 95):.1f}", f"{max(v):.1f}",
                     f"{percentile(lat['cpu'][label], 50):.1f}", f"{percentile(lat['cpu'][label], 95):.1f}"]
                    for label, v in lat["results"].items()]
            lines.append(table("Input latency, key press → frame on screen (ms; cpu: the UI thread's own CPU time in "
                               "that span)", ["key", "n", "p50", "p95", "max", "cpu p50", "cpu p95"], rows))
            print(f"latency done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
        if "chart" in parts:
            ch = asyncio.run(chart_redraw(project, 100_000, 15 if not args.quick else 7))
            summary.append(["loss-chart redraw, 100k steps (median)", f"{ch['frame']:.1f} ms",
                            f"≤ {GOALS['chart']:.0f} ms", ok(ch["frame"], GOALS["chart"]),
                            f"timer tick → chart on screen (p95 {ch['p95_frame']:.1f}); the tick's own work "
                            f"(copy, downsample) {ch['tick']:.1f} ms; {ch['points']} points drawn"])
            print(f"chart done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
        if "memory" in parts:
            mem = asyncio.run(memory(project, steps))
            last = mem["rows"][-1]
            expect = mem["columns"] * 8 + 3 * 8  # the columns (array('d')) + the chart's numpy copies of 3 of them
            summary.append([f"memory after {steps:,} steps ({steps / 360_000:.2g} h at 100/s)",
                            f"+{last['traced']:.1f} MiB traced",
                            f"≈ {expect} B/step", ok(last["per_step"], expect * 1.25),
                            f"{last['per_step']:.0f} B/step; RSS {mem['base_rss']:.0f} → {last['rss']:.0f} MiB; "
                            f"fed {mem['rate']:,.0f} events/s"])
            rows = [[f"{r['steps']:,}", f"{r['rss']:.0f}", f"{r['traced']:.1f}", f"{r['per_step']:.0f}"]
                    for r in mem["rows"]]
            lines.append(table(f"Memory while fed (from step {mem['warm']:,}; expected ≈ {expect} B/step: "
                               f"{mem['columns']} float64 columns + 3 chart copies)",
                               ["steps", "RSS MiB", "traced growth MiB", "B/step"], rows))
            lines.append("largest live allocations by file at the end:\n" + "\n".join(
                f"  {s.size / 2**20:7.1f} MiB  {s.traceback[0].filename.replace(str(ROOT) + '/', '')}"
                for s in mem["top"]))
        print()
        print(table("zchar dashboard, headless (bench/ui.py)", ["figure", "value", "goal", "met", "notes"],
                    summary))
        for block in lines:
            print()
            print(block)
        print(f"\n(total {time.monotonic() - started:.0f} s; python {sys.version.split()[0]}; "
              f"{len(__import__('os').sched_getaffinity(0))} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
