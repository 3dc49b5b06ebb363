"""Losing the terminal (SSH drop, closed window) ends the dashboard at once; the engine and its jobs carry on."""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from engine.project import Project
from tests.conftest import kill_engine
from zchar_tui.client import engine_running

ROOT = Path(__file__).resolve().parents[2]


def start_dashboard(project: Project) -> tuple[int, int]:
    pid, fd = pty.fork()
    if pid == 0:  # child: the dashboard in a real pseudo-terminal
        os.environ["PYTHONPATH"] = str(ROOT)
        os.environ["TERM"] = "xterm-256color"
        os.execv(sys.executable, [sys.executable, "-m", "zchar_tui", "open", str(project.root),
                                  "--image-protocol", "halfcell"])
    return pid, fd


def read_until(fd: int, needle: bytes, timeout: float = 30) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            seen += chunk
            if needle in seen:
                return seen
    raise AssertionError(f"{needle!r} never appeared; got {seen[-500:]!r}")


def wait_exit(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.05)
    return None


@pytest.mark.parametrize("how", ["sighup", "close-terminal"])
def test_dashboard_exits_when_the_terminal_goes_away(tiny_project: Project, how: str) -> None:
    pid, fd = start_dashboard(tiny_project)
    status = None
    try:
        read_until(fd, b"Dataset")
        deadline = time.monotonic() + 20
        while not engine_running(tiny_project) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine_running(tiny_project)
        if how == "sighup":
            os.kill(pid, signal.SIGHUP)
        else:
            os.close(fd)  # the pty master goes away, as when sshd drops the session
        status = wait_exit(pid, 10)
        assert status is not None, "the dashboard kept running without its terminal"
        assert engine_running(tiny_project), "the engine must outlive the dashboard"
    finally:
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        if how == "sighup":
            os.close(fd)
        kill_engine(tiny_project)
