"""Is RTMP ingest ready for a publish? The handshake and a `connect` to the `live` app, answered.

A TCP connection to 1935 only says something listens; SRS answers the RTMP handshake and a
`connect` command (AMF0) to an app with `_result` / `NetConnection.Connect.Success` once its RTMP
server runs, which is what a streamer's encoder does before it publishes. The parsing is pure
(`check_handshake`, `connect_answer`); `probe` is the thin socket edge. Anything else is not
ready, with a short reason for the status note.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

RTMP_PORT = 1935
APP = "live"  # srs/render.py's app
HANDSHAKE_SIZE = 1536
# C1: time 0, zero, then a fixed pattern: a simple handshake (SRS answers S2 = C1), and a recorded
# server answer replays byte for byte.
C1 = (bytes(8) + bytes(range(256)) * 6)[:HANDSHAKE_SIZE]
CHUNK_SIZE = 128  # RTMP's default, both ways, until a Set Chunk Size
SET_CHUNK_SIZE, COMMAND_AMF0 = 1, 20
CONNECT_TRANSACTION = 1.0
CONNECT_SUCCESS = "NetConnection.Connect.Success"


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str


class ProtocolError(ValueError):
    """The server's bytes are not the RTMP we expect."""


def c0c1() -> bytes:
    return b"\x03" + C1


def check_handshake(s0s1s2: bytes) -> str | None:
    """Why the server's S0+S1+S2 (3073 bytes; S0 alone when it is not 3) is not an RTMP 3
    handshake answering our C1, or None when it is."""
    if s0s1s2[:1] not in (b"", b"\x03"):
        return f"handshake version {s0s1s2[0]}, not 3"
    if len(s0s1s2) != 1 + 2 * HANDSHAKE_SIZE:
        return f"handshake answer of {len(s0s1s2)} bytes, not {1 + 2 * HANDSHAKE_SIZE}"
    if s0s1s2[1 + HANDSHAKE_SIZE :] != C1:
        return "handshake S2 does not echo C1"
    return None


def connect_command(host: str, port: int, app: str = APP) -> bytes:
    """The `connect` command (transaction 1) as chunks on chunk stream 3, as an encoder sends it."""
    body = (
        amf_string("connect")
        + amf_number(CONNECT_TRANSACTION)
        + amf_object({"app": app, "type": "nonprivate", "tcUrl": f"rtmp://{host}:{port}/{app}"})
    )
    header = b"\x03" + bytes(3) + len(body).to_bytes(3, "big") + bytes([COMMAND_AMF0]) + bytes(4)
    pieces = [body[i : i + CHUNK_SIZE] for i in range(0, len(body), CHUNK_SIZE)]
    return header + b"\xc3".join(pieces)


def connect_answer(data: bytes) -> Readiness | None:
    """The verdict on what the server sent after the handshake: ready on `_result` with
    NetConnection.Connect.Success for transaction 1, not ready on any other answer to it, None
    while the answer is not complete. Raises ProtocolError on bytes that are not RTMP chunks."""
    for type_id, body in _messages(data):
        if type_id != COMMAND_AMF0:
            continue
        values = _amf_values(body)
        if len(values) < 2 or values[1] != CONNECT_TRANSACTION:
            continue
        name = values[0]
        info = values[3] if len(values) > 3 and isinstance(values[3], dict) else {}
        code = info.get("code")
        if name == "_result" and code == CONNECT_SUCCESS:
            return Readiness(True, f"RTMP connect to {APP} answered {code}")
        return Readiness(False, f"RTMP connect answered {name} {code or ''}".rstrip())
    return None


def probe(
    host: str, port: int = RTMP_PORT, timeout: float = 3.0, heard: list[bytes] | None = None
) -> Readiness:
    """Handshake and `connect` with `host` within `timeout` seconds in all; `heard` (when given)
    receives the server's handshake answer and then what it sent after it (scripts/ record it)."""
    heard = [] if heard is None else heard
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.sendall(c0c1())
            answer = _read(connection, 1, deadline)
            if answer == b"\x03":  # S0 says RTMP 3: S1 and S2 follow
                answer += _read(connection, 2 * HANDSHAKE_SIZE, deadline)
            heard.append(answer)
            mismatch = check_handshake(answer)
            if mismatch is not None:
                return Readiness(False, mismatch)
            connection.sendall(answer[1 : 1 + HANDSHAKE_SIZE] + connect_command(host, port))
            heard.append(b"")
            while True:
                chunk = _recv(connection, deadline)
                if not chunk:
                    return Readiness(False, f"closed after {len(heard[-1])} bytes of the answer")
                heard[-1] += chunk
                verdict = connect_answer(heard[-1])
                if verdict is not None:
                    return verdict
    except TimeoutError:
        return Readiness(False, f"no RTMP answer within {timeout:g} s")
    except ProtocolError as error:
        return Readiness(False, f"not RTMP: {error}")
    except OSError as error:
        return Readiness(False, f"RTMP port: {error.strerror or error}")


