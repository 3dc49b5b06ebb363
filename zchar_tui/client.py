"""The engine client: find or start a project's engine, send commands, receive events.

`EngineClient` is asyncio (the dashboard); `SyncClient` is blocking (the CLI). Both speak engine/protocol.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import engine
from engine import protocol
from engine.project import Project, lock_held

SPAWN_TIMEOUT_S = 20.0
LOG_ROTATE_BYTES = 10 * 1024 * 1024


class EngineError(Exception):
    """The engine refused a command or could not be reached; the text is for the user."""


def engine_running(project: Project) -> bool:
    """True when some process holds the engine lock (is serving or starting up)."""
    return lock_held(project.lock_path, fcntl.LOCK_SH)


def engine_pid(project: Project) -> int | None:
    try:
        return int(project.lock_path.read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None


def _connect_socket(project: Project) -> socket.socket | None:
    address, dir_fd = protocol.socket_address(project.socket_path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(address)
        return sock
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


def spawn_engine(project: Project) -> subprocess.Popen[bytes]:
    """Start a detached engine: its own session, stdin from /dev/null, output to .zchar/engine.log."""
    project.ensure_dirs()
    log_path = project.log_path
    if log_path.exists() and log_path.stat().st_size > LOG_ROTATE_BYTES:
        os.replace(log_path, log_path.with_suffix(".log.1"))
    env = dict(os.environ)
    # The engine runs the same code as this client, wherever it was imported from.
    pkg_root = str(Path(engine.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH", "")) if p)
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "engine.server", str(project.root)],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
            start_new_session=True, close_fds=True, env=env, cwd=str(project.root),
        )


def ensure_engine(project: Project, spawn: bool = True, timeout: float = SPAWN_TIMEOUT_S) -> socket.socket:
    """A connected socket to the project's engine, starting one if needed (and allowed)."""
    if not project.exists():
        raise EngineError(f"no project.toml in {project.root}")
    sock = _connect_socket(project)
    if sock is not None:
        return sock
    proc = None
    if not engine_running(project):
        if not spawn:
            raise EngineError(f"no engine is running for {project.root}")
        proc = spawn_engine(project)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock = _connect_socket(project)
        if sock is not None:
            return sock
        if proc is not None and proc.poll() is not None and not engine_running(project):
            raise EngineError(f"the engine exited at start (code {proc.returncode}){_start_failure(project)}; "
                              f"see {project.log_path}")
        time.sleep(0.05)
    raise EngineError(f"the engine did not answer within {timeout:.0f} s; see {project.log_path}")


def _start_failure(project: Project) -> str:
    """': REASON' when the engine's log ends with why it could not start (a full disk, say), else ''."""
    with contextlib.suppress(OSError):
        tail = project.log_path.read_bytes()[-4000:].decode("utf-8", "replace").splitlines()
        for line in reversed(tail):
            if "engine cannot start: " in line:
                return ": " + line.split("engine cannot start: ", 1)[1]
    return ""


class SyncClient:
    """Blocking client for the CLI and tests."""

    def __init__(self, project: Project | str | Path, spawn: bool = True, timeout: float = SPAWN_TIMEOUT_S):
        self.project = project if isinstance(project, Project) else Project(project)
        self.sock = ensure_engine(self.project, spawn=spawn, timeout=timeout)
        self.file = self.sock.makefile("rb")
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []  # events read while waiting for a response

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
            self.sock.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, timeout: float | None) -> dict[str, Any]:
        self.sock.settimeout(timeout)
        line = self.file.readline(protocol.MAX_MESSAGE_BYTES)
        if not line:
            raise EngineError("the engine closed the connection")
        return protocol.decode_message(line)

    def request(self, cmd: str, timeout: float | None = 60.0, **args: Any) -> Any:
        rid = next(self._ids)
        try:
            self.sock.sendall(protocol.request(rid, cmd, **args))
            while True:
                msg = self._read(timeout)
                if "event" in msg:
                    self.events.append(msg)
                    continue
                if msg.get("id") in (rid, 0):
                    if not msg.get("ok"):
                        raise EngineError(msg.get("error", "unknown error"))
                    return msg.get("result")
        except TimeoutError:
            raise EngineError(f"the engine did not answer '{cmd}' within {timeout:.0f} s") from None
        except (BrokenPipeError, ConnectionResetError):
            raise EngineError("the engine closed the connection") from None

    def iter_events(self, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Events as they come (after those buffered during requests); stops at EOF or timeout."""
        while self.events:
            yield self.events.pop(0)
        while True:
            try:
                msg = self._read(timeout)
            except (TimeoutError, EngineError):
                return
            if "event" in msg:
                yield msg


def stop_engine(project: Project, timeout: float = 60.0) -> bool:
    """Ask the engine to stop and wait until its lock is released; False when none was running."""
    try:
        client = SyncClient(project, spawn=False, timeout=2.0)
    except EngineError:
        return False
    with client:
        client.request("shutdown", timeout=10)
    deadline = time.monotonic() + timeout
    while engine_running(project) and time.monotonic() < deadline:
        time.sleep(0.05)
    if engine_running(project):
        raise EngineError(f"the engine did not stop within {timeout:.0f} s (pid {engine_pid(project)})")
    return True


class EngineClient:
    """Asyncio client for the dashboard. Events go to `on_event(kind, data)` in the reading task."""

    def __init__(self, project: Project, on_event: Callable[[str, dict[str, Any]], None], name: str = "ui"):
        self.project = project
        self.on_event = on_event
        self.name = name
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._read_task: asyncio.Task[None] | None = None
        self.connected = False

    async def connect(self, spawn: bool = True) -> dict[str, Any]:
        """Connect (starting the engine if allowed) and attach; returns the history snapshot."""
        sock = await asyncio.to_thread(ensure_engine, self.project, spawn)
        self._reader, self._writer = await asyncio.open_unix_connection(sock=sock, limit=protocol.MAX_MESSAGE_BYTES)
        self.connected = True
        self._read_task = asyncio.create_task(self._read_loop())
        return await self.request("attach", client=self.name, replay=True)

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                msg = protocol.decode_message(line)
                if "event" in msg:
                    self.on_event(msg["event"], msg.get("data", {}))
                    continue
                fut = self._pending.pop(msg.get("id", -1), None)
                if fut is not None and not fut.done():
                    if msg.get("ok"):
                        fut.set_result(msg.get("result"))
                    else:
                        fut.set_exception(EngineError(msg.get("error", "unknown error")))
        except (ConnectionError, OSError, protocol.ProtocolError, ValueError):
            pass
        finally:
            self.connected = False
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(EngineError("the engine connection was lost"))
            self._pending.clear()

    async def request(self, cmd: str, **args: Any) -> Any:
        if not self.connected or self._writer is None:
            raise EngineError("not connected to the engine")
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        self._writer.write(protocol.request(rid, cmd, **args))
        await self._writer.drain()
        return await fut

    async def wait_closed(self) -> None:
        if self._read_task is not None:
            await asyncio.gather(self._read_task, return_exceptions=True)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        await self.wait_closed()
