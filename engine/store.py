"""The project's state database (`.zchar/state.db`, SQLite in WAL mode): jobs, runs, metrics, samples,
checkpoints, outputs and a log. Every write commits at once, so a killed engine loses nothing it reported.

Used only by the engine's event-loop thread.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from engine import protocol
from engine.protocol import METRIC_COLUMNS

log = logging.getLogger("zchar.store")

APPLICATION_ID = 0x7A636861  # "zcha": marks the file as ours
SCHEMA_VERSION = 1
MAX_RERUNS = 3  # times a job interrupted by an engine crash or kill is queued again

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    position REAL NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    params TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    result TEXT NOT NULL DEFAULT '{}',
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS runs (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    job_id INTEGER,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    step INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER NOT NULL DEFAULT 0,
    epoch INTEGER NOT NULL DEFAULT 0,
    total_epochs INTEGER NOT NULL DEFAULT 0,
    lora TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS metrics (
    run TEXT NOT NULL, step INTEGER NOT NULL, epoch INTEGER, loss REAL, loss_smooth REAL, lr REAL,
    grad_norm REAL, sec_per_step REAL, peak_mem REAL, t REAL,
    PRIMARY KEY (run, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS samples (
    run TEXT NOT NULL, epoch INTEGER, step INTEGER NOT NULL, prompt_index INTEGER NOT NULL, seed INTEGER NOT NULL,
    prompt TEXT NOT NULL, path TEXT NOT NULL, t REAL,
    PRIMARY KEY (run, step, prompt_index, seed)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    run TEXT NOT NULL, step INTEGER NOT NULL, epoch INTEGER, path TEXT NOT NULL, loss REAL,
    pinned INTEGER NOT NULL DEFAULT 0, t REAL,
    PRIMARY KEY (run, step)
);
CREATE TABLE IF NOT EXISTS outputs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, job_id INTEGER, idx INTEGER, seed INTEGER, path TEXT NOT NULL,
    params TEXT NOT NULL, t REAL
);
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, t REAL, level TEXT, message TEXT, job_id INTEGER
);
CREATE INDEX IF NOT EXISTS outputs_job ON outputs(job_id);
"""


class StoreError(Exception):
    pass


class _Unusable(sqlite3.DatabaseError):
    """A database file that is not ours or fails its integrity check."""


