"""Soak: a long tiny training run and 10,000 queued tiny generations through a real engine, with the dashboard
attached the whole time (headless `ZcharApp.run_test()` in this process, on the Queue pane, pressing a key every
couple of seconds to time its answer). Prints throughput, peak memory of both processes and how each grew, then
checks that nothing was lost: every job done, every PNG on disk, recorded once and carrying its own job's
parameters, one metric row per step, and the dashboard's view equal to the engine's.

    python bench/soak.py                          (10,000 jobs at 64x64, 1 step; 3,000 training steps at 64², rank 4)
    python bench/soak.py --jobs 500 --steps 300   (a scaled-down run, ~2 minutes)

CPU only, no GPU needed. The training job is queued first (training goes ahead of generations); the generations
are submitted while it runs, so the dashboard follows a live run with a 10k-job queue behind it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    FrameClock,
    cpu_seconds,
    isolate_env,
    percentile,
    proc_mem,
    start_engine,
    stop_engine,
    table,
)

KEYS = (("4", "queue"), ("down", None), ("down", None), ("2", "training"), ("1", "dataset"), ("4", "queue"),
        ("up", None))


def build_project(root: Path, steps: int) -> Any:
    """make_project's tiny defaults (64², rank 4, validation samples at the end only), enough epochs for `steps`,
    a checkpoint every quarter of the run (two kept)."""
    from tests.conftest import make_project

    images = 6
    return make_project(root, images=images, epochs=min(10_000, math.ceil(steps / images) + 1),
                        checkpoint_every=max(50, steps // 4), keep_checkpoints=2)


def row_key(table: Any, row: int) -> Any:
    return table.coordinate_to_cell_key((row, 0)).row_key if 0 <= row < table.row_count else None


class Monitor:
    """What the soak records while it runs: memory samples of both processes and key latencies."""

    def __init__(self, engine_pid: int) -> None:
        self.engine_pid = engine_pid
        self.samples: list[dict[str, float]] = []
        self.latency: list[float] = []
        self.keys: list[str] = []
        self.missed: list[str] = []  # keys whose effect no frame showed within 5 s

    def sample(self, t0: float, done: int, steps: int) -> dict[str, float]:
        engine_rss, engine_peak = proc_mem(self.engine_pid)
        ui_rss, ui_peak = proc_mem()
        row = {"t": time.monotonic() - t0, "done": done, "steps": steps, "engine": engine_rss,
               "engine_peak": engine_peak, "ui": ui_rss, "ui_peak": ui_peak,
               "engine_cpu": cpu_seconds(self.engine_pid), "ui_cpu": cpu_seconds()}
        self.samples.append(row)
        return row


async def drive(project: Any, args: argparse.Namespace, mon: Monitor) -> dict[str, Any]:
    from textual import events
    from textual.widgets import DataTable

    from zchar_tui.app import ZcharApp
    from zchar_tui.client import SyncClient

    app = ZcharApp(project, initial_pane="queue")
    out: dict[str, Any] = {}
    ended: set[int] = set()  # jobs the dashboard was told reached a final state (it keeps only the newest 1,000)
    final = {"done", "failed", "cancelled", "stopped"}

    def follow(kind: str, data: dict[str, Any]) -> None:
        if kind == "job" and data["state"] in final:
            ended.add(data["id"])

    app.state.listen(follow)
    async with app.run_test(size=(160, 48)) as pilot:
        clock = FrameClock.install(app)
        deadline = time.monotonic() + 30
        while not app.state.connected:
            assert time.monotonic() < deadline, "the dashboard never attached"
            await pilot.pause(0.05)
        for mode in ("training", "dataset", "prompts", "queue"):  # first visits mount panes: not what is timed
            await app.switch_mode(mode)
            await pilot.pause(0.3)
        t0 = time.monotonic()
        with SyncClient(project, spawn=False) as c:
            train_id = c.request("submit", kind="train", params={"max_steps": args.steps})["job_ids"][0]
            submitted = [train_id]
            left = args.jobs
            while left:
                n = min(1000, left)
                params = {"prompt": f"mika, soak batch {len(submitted)}", "count": n, "seed": len(submitted),
                          "width": args.size, "height": args.size, "steps": args.gen_steps}
                submitted += c.request("submit", kind="gen", params=params)["job_ids"]
                left -= n
        out["submit_s"] = time.monotonic() - t0
        print(f"submitted 1 training job and {args.jobs:,} generations in {out['submit_s']:.1f} s", file=sys.stderr)
        ids = set(submitted)
        next_key, next_print, next_sample, k = time.monotonic() + 2, time.monotonic(), time.monotonic(), 0
        limit = t0 + args.timeout * 60
        while True:
            state = app.state
            done = len(ended & ids)
            steps = len(state.history) if state.history else 0
            now = time.monotonic()
            if now >= next_sample:
                row = mon.sample(t0, done, steps)
                next_sample = now + 2
            if now >= next_print:
                print(f"[{row['t']:6.0f} s] jobs {done:,}/{len(ids):,} · steps {steps:,}/{args.steps:,} · "
                      f"RSS engine {row['engine']:.0f} MiB, UI {row['ui']:.0f} MiB", file=sys.stderr)
                next_print = now + args.report_every
            if done == len(ids):
                break
            if now > limit:
                out["timed_out"] = True
                break
            if now >= next_key:  # a key a second, as a user watching the run might press
                key, mode = KEYS[k % len(KEYS)]
                k += 1
                if mode is not None:
                    shown = clock.next_frame_showing(lambda m=mode: app.current_mode == m)
                else:
                    tbl = app.screen.query_one(DataTable) if app.current_mode == "queue" else None
                    if tbl is None:
                        continue
                    want = tbl.cursor_row + (1 if key == "down" else -1)
                    if not 0 <= want < tbl.row_count:
                        continue
                    # rows slide up as jobs finish: follow the job, not the row number (done once the cursor is on
                    # it, or once it has left the listed window: the oldest finished jobs leave it as new ones finish)
                    target = row_key(tbl, want)
                    shown = clock.next_frame_showing(
                        lambda t=tbl, r=target: row_key(t, t.cursor_row) == r or r not in t.rows)
                sent = time.perf_counter()
                app._driver.send_message(events.Key(key, key if len(key) == 1 else None))
                try:
                    mon.latency.append(1000 * ((await asyncio.wait_for(shown, 5))[0] - sent))
                    mon.keys.append(f"{key}@{app.current_mode}")
                except TimeoutError:
                    mon.missed.append(f"{key}@{app.current_mode}")
                next_key = time.monotonic() + 1
            await asyncio.sleep(0.2)
        out["elapsed"] = time.monotonic() - t0
        mon.sample(t0, done, steps)
        await pilot.pause(1.0)  # the last events
        state = app.state
        out["ui_ended"] = ended & ids
        out["ui_states"] = {i: j["state"] for i, j in state.jobs.items()}
        out["ui_steps"] = list(state.history.steps) if state.history else []
        out["ui_run"] = state.history.name if state.history else None
        out["ids"] = sorted(ids)
        out["train_id"] = train_id
    return out


def verify(project: Any, out: dict[str, Any], args: argparse.Namespace) -> tuple[list[list[Any]], dict[str, Any]]:
    """Checks against the engine's records and the files on disk; returns table rows and figures."""
    from engine import pngmeta
    from zchar_tui.client import SyncClient

    with SyncClient(project, spawn=False) as c:
        jobs = {j["id"]: j for j in c.request("jobs", timeout=120)}
        run = out["ui_run"] or jobs[out["train_id"]]["params"]["run"]
        history = c.request("run_history", run=run, timeout=120)
    gens = [jobs[i] for i in out["ids"] if i != out["train_id"]]
    train = jobs[out["train_id"]]
    checks: list[list[Any]] = []

    def check(what: str, ok: bool, detail: str) -> None:
        checks.append([what, "ok" if ok else "FAILED", detail])

    states: dict[str, int] = {}
    for j in jobs.values():
        states[j["state"]] = states.get(j["state"], 0) + 1
    check("every job done", all(jobs[i]["state"] == "done" for i in out["ids"]) and len(jobs) == len(out["ids"]),
          f"{len(jobs):,} jobs in the engine: " + ", ".join(f"{n:,} {s}" for s, n in sorted(states.items())))
    with sqlite3.connect(f"file:{project.db_path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT job_id, path, seed FROM outputs").fetchall()
    per_job: dict[int, list[tuple[str, int]]] = {}
    for job_id, path, seed in rows:
        per_job.setdefault(job_id, []).append((path, seed))
    once = all(len(per_job.get(j["id"], [])) == 1 for j in gens)
    check("every image recorded once", once and len(rows) == len(gens),
          f"{len(rows):,} output rows for {len(gens):,} generation jobs")
    missing, wrong = 0, 0
    for j in gens:
        for path, seed in per_job.get(j["id"], []):
            file = project.root / path
            meta = pngmeta.read_meta(file) if file.is_file() else None
            if meta is None:
                missing += 1
            elif meta.get("job_id") != j["id"] or not meta.get("seed") == seed == j["params"]["seed"]:
                wrong += 1
    pngs = sum(1 for _ in project.outputs_dir.rglob("*.png"))
    check("every PNG on disk, with its job's parameters", missing == 0 and wrong == 0 and pngs == len(gens),
          f"{pngs:,} PNGs in outputs/; {missing} missing or unreadable, {wrong} with another job's parameters")
    metric_steps = history["metrics"]["step"]
    check("one metric row per step", metric_steps == list(range(1, args.steps + 1)),
          f"{len(metric_steps):,} rows for {args.steps:,} steps (run {run}, {train['state']})")
    held = out["ui_states"]
    ui_ok = (out["ui_ended"] == set(out["ids"]) and all(s == "done" for s in held.values())
             and len(held) == min(len(out["ids"]), 1000))
    check("dashboard agrees with the engine", ui_ok and out["ui_steps"] == [float(s) for s in metric_steps],
          f"dashboard was told of {len(out['ui_ended']):,} jobs ending, holds the newest {len(held):,} (all done), "
          f"and {len(out['ui_steps']):,} steps")
    log = project.log_path.read_text(errors="replace")
    problems = [line for line in log.splitlines() if "Traceback" in line or "too slow" in line or " ERROR " in line]
    check("engine log clean", not problems, f"{len(problems)} tracebacks/errors/dropped clients"
          + (f"; first: {problems[0][:100]}" if problems else ""))

    started = min(j["started"] for j in gens)
    finished = max(j["finished"] for j in gens)
    durations = [j["finished"] - j["started"] for j in gens]
    t = [v for v in history["metrics"]["t"] if v is not None]
    figures = {"gen_rate": len(gens) / (finished - started), "gen_median": statistics.median(durations),
               "gen_first_half": statistics.median(durations[:len(durations) // 2]),
               "gen_second_half": statistics.median(durations[len(durations) // 2:]),
               "train_rate": (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 else float("nan"),
               "train_wall": train["finished"] - train["started"]}
    return checks, figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=10_000, help="generation jobs (default 10000)")
    ap.add_argument("--steps", type=int, default=3_000, help="training steps (default 3000)")
    ap.add_argument("--size", type=int, default=64, help="image side for generations (default 64)")
    ap.add_argument("--gen-steps", type=int, default=1, help="denoising steps per image (default 1)")
    ap.add_argument("--timeout", type=float, default=120, help="give up after this many minutes (default 120)")
    ap.add_argument("--report-every", type=float, default=30, help="seconds between progress lines (default 30)")
    ap.add_argument("--keep", type=Path, help="make the project here and keep it (default: a temporary folder)")
    args = ap.parse_args()

    wall = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="zchar-soak-") as tmp:
        isolate_env(Path(tmp))
        root = args.keep or Path(tmp) / "proj"
        project = build_project(root, args.steps)
        engine = start_engine(project)
        mon = Monitor(engine.pid)
        try:
            out = asyncio.run(drive(project, args, mon))
            engine_peak = proc_mem(engine.pid)[1]
            checks, fig = verify(project, out, args)
        finally:
            stop_engine(project, engine)
        s = mon.samples
        ui_peak = max(r["ui_peak"] for r in s)
        # samples once training is over and a tenth of the generations are done (warm), to the end
        gen_phase = [r for r in s if r["steps"] >= args.steps and r["done"] > 1 + args.jobs // 10]
        first, last = (gen_phase[0], gen_phase[-1]) if len(gen_phase) > 1 else (s[0], s[-1])
        lat = mon.latency
        missed = f" ({', '.join(mon.missed[:5])})" if mon.missed else ""
        span = s[-1]["t"] - s[0]["t"] or 1.0
        cpu = {k: 100 * (s[-1][k] - s[0][k]) / span for k in ("engine_cpu", "ui_cpu")}
        rows = [
            ["whole soak (submit → last job done)", f"{out['elapsed'] / 60:.1f} min",
             f"1 training run + {args.jobs:,} generations; submitting took {out['submit_s']:.1f} s"],
            ["generation throughput", f"{fig['gen_rate']:.1f} jobs/s",
             f"{args.size}x{args.size}, {args.gen_steps} step(s); median {1000 * fig['gen_median']:.0f} ms/job "
             f"(first half {1000 * fig['gen_first_half']:.0f}, second half {1000 * fig['gen_second_half']:.0f})"],
            ["training throughput", f"{fig['train_rate']:.1f} steps/s",
             f"{args.steps:,} steps at 64², rank 4; job wall time {fig['train_wall']:.0f} s (load + checkpoints + "
             "validation)"],
            ["engine peak RSS", f"{engine_peak:.0f} MiB",
             f"during generations {first['engine']:.0f} → {last['engine']:.0f} MiB "
             f"(jobs {first['done']:,} → {last['done']:,})"],
            ["dashboard peak RSS", f"{ui_peak:.0f} MiB",
             f"during generations {first['ui']:.0f} → {last['ui']:.0f} MiB (this process: UI + bench driver)"],
            ["CPU (100% = one core)", f"engine {cpu['engine_cpu']:.0f}%, dashboard {cpu['ui_cpu']:.0f}%",
             "averaged over the whole soak"],
            ["key → frame during the soak", f"p50 {percentile(lat, 50):.0f} / p95 {percentile(lat, 95):.0f} ms",
             f"{len(lat)} keys (pane switches, queue up/down), max {max(lat, default=0):.0f} ms, "
             f"{len(mon.missed)} unanswered in 5 s{missed}; slowest: "
             + ", ".join(f"{k} {v:.0f}" for v, k in sorted(zip(lat, mon.keys, strict=True), reverse=True)[:3])],
        ]
        if out.get("timed_out"):
            rows.insert(0, ["TIMED OUT", f"after {args.timeout:.0f} min", "figures below are partial"])
        print()
        print(table(f"zchar soak (bench/soak.py --jobs {args.jobs} --steps {args.steps})", ["figure", "value", "notes"],
                    rows))
        print()
        print(table("Nothing lost", ["check", "result", "detail"], checks))
        print(f"\nfull run took {(time.monotonic() - wall) / 60:.1f} min (setup, soak, checks)")
        if args.keep:
            (args.keep / "soak.json").write_text(json.dumps({"samples": s, "latency": lat}, indent=1))
        return 0 if all(c[1] == "ok" for c in checks) and not out.get("timed_out") else 1


if __name__ == "__main__":
    sys.exit(main())
