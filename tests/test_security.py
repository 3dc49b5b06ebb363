"""Security of the control channel: owner-only socket, peer uid check, schema-checked messages, no TCP."""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import jobs, protocol
from engine.errors import JobFailed
from engine.project import Project
from engine.store import Store
from tests import engine_harness as h
from tests.conftest import make_project
from zchar_tui.client import EngineError, SyncClient, engine_pid


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _inet_inodes() -> set[str]:
    found = set()
    for table in ("tcp", "tcp6", "udp", "udp6"):
        path = Path(f"/proc/net/{table}")
        if path.exists():
            for line in path.read_text().splitlines()[1:]:
                found.add(line.split()[9])
    return found


def test_engine_listens_on_no_network_port(engine) -> None:
    pid = engine_pid(engine.project)
    assert pid and _socket_inodes(pid), "the engine should hold its Unix socket"
    assert not (_socket_inodes(pid) & _inet_inodes())


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A folder a second user can traverse (pytest's tmp folders are private to root)."""
    base = Path(tempfile.mkdtemp(prefix="zchar-sec-", dir="/tmp"))
    os.chmod(base, 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as a second user")
def test_peers_of_another_user_are_refused(world_dir: Path, engine_of) -> None:
    base = world_dir
    engine = engine_of(make_project(base / "p", images=1))
    os.chmod(base / "p", 0o755)
    sock_path = engine.project.socket_path
    os.chmod(sock_path, 0o666)  # take the file-mode defence away to test the uid check behind it
    os.chmod(engine.project.state_dir, 0o711)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: become nobody, try to talk to the engine
        os.close(r)
        try:
            os.setgid(65534)
            os.setuid(65534)
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(5)
            s.connect(str(sock_path))
            s.sendall(protocol.request(1, "status"))
            answer = s.recv(100)
            os.write(w, b"answered" if answer else b"closed")
        except Exception as exc:
            os.write(w, f"error {type(exc).__name__}".encode())
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    result = os.read(r, 100).decode()
    os.close(r)
    os.chmod(sock_path, 0o600)
    os.chmod(engine.project.state_dir, 0o700)
    assert result in ("closed", "error ConnectionResetError", "error BrokenPipeError"), result
    assert engine.request("ping", payload=1) == 1  # the owner is still served
    assert "refused a connection from another user" in engine.project.log_path.read_text()


def test_peer_check_reads_so_peercred(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import server

    class FakeSock:
        def __init__(self, uid: int):
            self.uid = uid

        def getsockopt(self, *a: object) -> bytes:
            return struct.pack("3i", 123, self.uid, 0)

    class FakeWriter:
        def __init__(self, uid: int):
            self.sock = FakeSock(uid)

        def get_extra_info(self, name: str) -> object:
            return self.sock

    assert server._peer_is_owner(FakeWriter(os.getuid()))
    assert not server._peer_is_owner(FakeWriter(os.getuid() + 1))


def _noop(ctx: object) -> dict:
    return {}


@pytest.fixture(scope="module")
def fuzz_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, socket.socket]]:
    """An in-process engine whose job runners do nothing (the validators are the real ones)."""
    project = make_project(tmp_path_factory.mktemp("fuzz") / "p", images=1)
    saved = dict(jobs.KINDS)
    for kind, (_runner, validator) in saved.items():
        jobs.KINDS[kind] = ("tests.test_security:_noop", validator)
    try:
        with h.in_process_engine(project):
            yield project
    finally:
        jobs.KINDS.clear()
        jobs.KINDS.update(saved)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=25,
)
FUZZ_COMMANDS = sorted(set(protocol.COMMANDS) - {"shutdown"})
ARG_NAMES = sorted({a for schema in protocol.COMMANDS.values() for a in schema} | {"evil"})
PARAM_NAMES = ["prompt", "width", "height", "steps", "seed", "count", "loras", "references", "resume", "run",
               "max_steps", "guidance", "seed_mode", "reference_strength", "negative_prompt", "x"]
messages = st.one_of(
    st.binary(max_size=200).map(lambda b: b.replace(b"\n", b" ")),
    st.builds(lambda cmd, args, rid: json.dumps({"id": rid, "cmd": cmd, "args": args}),
              st.sampled_from(FUZZ_COMMANDS), st.dictionaries(st.sampled_from(ARG_NAMES), json_values, max_size=4),
              st.integers(0, 10**6) | json_values),
    st.builds(lambda kind, params: json.dumps({"id": 1, "cmd": "submit", "args": {"kind": kind, "params": params}}),
              st.sampled_from(["gen", "train", "nope"]),
              st.dictionaries(st.sampled_from(PARAM_NAMES), json_values, max_size=6)),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(messages, min_size=1, max_size=5))
