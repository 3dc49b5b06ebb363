"""Messages between the UI/CLI and the engine: newline-delimited JSON over the project's Unix socket.

Standard library only: the UI imports this module.

    request   {"id": 7, "cmd": "submit", "args": {...}}          client → engine
    response  {"id": 7, "ok": true, "result": ...}               engine → client
              {"id": 7, "ok": false, "error": "one clear sentence"}
    event     {"event": "train.metric", "seq": 1234, "t": 1.7e9, "data": {...}}   engine → attached clients
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

PROTOCOL_VERSION = 1
MAX_REQUEST_BYTES = 256 * 1024  # a request is small; anything bigger is refused before parsing
MAX_MESSAGE_BYTES = 256 * 1024 * 1024  # responses carry history snapshots (100k metric rows fit easily)

# Event kinds. Payloads are documented next to each; all are JSON objects.
EV_ENGINE = "engine"  # {state: idle|busy|stopping, pid, version, job_id}
EV_JOB = "job"  # the full job record (see store.Store.job_dict)
EV_JOB_REMOVED = "job.removed"  # {id}
EV_PROGRESS = "job.progress"  # {job_id, step, total, message, eta_s}
EV_LOADING = "loading"  # {job_id, stage, done, total, message}: model download/load stages
EV_RUN = "run"  # the full run record (see store.Store.run_dict)
EV_METRIC = "train.metric"  # {run, step, epoch, loss, loss_smooth, lr, grad_norm, sec_per_step, peak_mem (GiB),
#                             total_steps, total_epochs, eta_s}
EV_REWIND = "train.rewind"  # {run, step}: metrics after `step` were dropped (resumed from a checkpoint)
EV_SAMPLE = "train.sample"  # {run, epoch, step, prompt_index, seed, prompt, path}
EV_CHECKPOINT = "train.checkpoint"  # {run, step, epoch, path, loss, pinned}
EV_CHECKPOINT_REMOVED = "train.checkpoint.removed"  # {run, step}
EV_RESULT = "gen.result"  # {job_id, index, seed, path, params}
EV_TELEMETRY = "gpu"  # {available, reason, gpus: [...], driver}; not stored, latest kept
EV_LOG = "log"  # {level: info|warning|error, message, job_id}
METRIC_COLUMNS = ("step", "epoch", "loss", "loss_smooth", "lr", "grad_norm", "sec_per_step", "peak_mem", "t")

# Commands and their arguments: name -> {arg: (type or tuple of types, required)}.
_INT = int
_NUM = (int, float)
COMMANDS: dict[str, dict[str, tuple[Any, bool]]] = {
    "attach": {"client": (str, False), "replay": (bool, False)},  # -> snapshot; then events stream
    "status": {},  # -> engine, running job, queue counts, latest run progress
    "shutdown": {},  # graceful: a running job checkpoints/stops first
    "submit": {"kind": (str, True), "params": (dict, True), "priority": (_INT, False)},  # -> {job_ids}
    "cancel": {"job_id": (_INT, True)},  # queued: cancelled; running: stops at the next step
    "retry": {"job_id": (_INT, True)},  # -> {job_id}: a new job with the same parameters
    "duplicate": {"job_id": (_INT, True), "new_seed": (bool, False)},  # -> {job_id}
    "move": {"job_id": (_INT, True), "to": (str, True)},  # to: up|down|top|bottom
    "remove": {"job_id": (_INT, True)},  # forget a finished job (its files stay)
    "jobs": {"limit": (_INT, False)},  # -> [job]
    "run_history": {"run": (str, True)},  # -> {run, metrics: {col: [...]}, samples, checkpoints}
    "train_request": {"job_id": (_INT, True), "what": (str, True)},  # what: sample|save
    "pin": {"run": (str, True), "step": (_INT, True), "pinned": (bool, True)},
    "ping": {"payload": (object, False)},
}
MOVE_TARGETS = ("up", "down", "top", "bottom")
TRAIN_REQUESTS = ("sample", "save")
JOB_STATES = ("queued", "running", "stopping", "done", "failed", "cancelled", "stopped")
ACTIVE_STATES = ("queued", "running", "stopping")


class ProtocolError(ValueError):
    """A message that breaks the protocol; the text says how."""


@dataclass
class Request:
    id: int
    cmd: str
    args: dict[str, Any]


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), allow_nan=False, default=str).encode("utf-8") + b"\n"


def request(id: int, cmd: str, **args: Any) -> bytes:
    return encode({"id": id, "cmd": cmd, "args": args})


def response(id: int, result: Any = None, error: str | None = None) -> bytes:
    if error is not None:
        return encode({"id": id, "ok": False, "error": error})
    return encode({"id": id, "ok": True, "result": result})


def event(kind: str, seq: int, t: float, data: dict[str, Any]) -> bytes:
    return encode({"event": kind, "seq": seq, "t": t, "data": data})


def _reject_constant(name: str) -> Any:
    raise ProtocolError(f"{name} is not allowed in a message")


def decode_request(line: bytes) -> Request:
    """Parse and schema-check one request line. Raises ProtocolError with a specific reason."""
    if len(line) > MAX_REQUEST_BYTES:
        raise ProtocolError(f"request of {len(line)} bytes is over the {MAX_REQUEST_BYTES}-byte limit")
    try:
        msg = json.loads(line, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError(f"not a JSON message: {exc}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("a request must be a JSON object")
    rid, cmd, args = msg.get("id"), msg.get("cmd"), msg.get("args", {})
    if not isinstance(rid, int) or isinstance(rid, bool):
        raise ProtocolError("request 'id' must be an integer")
    if not isinstance(cmd, str) or cmd not in COMMANDS:
        raise ProtocolError(f"unknown command {cmd!r}; known: {', '.join(sorted(COMMANDS))}")
    if not isinstance(args, dict):
        raise ProtocolError(f"{cmd}: 'args' must be an object")
    schema = COMMANDS[cmd]
    for name in args:
        if name not in schema:
            raise ProtocolError(f"{cmd}: unknown argument {name!r}")
    for name, (kind, required) in schema.items():
        if name not in args:
            if required:
                raise ProtocolError(f"{cmd}: missing argument {name!r}")
            continue
        value = args[name]
        if isinstance(value, bool) and kind is not bool and kind is not object:
            raise ProtocolError(f"{cmd}: argument {name!r} has the wrong type (bool)")
        if not isinstance(value, kind):
            raise ProtocolError(f"{cmd}: argument {name!r} has the wrong type ({type(value).__name__})")
    try:  # JSON's \ud800-style escapes can smuggle in lone surrogates, which no file, PNG or database can hold
        json.dumps(args, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError(f"{cmd}: a text is not valid Unicode (a lone surrogate; was it typed or named in an "
                            "encoding other than UTF-8?)") from None
    return Request(rid, cmd, args)


def decode_message(line: bytes) -> dict[str, Any]:
    """Parse one engine → client line (a response or an event)."""
    try:
        msg = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"engine sent a malformed message: {exc}") from None
    if not isinstance(msg, dict) or not ("event" in msg or "id" in msg):
        raise ProtocolError("engine sent a message that is neither a response nor an event")
    return msg


def socket_address(path: Any) -> tuple[str, int | None]:
    """An address for `path` that fits AF_UNIX's ~107-byte limit.

    Deep project folders get a short alias through an open descriptor of the socket's folder
    (`/proc/self/fd/N/engine.sock`, Linux). The caller closes the returned descriptor when done.
    """
    text = os.fspath(path)
    if len(os.fsencode(text)) < 100:
        return text, None
    fd = os.open(os.path.dirname(text), os.O_RDONLY | os.O_DIRECTORY)
    return f"/proc/self/fd/{fd}/{os.path.basename(text)}", fd
