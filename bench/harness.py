"""Shared pieces of the dashboard benches (bench/ui.py, bench/soak.py): engines started for a bench, process
memory from /proc, frame timing of a headless dashboard, percentiles and tables. Standard library only at import.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def isolate_env(tmp: Path) -> None:
    """Like the tests' fixture: no user config, no network, the bench's engines never linger."""
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "xdg")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["ZCHAR_ENGINE_IDLE_EXIT"] = "120"
    os.environ["TEXTUAL_ANIMATIONS"] = "none"


def start_engine(project: Any, argv: list[str] | None = None, timeout: float = 30.0) -> subprocess.Popen[bytes]:
    """A detached engine for `project` (argv defaults to `python -m engine.server`), once it answers."""
    from zchar_tui.client import SyncClient

    argv = argv or [sys.executable, "-m", "engine.server", str(project.root)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    project.ensure_dirs()
    with open(project.log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                env=env, cwd=str(project.root))
    deadline = time.monotonic() + timeout
    while True:
        try:
            SyncClient(project, spawn=False, timeout=1.0).close()
            return proc
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bench engine did not start; see {project.log_path}") from None
            time.sleep(0.05)


def stop_engine(project: Any, proc: subprocess.Popen[bytes] | None = None) -> None:
    from tests.conftest import kill_engine

    kill_engine(project)
    if proc is not None:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def proc_mem(pid: int | str = "self") -> tuple[float, float]:
    """(resident, peak resident) MiB of a process, from /proc/PID/status (VmRSS, VmHWM)."""
    fields = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time of a process so far, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, round(q / 100 * len(s) + 0.5) - 1))
    return s[k]


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    out = [title, line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


class FrameClock:
    """Records when the dashboard puts a frame on the (headless) screen and wakes waiters whose condition that
    frame shows. Install with `FrameClock.install(app)`: it wraps `App._display`, the one place Textual hands a
    compositor update to the terminal, and renders the update to terminal bytes as a real terminal run would."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.frames = 0
        self._waiters: list[tuple[Callable[[], bool], Any]] = []

    @classmethod
    def install(cls, app: Any) -> FrameClock:
        clock = cls(app)
        display = app._display

        def timed_display(screen: Any, renderable: Any) -> None:
            if renderable is not None and screen is app.screen:
                renderable.render_segments(app.console)
                clock.frames += 1
                clock._check()
            display(screen, renderable)

        app._display = timed_display
        return clock

    def _check(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        for waiter in list(self._waiters):
            condition, future = waiter
            if not future.done() and condition():
                future.set_result((now, cpu))
                self._waiters.remove(waiter)

    def next_frame_showing(self, condition: Callable[[], bool]) -> Any:
        """A future resolved with (perf_counter, thread_time) of the first frame drawn while `condition()` holds:
        wall time is what a user waits, the UI thread's CPU time is the dashboard's own work (on a busy machine the
        difference is time the scheduler gave to other processes)."""
        import asyncio

        future = asyncio.get_running_loop().create_future()
        self._waiters.append((condition, future))
        return future