def _corrupt(exc: sqlite3.DatabaseError) -> bool:
    """A file to keep aside and replace — not a full disk, a lock or a read-only folder, which pass."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    return isinstance(exc, _Unusable) or name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


class Store:
    def __init__(self, path: Path):
        self.path = path
        self.recovered_from: Path | None = None
        try:
            try:
                self.db = self._open()
            except sqlite3.DatabaseError as exc:
                if not _corrupt(exc):
                    raise
                # Corrupt or someone else's database: keep it aside for inspection, start clean.
                self.recovered_from = self._move_aside(str(exc))
                self.db = self._open()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the state database {path}: {exc}") from None

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        db.row_factory = sqlite3.Row
        try:
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app_id != APPLICATION_ID and tables:
                raise _Unusable(f"not a zchar state database (application_id {app_id:#x})")
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise _Unusable("integrity check failed")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        os.chmod(self.path, 0o600)
        return db

    def _move_aside(self, reason: str) -> Path:
        stem = f"{self.path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}"
        aside = self.path.with_name(stem)
        n = 1
        while aside.exists():  # never replace a file kept earlier (two recoveries in one second)
            n += 1
            aside = self.path.with_name(f"{stem}-{n}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                os.replace(src, Path(str(aside) + suffix))
        log.error("state database %s was unusable (%s); moved to %s and started a new one", self.path, reason, aside)
        return aside

    def close(self) -> None:
        self.db.close()

    # --- jobs ---------------------------------------------------------------------------------------------
    @staticmethod
    def job_dict(row: sqlite3.Row) -> dict[str, Any]:
        d = dict(row)
        d["params"] = json.loads(d["params"])
        d["result"] = json.loads(d["result"])
        return d

    def add_job(self, kind: str, params: dict[str, Any], priority: int = 0) -> dict[str, Any]:
        pos = self.db.execute("SELECT coalesce(max(position), 0) + 1 FROM jobs").fetchone()[0]
        cur = self.db.execute(
            "INSERT INTO jobs(kind, state, position, priority, params, created) VALUES (?, 'queued', ?, ?, ?, ?)",
            (kind, pos, priority, _json(params), time.time()),
        )
        return self.get_job(cur.lastrowid)  # type: ignore[return-value]

    def get_job(self, job_id: int) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self.job_dict(row) if row else None

    def update_job(self, job_id: int, **fields: Any) -> dict[str, Any]:
        for key in ("params", "result"):
            if key in fields:
                fields[key] = _json(fields[key])
        cols = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE jobs SET {cols} WHERE id = ?", (*fields.values(), job_id))
        job = self.get_job(job_id)
        if job is None:
            raise StoreError(f"no job {job_id}")
        return job

    def set_progress(self, job_id: int, progress: float, message: str) -> None:
        """`update_job` for the hot path (every progress event): no re-read of the job."""
        self.db.execute("UPDATE jobs SET progress = ?, message = ? WHERE id = ?", (progress, message, job_id))

    def list_jobs(self, limit: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM jobs ORDER BY position"
        if limit:
            # the newest `limit` jobs, still in queue order
            sql = f"SELECT * FROM (SELECT * FROM jobs ORDER BY id DESC LIMIT {int(limit)}) ORDER BY position"
        return [self.job_dict(r) for r in self.db.execute(sql)]

    def jobs_in_view(self, finished: int = 1000) -> list[dict[str, Any]]:
        """What an attaching client is sent, in queue order: every queued or running job (however long the queue)
        and the newest `finished` others."""
        sql = ("SELECT * FROM jobs WHERE state IN ('queued', 'running', 'stopping') UNION ALL "
               "SELECT * FROM (SELECT * FROM jobs WHERE state NOT IN ('queued', 'running', 'stopping') "
               "ORDER BY coalesce(finished, created) DESC LIMIT ?) ORDER BY position")
        return [self.job_dict(r) for r in self.db.execute(sql, (finished,))]

    def next_job(self) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT * FROM jobs WHERE state = 'queued' ORDER BY priority DESC, position LIMIT 1"
        ).fetchone()
        return self.job_dict(row) if row else None

    def count_jobs(self, *states: str) -> int:
        marks = ", ".join("?" for _ in states)
        return self.db.execute(f"SELECT count(*) FROM jobs WHERE state IN ({marks})", states).fetchone()[0]

    def move_job(self, job_id: int, to: str) -> None:
        ids = [r[0] for r in self.db.execute("SELECT id FROM jobs ORDER BY position")]
        if job_id not in ids:
            raise StoreError(f"no job {job_id}")
        i = ids.index(job_id)
        ids.pop(i)
        j = {"up": max(0, i - 1), "down": min(len(ids), i + 1), "top": 0, "bottom": len(ids)}[to]
        ids.insert(j, job_id)
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("UPDATE jobs SET position = ? WHERE id = ?",
                                [(n + 1, jid) for n, jid in enumerate(ids)])

    def remove_job(self, job_id: int) -> None:
        self.db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def recover_interrupted(self, foreground_alive: bool = False) -> list[dict[str, Any]]:
        """After a crash: running jobs go back to the queue (up to MAX_RERUNS times: a job that keeps killing the
        engine must not do so at every start); a stop that was under way is completed; a training run left
        "running" says it was interrupted (its job, if re-queued, sets it running again). A run of
        `zchar train --foreground` (no job) is left alone while such a process is alive."""
        changed = []
        for row in self.db.execute("SELECT * FROM jobs WHERE state IN ('running', 'stopping')").fetchall():
            job = self.job_dict(row)
            if job["state"] == "running" and job["attempts"] >= MAX_RERUNS:
                fields = {"state": "failed", "finished": time.time(), "message": "",
                          "error": f"the engine stopped {job['attempts'] + 1} times while this job ran (a crash, "
                                   "or killed for lack of memory?); it is not run again by itself — retry it"}
            elif job["state"] == "running":
                fields = {"state": "queued", "message": "re-queued: the engine stopped while this job ran",
                          "attempts": job["attempts"] + 1}
            else:
                final = "stopped" if job["kind"] == "train" else "cancelled"
                fields = {"state": final, "finished": time.time(), "message": "stopped (the engine restarted)"}
            changed.append(self.update_job(job["id"], **fields))
        for row in self.db.execute("SELECT name, job_id FROM runs WHERE state IN ('running', 'stopping')").fetchall():
            if row["job_id"] is None and foreground_alive:
                continue
            step = self.db.execute("SELECT max(step) FROM metrics WHERE run = ?", (row["name"],)).fetchone()[0] or 0
            if row["job_id"] is None:
                message = (f"interrupted at step {step}: its foreground process ended; resume it to carry on from "
                           "its last checkpoint")
            else:
                job = self.get_job(row["job_id"])
                then = (f"it carries on from its last checkpoint when job {job['id']} runs again"
                        if job and job["state"] == "queued" else "resume it to carry on from its last checkpoint")
                message = f"interrupted at step {step} when the engine stopped; {then}"
            self.upsert_run(row["name"], state="stopped", message=message)
        return changed

    # --- runs ---------------------------------------------------------------------------------------------
    @staticmethod
    def run_dict(row: sqlite3.Row) -> dict[str, Any]:
        d = dict(row)
        d["config"] = json.loads(d["config"])
        return d

    def upsert_run(self, name: str, **fields: Any) -> dict[str, Any]:
        if "config" in fields:
            fields["config"] = _json(fields["config"])
        now = time.time()
        self.db.execute("INSERT OR IGNORE INTO runs(name, state, created, updated) VALUES (?, 'created', ?, ?)",
                        (name, now, now))
        fields["updated"] = now
        cols = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE runs SET {cols} WHERE name = ?", (*fields.values(), name))
        return self.get_run(name)  # type: ignore[return-value]

    def get_run(self, name: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM runs WHERE name = ?", (name,)).fetchone()
        return self.run_dict(row) if row else None

    def list_runs(self) -> list[dict[str, Any]]:
        return [self.run_dict(r) for r in self.db.execute("SELECT * FROM runs ORDER BY created")]

    # --- metrics, samples, checkpoints -----------------------------------------------------------------------
    def add_metric(self, run: str, data: dict[str, Any]) -> None:
        self.db.execute(
            f"INSERT OR REPLACE INTO metrics(run, {', '.join(METRIC_COLUMNS)}) VALUES (?{', ?' * len(METRIC_COLUMNS)})",
            (run, *(data.get(c) for c in METRIC_COLUMNS)),
        )

    def truncate_metrics(self, run: str, after_step: int) -> None:
        self.db.execute("DELETE FROM metrics WHERE run = ? AND step > ?", (run, after_step))
        self.db.execute("DELETE FROM samples WHERE run = ? AND step > ?", (run, after_step))

    def metrics(self, run: str) -> dict[str, list[Any]]:
        """Columnar history of a run (compact to send: one list per column)."""
        rows = self.db.execute(
            f"SELECT {', '.join(METRIC_COLUMNS)} FROM metrics WHERE run = ? ORDER BY step", (run,)
        ).fetchall()
        return {c: [r[i] for r in rows] for i, c in enumerate(METRIC_COLUMNS)}

    def last_metric(self, run: str) -> dict[str, Any] | None:
        """The run's latest metric row (by step), or None."""
        row = self.db.execute(
            f"SELECT {', '.join(METRIC_COLUMNS)} FROM metrics WHERE run = ? ORDER BY step DESC LIMIT 1", (run,)
        ).fetchone()
        return dict(row) if row else None

    def add_sample(self, run: str, data: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO samples(run, epoch, step, prompt_index, seed, prompt, path, t) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run, data.get("epoch"), data["step"], data["prompt_index"], data["seed"], data.get("prompt", ""),
             data["path"], time.time()),
        )

    def samples(self, run: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute(
            "SELECT * FROM samples WHERE run = ? ORDER BY step, prompt_index, seed", (run,))]

    def upsert_checkpoint(self, run: str, data: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO checkpoints(run, step, epoch, path, loss, pinned, t) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(run, step) DO UPDATE SET epoch = excluded.epoch, path = excluded.path, loss = excluded.loss, "
            "t = excluded.t",
            (run, data["step"], data.get("epoch"), data["path"], data.get("loss"), int(bool(data.get("pinned"))),
             time.time()),
        )

    def remove_checkpoint(self, run: str, step: int) -> None:
        self.db.execute("DELETE FROM checkpoints WHERE run = ? AND step = ?", (run, step))

    def set_pinned(self, run: str, step: int, pinned: bool) -> bool:
        cur = self.db.execute("UPDATE checkpoints SET pinned = ? WHERE run = ? AND step = ?", (int(pinned), run, step))
        return cur.rowcount > 0

    def checkpoints(self, run: str) -> list[dict[str, Any]]:
        return [dict(r) | {"pinned": bool(r["pinned"])} for r in self.db.execute(
            "SELECT * FROM checkpoints WHERE run = ? ORDER BY step", (run,))]

    def record_event(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        """Store what an event says must survive (metrics, samples, checkpoints, runs, results, log lines).

        Returns the event's data as clients should see it (a run event becomes the whole stored run).
        """
        if kind == protocol.EV_METRIC:
            self.add_metric(data["run"], data)
        elif kind == protocol.EV_REWIND:
            self.truncate_metrics(data["run"], data["step"])
        elif kind == protocol.EV_SAMPLE:
            self.add_sample(data["run"], data)
        elif kind == protocol.EV_CHECKPOINT:
            self.upsert_checkpoint(data["run"], data)
        elif kind == protocol.EV_CHECKPOINT_REMOVED:
            self.remove_checkpoint(data["run"], data["step"])
        elif kind == protocol.EV_RUN:
            return self.upsert_run(data["name"], **{k: v for k, v in data.items() if k != "name"})
        elif kind == protocol.EV_RESULT:
            self.add_output(data["job_id"], data)
        elif kind == protocol.EV_LOG:
            self.add_log(data.get("level", "info"), data.get("message", ""), data.get("job_id"))
        return data

    # --- outputs and log ----------------------------------------------------------------------------------
    def add_output(self, job_id: int, data: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO outputs(job_id, idx, seed, path, params, t) VALUES (?, ?, ?, ?, ?, ?)",
            (job_id, data.get("index", 0), data.get("seed"), data["path"], _json(data.get("params", {})), time.time()),
        )

    def outputs(self, job_id: int | None = None, limit: int = 500) -> list[dict[str, Any]]:
        if job_id is None:
            rows = self.db.execute("SELECT * FROM outputs ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self.db.execute("SELECT * FROM outputs WHERE job_id = ? ORDER BY id", (job_id,))
        return [dict(r) | {"params": json.loads(r["params"])} for r in rows]

    def add_log(self, level: str, message: str, job_id: int | None = None) -> None:
        self.db.execute("INSERT INTO log(t, level, message, job_id) VALUES (?, ?, ?, ?)",
                        (time.time(), level, message, job_id))

    def recent_log(self, limit: int = 200) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM log ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [dict(r) for r in reversed(rows)]
