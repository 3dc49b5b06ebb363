"""zchar engine {status,stop} / zchar queue."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from zchar_tui.cli.common import add_project_arg, load_project
from zchar_tui.client import SyncClient, engine_pid, engine_running, stop_engine
from zchar_tui.safe_text import printable


def register(sub: Any) -> None:
    p = sub.add_parser("engine", help="status or stop of a project's engine",
                       description="The engine is the background process that runs training and generation.")
    esub = p.add_subparsers(dest="engine_command", metavar="{status,stop}", required=True)
    s = esub.add_parser("status", help="state, running job, training progress")
    add_project_arg(s)
    s.set_defaults(func=cmd_status)
    s = esub.add_parser("stop", help="stop it (a running training run checkpoints first)")
    add_project_arg(s)
    s.set_defaults(func=cmd_stop)

    p = sub.add_parser("queue", help="list jobs and their states", description="List the engine's jobs.")
    add_project_arg(p)
    p.add_argument("--all", action="store_true", help="include every finished job (default: the last 50)")
    p.set_defaults(func=cmd_queue)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def run_line(run: dict[str, Any], metric: dict[str, Any] | None) -> str:
    """`run NAME: STATE, step S/T, epoch E/N, loss L (smoothed M), X s/step, ETA D` — what is known of it."""
    parts = [f"run {run['name']}: {run['state']}"]
    m = metric or {}
    step = m.get("step") or run.get("step")
    total = m.get("total_steps") or run.get("total_steps")
    if step:
        parts.append(f"step {step}/{total or '?'}")
    epoch, epochs = m.get("epoch") or run.get("epoch"), m.get("total_epochs") or run.get("total_epochs")
    if epoch:
        parts.append(f"epoch {epoch}/{epochs or '?'}")
    if isinstance(m.get("loss"), (int, float)):
        smooth = m.get("loss_smooth")
        smoothed = f" (smoothed {smooth:.4f})" if isinstance(smooth, (int, float)) else ""
        parts.append(f"loss {m['loss']:.4f}{smoothed}")
    if isinstance(m.get("sec_per_step"), (int, float)):
        parts.append(f"{m['sec_per_step']:.2f} s/step")
    if run["state"] in ("running", "stopping"):
        eta = m.get("eta_s")
        if eta is None and step and total and isinstance(m.get("sec_per_step"), (int, float)):
            eta = (total - step) * m["sec_per_step"]
        parts.append(f"ETA {fmt_duration(eta)}")
    if run.get("message"):
        parts.append(run["message"])
    return ", ".join(parts)


def cmd_status(args: argparse.Namespace) -> int:
    project, _ = load_project(args.project)
    if not engine_running(project):
        print(f"engine: not running ({project.root})")
        return 0
    with SyncClient(project, spawn=False) as client:
        st = client.request("status")
    eng = st["engine"]
    print(f"engine: {eng['state']} (pid {eng['pid']}, up {fmt_duration(time.time() - eng['started'])}, "
          f"zchar {eng['version']})")
    job = st.get("running")
    print(f"running: job {job['id']} ({job['kind']}, {job['state']})" if job else "running: nothing")
    print(f"queued: {st['queued']}")
    run, metric = st.get("run"), st.get("metric")
    if run:
        print(run_line(run, metric))
    tel = st.get("telemetry") or {}
    for g in tel.get("gpus", []):
        print(f"gpu {g['index']}: {g.get('name')} {g.get('mem_used')}/{g.get('mem_total')} MiB, util {g.get('util')}%")
    if not tel.get("available"):
        print(f"gpu: {tel.get('reason') or 'no NVIDIA GPU'}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    project, _ = load_project(args.project)
    pid = engine_pid(project)
    if stop_engine(project):
        print(f"engine stopped (pid {pid})")
    else:
        print("engine: not running")
    return 0


def cmd_queue(args: argparse.Namespace) -> int:
    project, _ = load_project(args.project)
    with SyncClient(project) as client:
        jobs = client.request("jobs", limit=0 if args.all else 50)
    if not jobs:
        print("no jobs")
        return 0
    print(f"{'id':>5}  {'kind':5}  {'state':9}  {'progress':>8}  what")
    for j in jobs:
        detail = j["error"] or j["message"]
        print(printable(f"{j['id']:>5}  {j['kind']:5}  {j['state']:9}  {100 * j['progress']:7.0f}%  "
                        f"{describe_job(j)}" + (f"  — {detail}" if detail else ""), one_line=True))
    return 0


def describe_job(job: dict[str, Any]) -> str:
    """One line: the prompt and seed of a generation, the size of a grid, the run of a training job."""
    p = job["params"]
    if job["kind"] == "train":
        return f"run {p.get('run')}" + (" (resume)" if p.get("resume") else "")
    prompt = p.get("prompt", "")
    text = (prompt[:57] + "…") if len(prompt) > 58 else prompt
    if job["kind"] == "grid":
        text += f"  [grid {len(p.get('loras', []))}x{len(p.get('strengths', []))}]"
    if "seed" in p:
        text += f"  seed {p['seed']}"
    if p.get("loras") and job["kind"] == "gen":
        text += "  + " + ", ".join(f"{Path(lo['path']).stem}:{lo['strength']:g}" for lo in p["loras"])
    return text
