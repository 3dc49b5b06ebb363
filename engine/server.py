"""The engine daemon: one per project, a Unix control socket, event fan-out and a one-at-a-time job queue.

    python -m engine.server PROJECT

Threads: the asyncio loop (sockets, store, scheduling), one worker thread that runs jobs (training, generation;
torch is imported there, lazily), and the telemetry sampler. Everything a client is told is written to the store
first, so a client that attaches later gets the same history.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import importlib
import logging
import os
import signal
import socket
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from engine import __version__, protocol
from engine.errors import JobCancelled, describe
from engine.job_context import BaseJobContext, pin_marker
from engine.jobs import KINDS, JobParamError
from engine.project import Project, ProjectError, sweep_stale_temp_files
from engine.store import Store, StoreError
from engine.telemetry import Sampler
from engine.train_foreground import foreground_running

log = logging.getLogger("zchar.engine")
IDLE_EXIT_S = float(os.environ.get("ZCHAR_ENGINE_IDLE_EXIT", "1800"))  # no clients and nothing queued
SHUTDOWN_WAIT_S = 300.0  # a running job gets this long to checkpoint and stop
SCHEDULE_RETRY_S = 5.0  # a job that could not be started (the store could not be written) is tried again after
CLIENT_QUEUE = 20000  # events buffered per client before a too-slow client is dropped (it can re-attach)


class JobContext(BaseJobContext):
    """The engine's context: events go through the engine (stored, then sent to attached clients)."""

    def __init__(self, engine: Engine, job: dict[str, Any], previous_results: list[dict[str, Any]]):
        super().__init__(engine.project, job["params"], job["id"], job["attempts"], previous_results)
        self._engine = engine
        self.job = job
        self.kind: str = job["kind"]

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        self._engine.post(kind, data)

    def log(self, message: str, level: str = "info") -> None:
        getattr(log, "warning" if level == "warning" else level, log.info)("job %s: %s", self.job_id, message)
        super().log(message, level)


class Client:
    def __init__(self, writer: asyncio.StreamWriter, name: str = "?"):
        self.writer = writer
        self.name = name
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(CLIENT_QUEUE)
        self.attached = False


