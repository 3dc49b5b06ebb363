"""Losing the terminal (SSH drop, closed window) ends the dashboard at once; the engine and its jobs carry on."""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.project import Project
from tests.conftest import kill_engine
from zchar_tui.client import SyncClient, engine_running

ROOT = Path(__file__).resolve().parents[2]


def start_dashboard(project: Project, pane: str = "dataset") -> tuple[int, int]:
    pid, fd = pty.fork()
    if pid == 0:  # child: the dashboard in a real pseudo-terminal
        os.environ["PYTHONPATH"] = str(ROOT)
        os.environ["TERM"] = "xterm-256color"
        os.execv(sys.executable, [sys.executable, "-m", "zchar_tui", "open", str(project.root),
                                  "--image-protocol", "halfcell", "--pane", pane])
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


def training_step(client: SyncClient) -> int:
    return (client.request("status").get("metric") or {}).get("step") or 0


def wait_for_step(client: SyncClient, step: int, timeout: float = 90) -> int:
    deadline = time.monotonic() + timeout
    while (now := training_step(client)) < step:
        assert time.monotonic() < deadline, f"training stayed at step {now}"
        time.sleep(0.05)
    return now


@pytest.mark.slow
def test_training_carries_on_after_a_hangup_and_a_new_dashboard_attaches(tiny_project: Project,
                                                                          engine_of: Callable) -> None:
    tiny_project.update({"train.epochs": 1000})  # far longer than this test
    client = engine_of(tiny_project)
    job_id = client.request("submit", kind="train", params={"run": "hup-run"})["job_ids"][0]
    wait_for_step(client, 1)
    pid, fd = start_dashboard(tiny_project, pane="training")
    status = None
    try:
        read_until(fd, b"hup-run")  # the dashboard shows the run
        os.kill(pid, signal.SIGHUP)  # the SSH session drops
        status = wait_exit(pid, 10)
        assert status is not None, "the dashboard kept running without its terminal"
    finally:
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    step = wait_for_step(client, training_step(client) + 10)  # training goes on with nobody watching
    job = next(j for j in client.request("jobs") if j["id"] == job_id)
    assert job["state"] == "running" and job["attempts"] == 0
    pid, fd = start_dashboard(tiny_project, pane="training")  # a new session: the dashboard attaches
    try:
        seen = read_until(fd, b"hup-run")
        if b"running" not in seen:
            read_until(fd, b"running")
    finally:
        os.kill(pid, signal.SIGHUP)
        if wait_exit(pid, 10) is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    assert training_step(client) > step and engine_running(tiny_project)
