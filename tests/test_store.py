"""The state database: job queue order and recovery, metric history, corrupt or foreign files."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from engine.store import Store


def test_queue_order_priority_and_moves(tmp_path: Path) -> None:
    s = Store(tmp_path / "state.db")
    a, b, c = (s.add_job("gen", {"n": i}) for i in range(3))
    assert s.next_job()["id"] == a["id"]
    t = s.add_job("train", {}, priority=1)
    assert s.next_job()["id"] == t["id"]  # training goes first
    s.update_job(t["id"], state="done")
    s.move_job(c["id"], "top")
    assert [j["id"] for j in s.list_jobs()][:3] == [c["id"], a["id"], b["id"]]
    s.move_job(c["id"], "down")
    assert [j["id"] for j in s.list_jobs()][:3] == [a["id"], c["id"], b["id"]]
    assert s.next_job()["id"] == a["id"]


def test_interrupted_jobs_are_requeued_and_stops_completed(tmp_path: Path) -> None:
    s = Store(tmp_path / "state.db")
    run = s.add_job("gen", {})
    stopping_train = s.add_job("train", {})
    stopping_gen = s.add_job("gen", {})
    s.update_job(run["id"], state="running")
    s.update_job(stopping_train["id"], state="stopping")
    s.update_job(stopping_gen["id"], state="stopping")
    s.close()
    s = Store(tmp_path / "state.db")
    states = {j["id"]: j for j in s.recover_interrupted()}
    assert states[run["id"]]["state"] == "queued" and states[run["id"]]["attempts"] == 1
    assert states[stopping_train["id"]]["state"] == "stopped"
    assert states[stopping_gen["id"]]["state"] == "cancelled"
    assert s.count_jobs("running", "stopping") == 0


def test_metrics_are_columnar_and_rewind(tmp_path: Path) -> None:
    s = Store(tmp_path / "state.db")
    s.upsert_run("r1", state="running", total_steps=10)
    for step in range(1, 11):
        s.add_metric("r1", {"step": step, "loss": 1.0 / step, "epoch": 1})
    s.add_sample("r1", {"step": 5, "prompt_index": 0, "seed": 1, "path": "samples/r1/a.png"})
    s.add_sample("r1", {"step": 9, "prompt_index": 0, "seed": 1, "path": "samples/r1/b.png"})
    s.truncate_metrics("r1", 6)
    m = s.metrics("r1")
    assert m["step"] == [1, 2, 3, 4, 5, 6] and m["loss"][1] == 0.5
    assert [x["step"] for x in s.samples("r1")] == [5]


def test_checkpoints_and_pins(tmp_path: Path) -> None:
    s = Store(tmp_path / "state.db")
    s.upsert_checkpoint("r1", {"step": 100, "path": "loras/checkpoints/r1/step-000100", "loss": 0.1})
    assert s.set_pinned("r1", 100, True)
    s.upsert_checkpoint("r1", {"step": 100, "path": "loras/checkpoints/r1/step-000100", "loss": 0.2})
    (ck,) = s.checkpoints("r1")
    assert ck["pinned"] is True and ck["loss"] == 0.2  # re-saving keeps the pin
    assert not s.set_pinned("r1", 999, True)


def test_corrupt_database_is_kept_aside_and_replaced(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    db.write_bytes(b"this is not sqlite at all" * 100)
    s = Store(db)
    assert s.recovered_from is not None and s.recovered_from.read_bytes().startswith(b"this is not sqlite")
    assert s.add_job("gen", {})["id"] == 1
    assert oct(os.stat(db).st_mode & 0o777) == "0o600"


def test_foreign_database_is_not_touched(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE accounts (id INTEGER, balance REAL)")
    con.execute("INSERT INTO accounts VALUES (1, 100.0)")
    con.commit()
    con.close()
    s = Store(db)
    assert s.recovered_from is not None
    kept = sqlite3.connect(s.recovered_from)
    assert kept.execute("SELECT balance FROM accounts").fetchone()[0] == 100.0
    assert s.list_jobs() == []


def test_a_foreground_run_is_marked_interrupted_only_once_its_process_is_gone(tmp_path: Path) -> None:
    s = Store(tmp_path / "state.db")
    s.upsert_run("fg", state="running", total_steps=10)  # zchar train --foreground: a run without a job
    s.add_metric("fg", {"step": 4, "loss": 0.1, "epoch": 1})
    s.recover_interrupted(foreground_alive=True)
    assert s.get_run("fg")["state"] == "running"
    s.recover_interrupted(foreground_alive=False)
    run = s.get_run("fg")
    assert run["state"] == "stopped" and run["message"].startswith("interrupted at step 4: its foreground process")
