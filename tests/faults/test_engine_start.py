"""Engine start against a bad state: a corrupt, truncated or foreign state.db, one that cannot be opened right now,
stale lock and socket files, several clients starting engines at once, a job that kills the engine at every
start, and a `--foreground` training run killed before the engine starts. (tests/test_store.py covers the store
alone; tests/test_engine.py two engine processes and a SIGKILLed one.)"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.project import Project
from engine.store import Store, StoreError
from tests.faults.engine_kill import ROOT, PausingEngine
from zchar_tui.client import EngineError, SyncClient, engine_pid


def history_db(path: Path) -> None:
    """A real state.db with a finished run of 3000 steps."""
    s = Store(path)
    s.upsert_run("old-run", state="done", total_steps=3000, step=3000)
    s.db.execute("BEGIN")
    for step in range(1, 3001):
        s.add_metric("old-run", {"step": step, "loss": 1.0 / step})
    s.db.execute("COMMIT")
    s.close()


def garbage(path: Path) -> None:
    path.write_bytes(b"\x00\xffnot a database" * 500)


def truncated(path: Path) -> None:
    history_db(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def torn_page(path: Path) -> None:
    history_db(path)
    data = bytearray(path.read_bytes())
    data[3 * 4096: 3 * 4096 + 300] = bytes(range(256)) + bytes(44)  # a page overwritten (a bad sector, a bad copy)
    path.write_bytes(bytes(data))


def foreign(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE photos (id INTEGER, name TEXT)")
    con.execute("INSERT INTO photos VALUES (1, 'holiday.jpg')")
    con.commit()
    con.close()


@pytest.mark.parametrize("damage", [garbage, truncated, torn_page, foreign], ids=lambda f: f.__name__)
def test_a_bad_state_db_is_kept_aside_and_reported(tiny_project: Project, engine_of: Callable,
                                                    damage: Callable[[Path], None]) -> None:
    tiny_project.ensure_dirs()
    damage(tiny_project.db_path)
    digest = hashlib.sha256(tiny_project.db_path.read_bytes()).hexdigest()
    client = engine_of(tiny_project)  # the engine starts all the same
    snapshot = client.request("attach", client="test")
    errors = [e["message"] for e in snapshot["log"] if e["level"] == "error"]
    assert len(errors) == 1 and errors[0].startswith("the state database was unreadable; kept as state.db.broken-")
    kept = tiny_project.state_dir / errors[0].rsplit(" ", 1)[1]
    assert hashlib.sha256(kept.read_bytes()).hexdigest() == digest  # the bad file itself, untouched
    assert "was unusable" in tiny_project.log_path.read_text()
    assert snapshot["runs"] == [] and snapshot["jobs"] == []  # a fresh database, which holds that log entry


@pytest.fixture
def locked_db(tiny_project: Project) -> Iterator[Path]:
    """state.db with history, write-locked by another process (an open transaction in a sqlite3 shell, say)."""
    tiny_project.ensure_dirs()
    history_db(tiny_project.db_path)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN EXCLUSIVE');"
        "print('locked', flush=True); sys.stdin.read()"), str(tiny_project.db_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    yield tiny_project.db_path
    holder.stdin.close()
    holder.wait(timeout=10)


def test_a_state_db_that_cannot_be_opened_now_is_left_alone(locked_db: Path, tiny_project: Project,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    before = hashlib.sha256(locked_db.read_bytes()).hexdigest()
    real_connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **kw: real_connect(*a, **{**kw, "timeout": 0.2}))
    with pytest.raises(StoreError, match="cannot open the state database .*: database is locked"):
        Store(locked_db)
    # the engine says why it cannot start, in one line, and keeps the file (it used to move it aside as corrupt)
    code = ("import sqlite3, sys; real = sqlite3.connect; "
            "sqlite3.connect = lambda *a, **kw: real(*a, **{**kw, 'timeout': 0.2}); "
            "from engine import server; sys.exit(server.main([sys.argv[1]]))")
    done = subprocess.run([sys.executable, "-c", code, str(tiny_project.root)], env={**os.environ,
                          "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done
    log = tiny_project.log_path.read_text()
    assert "engine cannot start: cannot open the state database" in log and "Traceback" not in log
    assert [p.name for p in tiny_project.state_dir.glob("state.db.broken*")] == []
    assert hashlib.sha256(locked_db.read_bytes()).hexdigest() == before


def test_a_client_is_told_why_the_engine_cannot_start(tiny_project: Project) -> None:
    tiny_project.ensure_dirs()
    tiny_project.db_path.mkdir()  # state.db cannot be opened (as on a full or read-only disk): not corrupt
    with pytest.raises(EngineError, match=r"the engine exited at start \(code 1\): cannot open the state database "
                                          r".*state\.db: unable to open database file; see "):
        SyncClient(tiny_project)
    assert tiny_project.db_path.is_dir() and not list(tiny_project.state_dir.glob("state.db.broken*"))


def test_stale_lock_and_socket_files_do_not_stop_a_new_engine(tiny_project: Project, engine_of: Callable) -> None:
    tiny_project.ensure_dirs()
    tiny_project.lock_path.write_text("999999\ngarbage\n")  # no process holds it
    tiny_project.socket_path.write_text("not a socket")  # a stale file where the socket goes
    client = engine_of(tiny_project)
    assert client.request("ping", payload=1) == 1
    assert engine_pid(tiny_project) not in (None, 999999)


def test_clients_starting_the_engine_at_once_share_one(tiny_project: Project, engine_of: Callable) -> None:
    code = ("import sys; from zchar_tui.client import SyncClient; "
            "print(SyncClient(sys.argv[1]).request('status')['engine']['pid'])")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tiny_project.root)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    try:
        outs = [p.communicate(timeout=60) for p in procs]
    finally:
        engine_of(tiny_project)  # stopped at teardown
    assert [p.returncode for p in procs] == [0] * 4, outs
    pids = {out.strip() for out, _ in outs}
    assert pids == {str(engine_pid(tiny_project))}  # every client reached the one engine
    deadline = time.monotonic() + 20  # an engine that lost the race may still be on its way out
    while len(servers := _engines_of(tiny_project)) > 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert servers == [str(engine_pid(tiny_project))]


def _engines_of(project: Project) -> list[str]:
    return [pid for pid in os.listdir("/proc") if pid.isdigit() and _is_engine_of(pid, project)]


def _is_engine_of(pid: str, project: Project) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"engine.server" in cmd and str(project.root).encode() in cmd


def test_a_job_that_kills_the_engine_is_not_run_at_every_start(tiny_project: Project, tmp_path: Path,
                                                               engine_of: Callable) -> None:
    eng = PausingEngine(tiny_project, "crashing-job", tmp_path / "unused")
    job_id = eng.client.request("submit", kind="crash", params={})["job_ids"][0]
    for attempt in range(4):  # the first run and three re-runs after a restart: each takes the engine down
        if attempt:
            eng = PausingEngine(tiny_project, "crashing-job", tmp_path / "unused", connect=False)
        assert eng.proc.wait(timeout=60) == -9, f"attempt {attempt}: the engine survived the job"
        eng.kill()
    client = engine_of(tiny_project)  # the fifth start does not run it again
    job = next(j for j in client.request("jobs") if j["id"] == job_id)
    assert job["state"] == "failed" and job["attempts"] == 3, job
    assert "the engine stopped 4 times while this job ran" in job["error"]
    assert client.request("ping", payload=1) == 1


FOREGROUND_RUN = """
import sys, time
sys.path.insert(0, sys.argv[1])
from engine.project import Project
from engine.train_foreground import ForegroundContext
ctx = ForegroundContext(Project(sys.argv[2]), {})
ctx.emit("run", {"name": "fg", "state": "running", "step": 3, "total_steps": 50})
print("running", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("killed", [True, False])
def test_engine_start_marks_a_killed_foreground_run_interrupted(tiny_project: Project, engine_of: Callable,
                                                                killed: bool) -> None:
    # `zchar train --foreground` runs without a job; killed, it stayed "running" (with an ETA) for good
    proc = subprocess.Popen([sys.executable, "-c", FOREGROUND_RUN, str(ROOT), str(tiny_project.root)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "running"
        if killed:
            proc.kill()
            proc.wait()
        client = engine_of(tiny_project)
        run = client.request("run_history", run="fg")["run"]
        if killed:
            assert run["state"] == "stopped" and "its foreground process ended" in run["message"]
        else:
            assert run["state"] == "running"  # alive: left alone
    finally:
        proc.kill()
        proc.wait()
