"""Protocol messages: schema checks and size limits, with a fuzz test that nothing crashes the decoder."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import protocol
from engine.protocol import ProtocolError, decode_request


def test_round_trip() -> None:
    req = decode_request(protocol.request(3, "cancel", job_id=7))
    assert (req.id, req.cmd, req.args) == (3, "cancel", {"job_id": 7})


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"not json", "not a JSON message"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"id": "1", "cmd": "status"}', "'id' must be an integer"),
        (b'{"id": 1, "cmd": "rm -rf"}', "unknown command 'rm -rf'"),
        (b'{"id": 1, "cmd": "cancel", "args": {}}', "missing argument 'job_id'"),
        (b'{"id": 1, "cmd": "cancel", "args": {"job_id": "7"}}', "wrong type (str)"),
        (b'{"id": 1, "cmd": "cancel", "args": {"job_id": true}}', "wrong type (bool)"),
        (b'{"id": 1, "cmd": "cancel", "args": {"job_id": 1, "x": 2}}', "unknown argument 'x'"),
        (b'{"id": 1, "cmd": "status", "args": []}', "'args' must be an object"),
        (b'{"id": 1, "cmd": "ping", "args": {"payload": NaN}}', "NaN is not allowed"),
        (b"\xff\xfe", "not a JSON message"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(line: bytes, expected: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_request(line)
    assert expected in str(info.value)


def test_oversized_request_is_refused_before_parsing() -> None:
    line = json.dumps({"id": 1, "cmd": "ping", "args": {"payload": "x" * protocol.MAX_REQUEST_BYTES}}).encode()
    with pytest.raises(ProtocolError, match="over the"):
        decode_request(line)


def test_deeply_nested_json_is_refused() -> None:
    line = b'{"id": 1, "cmd": "ping", "args": {"payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    with pytest.raises(ProtocolError):
        decode_request(line[: protocol.MAX_REQUEST_BYTES])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.binary(max_size=300),
    st.builds(lambda cmd, args, rid: json.dumps({"id": rid, "cmd": cmd, "args": args}).encode(),
              st.sampled_from(sorted(protocol.COMMANDS)) | st.text(max_size=10),
              st.dictionaries(st.sampled_from(["job_id", "kind", "params", "to", "run", "x"]), json_values, max_size=3),
              json_values),
))
def test_decoder_never_raises_anything_but_protocol_error(line: bytes) -> None:
    try:
        req = decode_request(line)
    except ProtocolError:
        return
    schema = protocol.COMMANDS[req.cmd]
    assert set(req.args) <= set(schema)
    for name, (_kind, required) in schema.items():
        assert name in req.args or not required


def test_long_socket_paths_get_a_short_alias(tmp_path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    address, fd = protocol.socket_address(deep / "engine.sock")
    try:
        assert fd is not None and len(address) < 100 and address.endswith("/engine.sock")
    finally:
        import os

        os.close(fd)
    short, none = protocol.socket_address(tmp_path / "engine.sock")
    assert none is None and short == str(tmp_path / "engine.sock")
