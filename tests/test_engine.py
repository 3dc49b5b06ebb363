"""The engine process: spawn, attach with history replay, detach/reattach, locking, socket security, stop."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import protocol
from engine.project import Project
from engine.store import Store
from tests.conftest import kill_engine, make_project
from zchar_tui.client import EngineError, SyncClient, engine_pid, engine_running, ensure_engine


def seed_history(project: Project, steps: int) -> None:
    """A finished run in the store, as if an earlier engine had trained it."""
    project.state_dir.mkdir(exist_ok=True)
    s = Store(project.db_path)
    s.upsert_run("run-1", state="done", total_steps=steps, step=steps)
    s.db.execute("BEGIN")
    for step in range(1, steps + 1):
        s.add_metric("run-1", {"step": step, "loss": 0.1 + 1.0 / step, "epoch": 1 + step // 100})
    s.db.execute("COMMIT")
    s.upsert_checkpoint("run-1", {"step": steps, "path": "loras/checkpoints/run-1/step-1", "loss": 0.1})
    s.close()


def test_spawn_attach_detach_reattach_replays_history(tiny_project: Project, engine_of) -> None:
    seed_history(tiny_project, 300)
    first = engine_of(tiny_project)
    snap = first.request("attach", client="first")
    assert snap["latest_run"]["run"]["name"] == "run-1"
    assert snap["latest_run"]["metrics"]["step"] == list(range(1, 301))
    assert snap["latest_run"]["checkpoints"][0]["step"] == 300
    pid = snap["engine"]["pid"]
    # a job submitted by the first client (its runner fails at once: the job still has a history)
    ids = first.request("submit", kind="gen", params={"prompt": "mika, park", "seed": 5})["job_ids"]
    first.close()  # detach: the engine keeps running
    assert engine_running(tiny_project)
    second = SyncClient(tiny_project, spawn=False)
    try:
        snap2 = second.request("attach", client="second")
        assert snap2["engine"]["pid"] == pid
        assert ids[0] in [j["id"] for j in snap2["jobs"]]
        assert len(snap2["latest_run"]["metrics"]["loss"]) == 300
    finally:
        second.close()


def test_attached_clients_get_live_events(tiny_project: Project, engine_of) -> None:
    a = engine_of(tiny_project)
    a.request("attach", client="a")
    b = SyncClient(tiny_project, spawn=False)
    try:
        b.request("attach", client="b")
        job_id = a.request("submit", kind="gen", params={"prompt": "x", "seed": 1})["job_ids"][0]
        for client in (a, b):
            states = []
            for ev in client.iter_events(timeout=30):
                if ev["event"] == protocol.EV_JOB and ev["data"]["id"] == job_id:
                    states.append(ev["data"]["state"])
                    if ev["data"]["state"] in ("done", "failed"):
                        break
            assert states[0] == "queued" and states[-1] in ("done", "failed")
    finally:
        b.close()


def test_socket_and_state_are_owner_only(engine) -> None:
    project = engine.project
    assert stat.S_IMODE(os.stat(project.socket_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(project.state_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(project.db_path).st_mode) == 0o600
    assert stat.S_ISSOCK(os.stat(project.socket_path).st_mode)


def test_engine_answers_bad_messages_and_keeps_serving(engine) -> None:
    raw = socket.socket(socket.AF_UNIX)
    raw.connect(str(engine.project.socket_path))
    f = raw.makefile("rb")
    raw.sendall(b"garbage\n")
    assert b"not a JSON message" in f.readline()
    raw.sendall(b'{"id": 4, "cmd": "cancel", "args": {"job_id": 999}}\n')
    assert b"no job 999" in f.readline()
    raw.sendall(b"x" * (protocol.MAX_REQUEST_BYTES + 10) + b"\n")
    assert b"over the" in f.readline()
    raw.close()
    assert engine.request("ping", payload={"ok": 1}) == {"ok": 1}


def test_stale_lock_and_socket_are_cleaned_up(tiny_project: Project, engine_of) -> None:
    first = engine_of(tiny_project)
    pid = engine_pid(tiny_project)
    first.close()
    os.kill(pid, signal.SIGKILL)  # a crash: lock file and socket file stay behind
    deadline = time.monotonic() + 10
    while engine_running(tiny_project) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tiny_project.socket_path.exists() and tiny_project.lock_path.exists()
    second = engine_of(tiny_project)
    assert second.request("status")["engine"]["pid"] not in (None, pid)


def test_engine_stop_command(tiny_project: Project) -> None:
    client = SyncClient(tiny_project)
    client.close()
    try:
        out = subprocess.run([sys.executable, "-m", "zchar_tui", "engine", "stop", str(tiny_project.root)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "engine stopped" in out.stdout
        assert not engine_running(tiny_project) and not tiny_project.socket_path.exists()
        out = subprocess.run([sys.executable, "-m", "zchar_tui", "engine", "status", str(tiny_project.root)],
                             capture_output=True, text=True, timeout=60)
        assert "not running" in out.stdout
        with pytest.raises(EngineError, match="no engine is running"):
            ensure_engine(tiny_project, spawn=False)
    finally:
        kill_engine(tiny_project)


def test_two_engines_started_at_once_one_wins(tiny_project: Project) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    procs = [subprocess.Popen([sys.executable, "-m", "engine.server", str(tiny_project.root)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
             for _ in range(2)]
    try:
        deadline = time.monotonic() + 10
        while not tiny_project.socket_path.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        client = SyncClient(tiny_project, spawn=False)
        client.close()
        codes = []
        for p in procs:
            try:
                codes.append(p.wait(timeout=5))
            except subprocess.TimeoutExpired:
                codes.append(None)
        assert sorted(codes, key=str) == [0, None]  # the loser exits at once; the winner serves
        loser = procs[codes.index(0)]
        assert b"another engine already serves" in loser.stderr.read()
    finally:
        kill_engine(tiny_project)
        for p in procs:
            p.kill()
            p.wait()


def test_deep_project_paths_work(tmp_path: Path, engine_of) -> None:
    project = make_project(tmp_path / ("deep" * 20) / ("folder" * 10), images=1)
    assert len(str(project.socket_path)) > 110
    client = engine_of(project)
    assert client.request("ping", payload=1) == 1


def test_submit_refuses_bad_parameters_with_one_sentence(engine) -> None:
    with pytest.raises(EngineError, match="the prompt is empty"):
        engine.request("submit", kind="gen", params={"prompt": " "})
    with pytest.raises(EngineError, match="unknown LoRA 'nope'"):
        engine.request("submit", kind="gen", params={"prompt": "x", "loras": [{"path": "nope"}]})
    with pytest.raises(EngineError, match="outside the project"):
        engine.request("submit", kind="gen", params={"prompt": "x", "references": ["../../etc/passwd"]})
    with pytest.raises(EngineError, match="unknown job kind"):
        engine.request("submit", kind="shell", params={})
    result = engine.request("submit", kind="gen", params={"prompt": "x", "width": 100, "height": 64, "count": 3,
                                                          "seed": 10})
    assert "rounded to 96x64" in result["notes"][0]
    jobs = {j["id"]: j for j in engine.request("jobs")}
    assert [jobs[i]["params"]["seed"] for i in result["job_ids"]] == [10, 11, 12]