def _read(connection: socket.socket, size: int, deadline: float) -> bytes:
    data = b""
    while len(data) < size:
        chunk = _recv(connection, deadline, size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _recv(connection: socket.socket, deadline: float, size: int = 65536) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    connection.settimeout(remaining)
    return connection.recv(size)


def _messages(data: bytes) -> list[tuple[int, bytes]]:
    """The complete messages in a server's chunk stream (RTMP spec 5.3), honouring Set Chunk
    Size; a trailing incomplete chunk is left for the next read."""
    chunk_size, streams, messages, at = CHUNK_SIZE, {}, [], 0
    while at < len(data):
        first = data[at]
        fmt, csid, at = first >> 6, first & 0x3F, at + 1
        if csid < 2:
            width = csid + 1
            if at + width > len(data):
                break
            csid = 64 + int.from_bytes(data[at : at + width], "little")
            at += width
        header_size = (11, 7, 3, 0)[fmt]
        if at + header_size > len(data):
            break
        stream = streams.setdefault(csid, {"length": None, "type": None, "body": b""})
        timestamp = int.from_bytes(data[at : at + 3], "big") if fmt < 3 else 0
        if fmt <= 1:
            stream["length"] = int.from_bytes(data[at + 3 : at + 6], "big")
            stream["type"] = data[at + 6]
        elif stream["length"] is None:
            raise ProtocolError(f"chunk format {fmt} on stream {csid} before its header")
        at += header_size
        if timestamp == 0xFFFFFF:
            at += 4
        length = stream["length"]
        take = min(chunk_size, length - len(stream["body"]))
        if at + take > len(data):
            break
        stream["body"] += data[at : at + take]
        at += take
        if len(stream["body"]) == length:
            body, stream["body"] = stream["body"], b""
            if stream["type"] == SET_CHUNK_SIZE:
                chunk_size = int.from_bytes(body[:4], "big") & 0x7FFFFFFF
            messages.append((stream["type"], body))
    return messages


def _amf_values(body: bytes) -> list[Any]:
    values, at = [], 0
    while at < len(body):
        value, at = _amf_value(body, at)
        values.append(value)
    return values


def _amf_value(body: bytes, at: int) -> tuple[Any, int]:
    """One AMF0 value (the types a connect answer uses) and where the next one starts."""
    if at >= len(body):
        raise ProtocolError("AMF0 value cut short")
    marker, at = body[at], at + 1
    if marker == 0:
        return struct.unpack(">d", body[at : at + 8])[0], at + 8
    if marker == 1:
        return body[at] != 0, at + 1
    if marker == 2:
        return _amf_utf8(body, at)
    if marker in (3, 8):
        at += 4 if marker == 8 else 0
        properties: dict[str, Any] = {}
        while body[at : at + 3] != b"\x00\x00\x09":
            key, at = _amf_utf8(body, at)
            properties[key], at = _amf_value(body, at)
        return properties, at + 3
    if marker in (5, 6):
        return None, at
    raise ProtocolError(f"AMF0 marker {marker} at byte {at - 1}")


def _amf_utf8(body: bytes, at: int) -> tuple[str, int]:
    size = int.from_bytes(body[at : at + 2], "big")
    if at + 2 + size > len(body):
        raise ProtocolError("AMF0 string cut short")
    return body[at + 2 : at + 2 + size].decode("utf-8", "replace"), at + 2 + size


def amf_string(text: str) -> bytes:
    raw = text.encode()
    return b"\x02" + len(raw).to_bytes(2, "big") + raw


def amf_number(number: float) -> bytes:
    return b"\x00" + struct.pack(">d", number)


def amf_object(properties: dict[str, str]) -> bytes:
    pairs = b"".join(
        len(key).to_bytes(2, "big") + key.encode() + amf_string(value)
        for key, value in properties.items()
    )
    return b"\x03" + pairs + b"\x00\x00\x09"
