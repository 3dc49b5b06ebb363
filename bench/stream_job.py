"""A bench-only engine job kind, `stream`: a fake training run that reports like `engine.train` does (a `run` record,
then one `train.metric` and one `job.progress` per step) at a fixed step rate, plus a GPU reading every second.

It never enters production code: `engine_command()` starts an engine whose `jobs.KINDS` gains this kind.
"""

from __future__ import annotations

import math
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def validate(project: Any, settings: Any, params: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    return [{"run": "bench-stream", "rate": 100.0, "steps": 1_000_000, "telemetry": None, **params}], []


def run_job(ctx: Any) -> dict[str, Any]:
    from engine import protocol

    p = ctx.params
    run, rate, total = p["run"], float(p["rate"]), int(p["steps"])
    ctx.emit(protocol.EV_RUN, {"name": run, "state": "running", "job_id": ctx.job_id, "step": 0,
                               "total_steps": total, "epoch": 1, "total_epochs": 1, "lora": "", "message": "",
                               "config": {"train": {"optimizer": "adamw"}}})
    rnd = random.Random(0)
    smooth = 0.1
    start = time.monotonic()
    next_gpu = start
    step = 0
    while step < total and not ctx.should_stop:
        step += 1
        loss = 0.04 + 0.06 * math.exp(-step / 20_000) + 0.02 * rnd.random()
        smooth = 0.95 * smooth + 0.05 * loss
        eta = (total - step) / rate
        ctx.emit(protocol.EV_METRIC, {"run": run, "step": step, "epoch": 1, "loss": loss, "loss_smooth": smooth,
                                      "lr": 1e-4, "grad_norm": 0.4, "sec_per_step": 1 / rate, "peak_mem": 21.5,
                                      "t": time.time(), "total_steps": total, "total_epochs": 1, "eta_s": eta})
        ctx.progress(step, total, f"step {step}/{total}, loss {loss:.4f}", eta)
        now = time.monotonic()
        if p.get("telemetry") and now >= next_gpu:
            ctx.emit(protocol.EV_TELEMETRY, p["telemetry"])
            next_gpu = now + 1.0
        delay = start + step / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    ctx.emit(protocol.EV_RUN, {"name": run, "state": "stopped" if ctx.should_stop else "done", "step": step})
    return {"stopped": ctx.should_stop, "message": f"streamed {step} steps"}


def engine_command(project: Path) -> list[str]:
    """argv of an engine for `project` that also runs `stream` jobs (same code as `python -m engine.server`)."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from engine import jobs; from bench import stream_job; "
            "jobs.KINDS['stream'] = ('bench.stream_job:run_job', stream_job.validate); "
            "from engine.server import main; sys.exit(main([sys.argv[2]]))")
    return [sys.executable, "-c", code, str(ROOT), str(project)]