class Engine:
    def __init__(self, project: Project):
        self.project = project
        self.store = Store(project.db_path)
        self.seq = 0
        self.clients: set[Client] = set()
        self.started = time.time()
        self.state = "idle"
        self.current: JobContext | None = None
        self.telemetry: dict[str, Any] = {"available": False, "reason": "not read yet", "gpus": []}
        self.latest_metric: dict[str, dict[str, Any]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zchar-job")
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._last_activity = time.monotonic()
        self._sampler: Sampler | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._store_failing = False  # the last write to the store failed (reported once until one succeeds)
        self._unrecorded: dict[int, dict[str, Any]] = {}  # job id -> its end, not yet written (the disk was full)

    # --- events -------------------------------------------------------------------------------------------
    def post(self, kind: str, data: dict[str, Any]) -> None:
        """Publish from any thread."""
        assert self.loop is not None
        with contextlib.suppress(RuntimeError):  # loop already closed during shutdown
            self.loop.call_soon_threadsafe(self.publish, kind, data)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Persist what must survive, then send to every attached client (loop thread)."""
        try:
            data = self._persist(kind, data)
            if kind in _STORED:
                self._store_failing = False
        except Exception as exc:  # a full disk must not take the engine down; say so once, not per event
            if not self._store_failing:
                self._store_failing = True
                log.exception("could not store %s event", kind)
                self.publish(protocol.EV_LOG, {
                    "level": "error", "job_id": None,
                    "message": f"could not save to .zchar/state.db ({describe(exc)}); events are shown but not "
                               "recorded until it can write again"})
        self.seq += 1
        line = protocol.event(kind, self.seq, time.time(), data)
        for client in list(self.clients):
            if not client.attached:
                continue
            try:
                client.queue.put_nowait(line)
            except asyncio.QueueFull:
                log.warning("client %s is too slow; dropping it (it can re-attach)", client.name)
                client.attached = False
                client.queue = asyncio.Queue(1)
                client.queue.put_nowait(None)

    def _persist(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        if kind == protocol.EV_TELEMETRY:
            self.telemetry = data
            return data
        if kind == protocol.EV_METRIC:
            self.latest_metric[data["run"]] = data
        elif kind == protocol.EV_PROGRESS and self.current and data.get("total"):
            self.store.set_progress(data["job_id"], data["step"] / data["total"], data.get("message", ""))
        return self.store.record_event(kind, data)

    def _job_changed(self, job: dict[str, Any]) -> None:
        self.publish(protocol.EV_JOB, job)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.publish(protocol.EV_ENGINE, self.info())

    def info(self) -> dict[str, Any]:
        return {"state": self.state, "pid": os.getpid(), "version": __version__, "protocol": protocol.PROTOCOL_VERSION,
                "project": str(self.project.root), "started": self.started,
                "job_id": self.current.job_id if self.current else None}

    # --- scheduling ---------------------------------------------------------------------------------------
    async def scheduler(self) -> None:
        stalled = False
        last: dict[str, Any] | None = None
        while not self._stopping.is_set():
            self._record_unrecorded()
            job = None
            try:
                job = self.store.next_job()
                if last is not None and release_after(last, job):
                    assert self.loop is not None
                    await self.loop.run_in_executor(self.worker, _release_memory)
                    last = None
                    continue  # the queue may have changed meanwhile
                last = None
                if job is not None:
                    last = await self._run(job)
                    stalled = False
                    continue
            except Exception as exc:  # the job could not be started (a full disk): the queue waits, then retries
                if not stalled:
                    stalled = True
                    what = f"job {job['id']}" if job else "the next job"
                    log.exception("could not start %s", what)
                    self.publish(protocol.EV_LOG, {
                        "level": "error", "job_id": job["id"] if job else None,
                        "message": f"the queue waits: could not start {what} ({describe(exc)}); it tries again "
                                   f"every {SCHEDULE_RETRY_S:g} s"})
            self._wake.clear()
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED,
                               timeout=SCHEDULE_RETRY_S if stalled else None)
            waiter.cancel()
            stopper.cancel()

    def _record_unrecorded(self) -> None:
        for job_id, final in list(self._unrecorded.items()):
            try:
                self.store.update_job(job_id, **final)
            except Exception:
                return
            del self._unrecorded[job_id]

    async def _run(self, job: dict[str, Any]) -> dict[str, Any]:
        previous = self.store.outputs(job["id"])
        job = self.store.update_job(job["id"], state="running", started=time.time(), error="", progress=0.0)
        ctx = JobContext(self, job, previous)
        self.current = ctx
        self._job_changed(job)
        self._set_state("busy")
        assert self.loop is not None
        final: dict[str, Any]
        try:
            result = await self.loop.run_in_executor(self.worker, _execute, ctx)
            if ctx.stop_reason == "shutdown" and job["kind"] != "train" and result.get("stopped"):
                final = dict(_REQUEUED)
            elif result.get("stopped"):
                final = {"state": "stopped", "message": result.get("message", "stopped")}
            else:
                final = {"state": "done", "message": result.get("message", ""), "progress": 1.0}
            final["result"] = result
        except JobCancelled as exc:
            final = dict(_REQUEUED) if ctx.stop_reason == "shutdown" else {"state": "cancelled", "message": str(exc)}
        except Exception as exc:
            log.exception("job %s failed", job["id"])
            final = {"state": "failed", "error": describe(exc), "message": ""}
        finally:
            self.current = None
        if final["state"] != "queued":
            final["finished"] = time.time()
        try:
            job = self.store.update_job(job["id"], **final)
        except Exception as exc:
            log.exception("could not record the end of job %s", job["id"])
            self._unrecorded[job["id"]] = final  # written as soon as the store can (else re-run after a restart)
            job = {**job, **final, "error": final.get("error") or describe(exc)}
        self._job_changed(job)
        if job["state"] == "failed":
            self.publish(protocol.EV_LOG, {"level": "error", "message": f"job {job['id']} failed: {job['error']}",
                                           "job_id": job["id"]})
        self._last_activity = time.monotonic()
        self._set_state("idle" if not self._stopping.is_set() else "stopping")
        return job

    # --- commands -----------------------------------------------------------------------------------------
    async def handle(self, client: Client, req: protocol.Request) -> Any:
        a = req.args
        if req.cmd == "attach":
            client.name = a.get("client", client.name)
            snapshot = self.snapshot() if a.get("replay", True) else {"engine": self.info(), "seq": self.seq}
            client.attached = True
            return snapshot
        if req.cmd == "ping":
            return a.get("payload")
        if req.cmd == "status":
            return self.status()
        if req.cmd == "shutdown":
            asyncio.get_running_loop().call_soon(self.request_shutdown)
            return {"stopping": True, "job_id": self.current.job_id if self.current else None}
        if req.cmd == "submit":
            return self.submit(a["kind"], a["params"], a.get("priority", 0))
        if req.cmd == "jobs":
            return self.store.list_jobs(a.get("limit"))
        if req.cmd == "run_history":
            return self.run_history(a["run"])
        if req.cmd in _JOB_COMMANDS:
            job = self.store.get_job(a["job_id"])
            if job is None:
                raise CommandError(f"no job {a['job_id']}")
            return getattr(self, f"cmd_{req.cmd}")(job, a)
        if req.cmd == "pin":
            return self.cmd_pin(a["run"], a["step"], a["pinned"])
        raise CommandError(f"command {req.cmd} is not handled")

    def submit(self, kind: str, params: dict[str, Any], priority: int = 0) -> dict[str, Any]:
        if kind not in KINDS:
            raise CommandError(f"unknown job kind {kind!r}; known: {', '.join(KINDS)}")
        try:
            settings = self.project.load()
            jobs, notes = KINDS[kind][1](self.project, settings, params)
        except (ProjectError, JobParamError) as exc:
            raise CommandError(str(exc)) from None
        if kind == "train" and priority == 0:
            priority = 1  # training goes ahead of queued generations unless asked otherwise
        return {"job_ids": [self._enqueue(kind, p, priority) for p in jobs], "notes": notes}

    def _enqueue(self, kind: str, params: dict[str, Any], priority: int) -> int:
        job = self.store.add_job(kind, params, priority)
        self._job_changed(job)
        self._wake.set()
        self._last_activity = time.monotonic()
        return job["id"]

    def cmd_cancel(self, job: dict[str, Any], a: dict[str, Any]) -> dict[str, Any]:
        if job["state"] == "queued":
            job = self.store.update_job(job["id"], state="cancelled", finished=time.time(), message="cancelled")
        elif job["state"] == "running" and self.current and self.current.job_id == job["id"]:
            self.current.request_stop("cancel")
            msg = "stopping after this step (saving a checkpoint)" if job["kind"] == "train" else "stopping"
            job = self.store.update_job(job["id"], state="stopping", message=msg)
        else:
            raise CommandError(f"job {job['id']} is {job['state']}; only queued or running jobs can be cancelled")
        self._job_changed(job)
        return job

    def cmd_retry(self, job: dict[str, Any], a: dict[str, Any]) -> dict[str, Any]:
        if job["state"] in protocol.ACTIVE_STATES:
            raise CommandError(f"job {job['id']} is still {job['state']}")
        params = dict(job["params"])
        if job["kind"] == "train":
            params["resume"] = True  # a retried run carries on from its last checkpoint
        return {"job_id": self._enqueue(job["kind"], params, job["priority"])}

    def cmd_duplicate(self, job: dict[str, Any], a: dict[str, Any]) -> dict[str, Any]:
        if job["kind"] != "gen":
            raise CommandError("only generation jobs can be duplicated")
        params = dict(job["params"])
        if a.get("new_seed", True):
            params["seed"] = int.from_bytes(os.urandom(4), "little")
        return {"job_id": self._enqueue("gen", params, job["priority"]), "seed": params["seed"]}

    def cmd_move(self, job: dict[str, Any], a: dict[str, Any]) -> list[dict[str, Any]]:
        if a["to"] not in protocol.MOVE_TARGETS:
            raise CommandError(f"move to {a['to']!r}: expected one of {', '.join(protocol.MOVE_TARGETS)}")
        self.store.move_job(job["id"], a["to"])
        jobs = self.store.list_jobs()
        for j in jobs:
            self._job_changed(j)
        return jobs

    def cmd_remove(self, job: dict[str, Any], a: dict[str, Any]) -> dict[str, Any]:
        if job["state"] in protocol.ACTIVE_STATES:
            raise CommandError(f"job {job['id']} is {job['state']}; cancel it first")
        self.store.remove_job(job["id"])
        self.publish(protocol.EV_JOB_REMOVED, {"id": job["id"]})
        return {"removed": job["id"]}

    def cmd_train_request(self, job: dict[str, Any], a: dict[str, Any]) -> dict[str, Any]:
        if a["what"] not in protocol.TRAIN_REQUESTS:
            raise CommandError(f"train_request {a['what']!r}: expected sample or save")
        if not (self.current and self.current.job_id == job["id"] and job["kind"] == "train"):
            raise CommandError(f"job {job['id']} is not a running training job")
        self.current.add_request(a["what"])
        return {"requested": a["what"]}

    def cmd_pin(self, run: str, step: int, pinned: bool) -> dict[str, Any]:
        ckpt = next((c for c in self.store.checkpoints(run) if c["step"] == step), None)
        if ckpt is None:
            raise CommandError(f"run {run} has no checkpoint at step {step}")
        try:
            path = self.project.inside(ckpt["path"])
        except ProjectError as exc:
            raise CommandError(str(exc)) from None
        marker = pin_marker(path)
        if pinned:
            marker.touch()
        else:
            marker.unlink(missing_ok=True)
        self.store.set_pinned(run, step, pinned)
        data = {**ckpt, "pinned": pinned}
        self.publish(protocol.EV_CHECKPOINT, data)
        return data

    # --- views --------------------------------------------------------------------------------------------
    def run_history(self, run: str) -> dict[str, Any]:
        info = self.store.get_run(run)
        if info is None:
            raise CommandError(f"no run named {run!r}")
        return {"run": info, "metrics": self.store.metrics(run), "samples": self.store.samples(run),
                "checkpoints": self.store.checkpoints(run)}

    def snapshot(self) -> dict[str, Any]:
        runs = self.store.list_runs()
        latest = self.run_history(runs[-1]["name"]) if runs else None
        return {"engine": self.info(), "seq": self.seq, "jobs": self.store.jobs_in_view(), "runs": runs,
                "latest_run": latest, "telemetry": self.telemetry, "outputs": self.store.outputs(limit=500),
                "log": self.store.recent_log(100),
                "progress": self._current_progress()}

    def _current_progress(self) -> dict[str, Any] | None:
        if not self.current:
            return None
        job = self.store.get_job(self.current.job_id)
        return {"job_id": self.current.job_id, "progress": job["progress"] if job else 0}

    def status(self) -> dict[str, Any]:
        runs = self.store.list_runs()
        run = runs[-1] if runs else None
        metric = (self.latest_metric.get(run["name"]) or self.store.last_metric(run["name"])) if run else None
        running = self.store.get_job(self.current.job_id) if self.current else None
        return {"engine": self.info(), "running": running, "queued": self.store.count_jobs("queued"),
                "run": run, "metric": metric, "telemetry": self.telemetry}

    # --- connections --------------------------------------------------------------------------------------
    async def on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not _peer_is_owner(writer):
            log.warning("refused a connection from another user")
            writer.close()
            return
        client = Client(writer)
        self.clients.add(client)
        self._connections.add(asyncio.current_task())  # type: ignore[arg-type]
        self._last_activity = time.monotonic()
        sender = asyncio.create_task(self._send_loop(client))
        try:
            while not self._stopping.is_set():
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    await self._reply(client, protocol.response(0, error=(
                        f"request over the {protocol.MAX_REQUEST_BYTES}-byte limit; closing")))
                    break
                except (ConnectionError, OSError):
                    break
                if not line:
                    break
                if not line.strip():
                    continue
                try:
                    req = protocol.decode_request(line)
                except protocol.ProtocolError as exc:
                    await self._reply(client, protocol.response(0, error=str(exc)))
                    continue
                try:
                    result = await self.handle(client, req)
                    reply = protocol.response(req.id, result)
                except CommandError as exc:
                    reply = protocol.response(req.id, error=str(exc))
                except StoreError as exc:
                    reply = protocol.response(req.id, error=str(exc))
                except Exception as exc:
                    log.exception("command %s failed", req.cmd)
                    reply = protocol.response(req.id, error=describe(exc))
                await self._reply(client, reply)
        finally:
            self.clients.discard(client)
            self._connections.discard(asyncio.current_task())  # type: ignore[arg-type]
            self._last_activity = time.monotonic()
            with contextlib.suppress(asyncio.QueueFull):
                client.queue.put_nowait(None)
            await asyncio.gather(sender, return_exceptions=True)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _reply(self, client: Client, data: bytes) -> None:
        # Responses go through the same queue as events so that their order on the wire is the order of events.
        await client.queue.put(data)

    async def _send_loop(self, client: Client) -> None:
        try:
            while True:
                data = await client.queue.get()
                if data is None:
                    break
                client.writer.write(data)
                if client.writer.transport.get_write_buffer_size() > 1 << 20:
                    await client.writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            client.writer.close()

    # --- lifecycle ----------------------------------------------------------------------------------------
    def request_shutdown(self) -> None:
        if self._stopping.is_set():
            return
        log.info("shutting down")
        self._stopping.set()
        self._set_state("stopping")
        if self.current:
            self.current.request_stop("shutdown")
        self._wake.set()

    async def _idle_watch(self) -> None:
        while not self._stopping.is_set():
            await asyncio.sleep(min(30.0, IDLE_EXIT_S / 4))
            self._record_unrecorded()
            idle = not self.clients and self.current is None and self.store.count_jobs("queued") == 0
            if idle and time.monotonic() - self._last_activity > IDLE_EXIT_S:
                log.info("idle for %.0f s with no client attached; exiting", IDLE_EXIT_S)
                self.request_shutdown()

    async def serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError, RuntimeError):  # not the main thread (an in-process test engine)
                self.loop.add_signal_handler(sig, self.request_shutdown)
        for job in self.store.recover_interrupted(foreground_alive=foreground_running(self.project)):
            log.info("job %s was %s when the engine stopped; now %s", job["id"], "interrupted", job["state"])
        for path in sweep_stale_temp_files(self.project):
            log.info("removed %s, left half-written by a process that died", path)
        if self.store.recovered_from:
            self.store.add_log("error", f"the state database was unreadable; kept as {self.store.recovered_from.name}")
        address, dir_fd = protocol.socket_address(self.project.socket_path)
        old_umask = os.umask(0o177)
        try:
            server = await asyncio.start_unix_server(self.on_connect, path=address, limit=protocol.MAX_REQUEST_BYTES)
        finally:
            os.umask(old_umask)
            if dir_fd is not None:
                os.close(dir_fd)
        os.chmod(self.project.socket_path, 0o600)
        self._sampler = Sampler(lambda reading: self.post(protocol.EV_TELEMETRY, reading))
        self._sampler.start()
        log.info("engine %s listening on %s (pid %s)", __version__, self.project.socket_path, os.getpid())
        tasks = [asyncio.create_task(self.scheduler()), asyncio.create_task(self._idle_watch())]
        try:
            await self._stopping.wait()
            deadline = time.monotonic() + SHUTDOWN_WAIT_S
            while self.current is not None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            self._sampler.stop()
            server.close()
            with contextlib.suppress(FileNotFoundError):
                self.project.socket_path.unlink()
            for client in list(self.clients):
                client.writer.close()  # each connection handler then reads EOF and ends by itself
            if self._connections:
                await asyncio.wait(set(self._connections), timeout=2)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.worker.shutdown(wait=False, cancel_futures=True)
            self.store.close()
            log.info("engine stopped")


_JOB_COMMANDS = frozenset({"cancel", "retry", "duplicate", "move", "remove", "train_request"})
_REQUEUED = {"state": "queued", "message": "interrupted by engine shutdown; runs again on next start"}

# Events whose persisting writes to the store (a success of one of these ends a reported store failure).
_STORED = {protocol.EV_METRIC, protocol.EV_REWIND, protocol.EV_SAMPLE, protocol.EV_CHECKPOINT,
           protocol.EV_CHECKPOINT_REMOVED, protocol.EV_RUN, protocol.EV_RESULT}


class CommandError(Exception):
    """A command that cannot be done; the text goes back to the client."""


def _execute(ctx: JobContext) -> dict[str, Any]:
    """Run one job in the worker thread; torch and friends are imported here, by the runner."""
    module_name, func_name = KINDS[ctx.kind][0].split(":")
    runner = getattr(importlib.import_module(module_name), func_name)
    return runner(ctx) or {}


# Kinds whose runners share one cached pipeline (engine.generate): between two of them nothing is freed.
SHARED_PIPELINE_KINDS = frozenset({"gen", "grid"})


def release_after(last: dict[str, Any], following: dict[str, Any] | None) -> bool:
    """Whether to collect garbage and empty the CUDA cache after job `last`, before `following` (None: the queue is
    empty). A full collection costs ~0.25 s once torch and a pipeline are loaded, longer than a small image takes,
    so it runs when memory may really be freed: after a failure, a change of kind, or when the queue empties."""
    return (following is None or last["state"] != "done"
            or not {last["kind"], following["kind"]} <= SHARED_PIPELINE_KINDS)


def _release_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _peer_is_owner(writer: asyncio.StreamWriter) -> bool:
    sock = writer.get_extra_info("socket")
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return True
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


def acquire_lock(project: Project) -> int | None:
    """The engine's lock: an flock the kernel drops when the process dies, so a crash never leaves it stale."""
    fd = os.open(project.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m engine.server PROJECT", file=sys.stderr)
        return 2
    project = Project(argv[0])
    if not project.exists():
        print(f"engine: no project.toml in {project.root}", file=sys.stderr)
        return 2
    project.ensure_dirs()
    lock_fd = acquire_lock(project)
    if lock_fd is None:
        print(f"engine: another engine already serves {project.root}", file=sys.stderr)
        return 0
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.FileHandler(project.log_path)], force=True,
    )
    # A socket left by a crashed engine: we hold the lock, so nobody serves it.
    with contextlib.suppress(FileNotFoundError):
        project.socket_path.unlink()
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        asyncio.run(Engine(project).serve())
    except StoreError as exc:  # e.g. a full disk or a read-only folder: say so in one line, keep the file
        log.error("engine cannot start: %s", exc)
        return 1
    except Exception:
        log.exception("engine crashed")
        return 1
    finally:
        os.close(lock_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
