"""zchar train: queue a run in the project's engine, or run it here (`--foreground`) with a Rich progress bar.

The foreground run calls `engine.train_foreground` (torch is imported there, inside the engine package); this module
only renders its events.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from engine import protocol
from engine.errors import JobFailed
from engine.jobs import JobParamError, validate_train
from engine.project import Project, Settings
from zchar_tui.cli.common import CliError, add_project_arg, load_project
from zchar_tui.cli.engine_cmds import fmt_duration
from zchar_tui.client import SyncClient, engine_running
from zchar_tui.safe_text import printable

EXIT_STOPPED = 130  # stopped by Ctrl-C (resumable), as shells report an interrupt


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train the character LoRA (queued in the engine, or --foreground)",
                       description="Train a LoRA on the project's dataset with the settings in project.toml.")
    add_project_arg(p)
    p.add_argument("--foreground", action="store_true",
                   help="run here with a progress bar instead of the engine (Ctrl-C stops with a checkpoint)")
    p.add_argument("--resume", action="store_true", help="carry on the latest run from its last checkpoint")
    p.add_argument("--max-steps", type=int, metavar="N", help="stop after N steps")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    project, settings = load_project(args.project)
    if args.max_steps is not None and args.max_steps < 1:
        raise CliError(f"--max-steps {args.max_steps}: expected a positive number of steps")
    params: dict[str, Any] = {"resume": args.resume}
    if args.max_steps is not None:
        params["max_steps"] = args.max_steps
    if args.foreground:
        return _foreground(project, settings, params)
    with SyncClient(project) as client:
        result = client.request("submit", kind="train", params=params)
    for note in result.get("notes", []):
        print(f"note: {note}")
    print(f"queued training job {result['job_ids'][0]}; follow it with: zchar open {args.project} --pane training")
    return 0


def _refuse_if_engine_busy(project: Project) -> None:
    if not engine_running(project):
        return
    with SyncClient(project, spawn=False) as client:
        running = client.request("status").get("running")
    if running:
        raise CliError(f"the project's engine is running job {running['id']} ({running['kind']}); a foreground "
                       "run would compete for the GPU — queue it there (drop --foreground) or wait")


def _foreground(project: Project, settings: Settings, params: dict[str, Any]) -> int:
    from engine.train_foreground import ForegroundContext, train_foreground

    _refuse_if_engine_busy(project)
    try:
        (params,), _ = validate_train(project, settings, params)
    except JobParamError as exc:
        raise CliError(str(exc)) from None
    view = ForegroundView()
    ctx = ForegroundContext(project, params, view.on_event)

    def on_sigint(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C interrupts at once
        ctx.request_stop("cancel")
        view.note("stopping after this step (saving a checkpoint); Ctrl-C again to quit now")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        with view:
            result = train_foreground(ctx)
    except JobFailed as exc:
        raise CliError(str(exc)) from None
    finally:
        signal.signal(signal.SIGINT, previous)
    view.note(result.get("message", "done"))
    return EXIT_STOPPED if result.get("stopped") else 0


class ForegroundView:
    """Renders training events: loading stages, a step bar with loss, s/step and ETA, and notable events."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

        self.console = Console(stderr=True)
        self.live = self.console.is_terminal
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), console=self.console, transient=False, disable=not self.live)
        self.load_task: Any = None
        self.step_task: Any = None

    def __enter__(self) -> ForegroundView:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def note(self, text: str, style: str = "") -> None:
        self.console.print(printable(text), style=style or None, highlight=False, markup=False)

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == protocol.EV_LOADING:
            self._loading(data)
        elif kind == protocol.EV_METRIC:
            self._metric(data)
        elif kind == protocol.EV_LOG:
            level = data.get("level")
            self.note(f"{level}: {data['message']}" if level != "info" else data["message"],
                      "yellow" if level == "warning" else "red" if level == "error" else "dim")
        elif kind == protocol.EV_CHECKPOINT:
            self.note(f"checkpoint at step {data['step']}: {data['path']}", "dim")
        elif kind == protocol.EV_SAMPLE:
            self.note(f"sample: {data['path']}", "dim")
        elif kind == protocol.EV_PROGRESS and self.step_task is not None and "sample" in data.get("message", ""):
            self.progress.update(self.step_task, description=data["message"])
        elif kind == protocol.EV_RUN and self.step_task is not None and data.get("state") != "running":
            self.progress.update(self.step_task, description=f"run {data['name']}: {data['state']}")

    def _loading(self, data: dict[str, Any]) -> None:
        message = data.get("message") or data["stage"]
        total = data.get("total") or None
        if not self.live:
            if data.get("done", 0) in (0, total):
                self.note(message, "dim")
            return
        if self.load_task is None:
            self.load_task = self.progress.add_task(message, total=total, info="")
        self.progress.update(self.load_task, description=message, total=total, completed=data.get("done", 0))
        if total and data.get("done", 0) >= total:  # a stage finished: its line goes
            self.progress.remove_task(self.load_task)
            self.load_task = None

    def _metric(self, m: dict[str, Any]) -> None:
        info = (f"loss {m['loss']:.4f} (avg {m['loss_smooth']:.4f})  {m['sec_per_step']:.2f} s/step  "
                f"ETA {fmt_duration(m.get('eta_s'))}")
        if m.get("peak_mem"):
            info += f"  {m['peak_mem']:.1f} GiB"
        desc = f"epoch {m['epoch']}/{m['total_epochs']}"
        if self.live:
            if self.step_task is None:
                self.step_task = self.progress.add_task(desc, total=m["total_steps"], info=info)
            self.progress.update(self.step_task, description=desc, completed=m["step"], total=m["total_steps"],
                                 info=info)
            return
        every = max(1, m["total_steps"] // 20)  # a log-friendly line every 5 % when not on a terminal
        if m["step"] % every == 0 or m["step"] == m["total_steps"]:
            print(f"step {m['step']}/{m['total_steps']} {desc}: {info}", file=sys.stderr, flush=True)
