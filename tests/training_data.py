"""Deterministic training histories and GPU readings for the training-screen tests, snapshot and bench."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from engine.telemetry import GpuReader
from tests.conftest import draw_character
from tests.fake_nvml import FakeNvml, h100

RUN = "run-20250101-120000"
ENGINE_PID = 4242


def loss_curve(n: int, seed: int = 1, level: float = 0.03) -> tuple[list[float], list[float]]:
    """A falling, noisy loss and its EMA (what the engine reports), in the seed guide's normal range."""
    rnd = random.Random(seed)
    loss = [level + 0.06 * math.exp(-s / max(1, n / 4)) + 0.02 * rnd.random() for s in range(1, n + 1)]
    smooth, acc = [], (loss[0] if loss else 0.0)
    for v in loss:
        acc = 0.95 * acc + 0.05 * v
        smooth.append(acc)
    return loss, smooth


def metrics(n: int, total_steps: int, total_epochs: int = 10, **over: Any) -> dict[str, list[Any]]:
    loss, smooth = loss_curve(n)
    steps = list(range(1, n + 1))
    per_epoch = max(1, total_steps // total_epochs)
    cols = {"step": steps, "epoch": [1 + (s - 1) // per_epoch for s in steps], "loss": loss, "loss_smooth": smooth,
            "lr": [2.5e-4] * n, "grad_norm": [0.42] * n, "sec_per_step": [1.5] * n, "peak_mem": [21.5] * n,
            "t": [1.7e9 + s for s in steps]}
    cols.update(over)
    return cols


def run_record(step: int, total_steps: int, state: str = "running", total_epochs: int = 10) -> dict[str, Any]:
    return {"name": RUN, "state": state, "job_id": 1, "created": 1.7e9, "updated": 1.7e9, "step": step,
            "total_steps": total_steps, "epoch": 1 + (step - 1) * total_epochs // total_steps,
            "total_epochs": total_epochs, "lora": "", "message": "", "config": {"train": {"optimizer": "prodigy"}}}


def samples(root: Path, steps: list[int], prompts: int = 4, draw: bool = True) -> list[dict[str, Any]]:
    out = []
    folder = root / "samples" / RUN
    folder.mkdir(parents=True, exist_ok=True)
    for si, step in enumerate(steps):
        for p in range(prompts):
            path = folder / f"step{step:06d}-p{p}-s42.png"
            if draw and not path.exists():
                draw_character(path, si * prompts + p, 64)
            out.append({"run": RUN, "epoch": si + 1, "step": step, "prompt_index": p, "seed": 42,
                        "prompt": f"mika, validation prompt {p + 1}", "path": str(path.relative_to(root))})
    return out


def checkpoints(root: Path, steps: list[int], pinned: tuple[int, ...] = (), files: bool = True) -> list[dict]:
    out = []
    for step in steps:
        folder = root / "loras" / "checkpoints" / RUN / f"step-{step:06d}"
        if files:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"Mika-step{step:06d}.safetensors").write_bytes(b"stand-in")
            (folder / "optimizer.safetensors").write_bytes(b"stand-in")
        out.append({"run": RUN, "step": step, "epoch": step // 100, "path": str(folder.relative_to(root)),
                    "loss": 0.0421, "pinned": step in pinned, "t": 1.7e9})
    return out


def gpu_reading(**over: Any) -> dict[str, Any]:
    """What the engine's sampler sends for one H100 running this engine plus an idle second GPU."""
    fake = FakeNvml(gpus=[h100(0, pid=ENGINE_PID, **over), h100(1, pid=ENGINE_PID, procs={}, util=0, mem_used=600,
                                                                 temp=31, power=70.0)])
    reading = GpuReader(nvml=fake, pid=ENGINE_PID).read()
    reading["torch"] = {"device": 0, "uuid": reading["gpus"][0]["uuid"], "reserved": 55_296, "max_reserved": 57_344,
                        "allocated": 50_000}
    return reading


def snapshot(root: Path, n: int = 300, total_steps: int = 1000, state: str = "running", with_samples: bool = True,
             telemetry: dict[str, Any] | None = None) -> dict[str, Any]:
    """An attach snapshot as the engine sends it, for a run `n` steps in."""
    run = run_record(max(n, 1), total_steps, state)
    job_state = {"running": "running", "stopping": "stopping"}.get(state, "stopped")
    job = {"id": 1, "kind": "train", "state": job_state, "position": 1.0, "priority": 1,
           "params": {"run": RUN, "resume": False, "max_steps": None}, "created": 1.7e9, "started": 1.7e9,
           "finished": None, "progress": n / total_steps, "message": "", "error": "", "result": {}, "attempts": 0}
    ckpt_steps = [s for s in (100, 200, 300, 400, 500) if s <= n]
    return {
        "engine": {"state": "busy" if job_state == "running" else "idle", "pid": ENGINE_PID, "version": "0.1.0",
                   "job_id": 1 if job_state == "running" else None},
        "seq": 1, "jobs": [job], "runs": [run],
        "latest_run": {"run": run, "metrics": metrics(n, total_steps),
                       "samples": samples(root, [s for s in (100, 200, 300) if s <= n]) if with_samples else [],
                       "checkpoints": checkpoints(root, ckpt_steps, pinned=(ckpt_steps[0],) if ckpt_steps else ())},
        "telemetry": telemetry if telemetry is not None else gpu_reading(),
        "outputs": [], "log": [], "progress": None,
    }