def test_fuzzed_messages_never_crash_or_hang_the_engine(fuzz_engine: Project, batch: list) -> None:
    address, _ = protocol.socket_address(fuzz_engine.socket_path)
    raw = socket.socket(socket.AF_UNIX)
    raw.connect(address)
    for msg in batch:
        line = msg if isinstance(msg, bytes) else msg.encode("utf-8", "surrogatepass")
        raw.sendall(line + b"\n")
    raw.close()
    with SyncClient(fuzz_engine, spawn=False, timeout=5) as client:
        started = time.monotonic()
        assert client.request("ping", timeout=10, payload="alive") == "alive"
        assert time.monotonic() - started < 10


# --- paths from messages and file names never lead out of the project ----------------------------------------------

def _outside_files(project: Project) -> dict[str, Path]:
    """Files beside the project (outside it) and symlinks inside the project that point at them."""
    outside = project.root.parent
    image, lora = outside / "outside.png", outside / "outside.safetensors"
    if not image.exists():
        image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
        lora.write_bytes(b"stand-in")
        (project.root / "references").mkdir(exist_ok=True)
        (project.root / "references" / "link.png").symlink_to(image)
        (project.loras_dir / "linked.safetensors").symlink_to(lora)
    return {"image": image, "lora": lora}


def _escapes(project: Project) -> list[tuple[str, dict, str]]:
    out = _outside_files(project)
    plain = "expected a plain folder name"
    return [
        ("gen", {"prompt": "x", "references": ["../outside.png"]}, "reference image ../outside.png: outside the"),
        ("gen", {"prompt": "x", "references": [str(out["image"])]}, "outside the project folder"),
        ("gen", {"prompt": "x", "references": ["references/link.png"]}, "references/link.png: outside the project"),
        ("gen", {"prompt": "x", "loras": [{"path": "../outside.safetensors"}]}, "outside the project; copy it"),
        ("gen", {"prompt": "x", "loras": [{"path": str(out["lora"])}]}, "outside the project; copy it"),
        ("gen", {"prompt": "x", "loras": [{"path": "loras/linked.safetensors"}]}, "outside the project; copy it"),
        ("gen", {"prompt": "x", "loras": ["linked"]}, "LoRA linked: a symlink to a file outside the project"),
        ("grid", {"prompt": "x", "loras": ["linked"]}, "LoRA linked: a symlink to a file outside the project"),
        ("train", {"run": "../escape"}, plain), ("train", {"run": "a/b"}, plain), ("train", {"run": ".."}, plain),
        ("train", {"run": ".hidden"}, plain), ("train", {"run": "nul\x00byte"}, plain),
        ("train", {"run": "line\nbreak"}, plain), ("train", {"run": "x" * 101}, plain),
    ]


def test_no_path_in_a_message_leads_out_of_the_project(fuzz_engine: Project) -> None:
    project = fuzz_engine
    with SyncClient(project, spawn=False) as client:
        before = len(client.request("jobs"))
        for kind, params, message in _escapes(project):
            with pytest.raises(EngineError) as info:
                client.request("submit", kind=kind, params=params)
            assert message in str(info.value), (kind, params, str(info.value))
        assert len(client.request("jobs")) == before  # nothing was queued
        # a checkpoint row pointing out of the project (a tampered state.db): no pin marker is written there
        store = Store(project.db_path)
        store.upsert_checkpoint("r", {"step": 1, "path": "../outside-checkpoint"})
        store.close()
        (project.root.parent / "outside-checkpoint").mkdir(exist_ok=True)
        with pytest.raises(EngineError, match=r"^\.\./outside-checkpoint: outside the project folder"):
            client.request("pin", run="r", step=1, pinned=True)
        assert not (project.root.parent / "outside-checkpoint" / "pinned").exists()
        assert client.request("ping", payload=1) == 1


def test_a_path_that_escapes_after_the_submit_fails_the_job(tmp_path: Path) -> None:
    from engine.generate import Loaded, apply_loras, reference_image

    project = make_project(tmp_path / "p", images=1)
    out = _outside_files(project)
    (project.loras_dir / "swapped.safetensors").symlink_to(out["lora"])  # replaced by a link after the submit
    with pytest.raises(JobFailed, match="LoRA loras/swapped.safetensors now points outside the project folder"):
        apply_loras(Loaded(key=(), pipe=None, device="cpu"), project, [{"path": "loras/swapped.safetensors",
                                                                         "strength": 1.0}])
    with pytest.raises(JobFailed, match="reference image references/link.png now points outside the project"):
        reference_image(project, ["references/link.png"], 64, 64)


def test_text_that_is_not_unicode_is_refused_at_the_socket() -> None:
    line = b'{"id": 1, "cmd": "submit", "args": {"kind": "gen", "params": {"prompt": "caf\\udce9"}}}'
    with pytest.raises(protocol.ProtocolError, match="submit: a text is not valid Unicode"):
        protocol.decode_request(line)
