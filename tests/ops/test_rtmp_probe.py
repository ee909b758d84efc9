"""The RTMP readiness probe against a loopback server replaying what real SRS 6.0.157 answered
(tests/fixtures/srs/rtmp-connect, scripts/record_rtmp_connect.py), and against what is not ready:
a closed port, silence, `_error`, a wrong handshake, bytes that are not RTMP."""

from __future__ import annotations

import json

import pytest

from ops.rtmp_probe import (
    C1,
    HANDSHAKE_SIZE,
    ProtocolError,
    Readiness,
    c0c1,
    check_handshake,
    connect_answer,
    connect_command,
)
from tests.ops.stand_ins import (
    RECORDED_ANSWER,
    RECORDED_HANDSHAKE,
    SRS_RECORDING,
    Origin,
    command_answer,
)

SUCCESS = Readiness(True, "RTMP connect to live answered NetConnection.Connect.Success")


def serving(origin: Origin) -> Origin:
    origin.open()
    return origin


@pytest.fixture
def stand_ins():
    made: list[Origin] = []

    def make(**kwargs) -> Origin:
        made.append(serving(Origin(**kwargs)))
        return made[-1]

    yield make
    for origin in made:
        origin.close()


def test_the_recording_is_srs_6_answering_success():
    meta = json.loads((SRS_RECORDING / "meta.json").read_text())
    assert "6.0.157" in meta["srs_version"]
    assert meta["verdict"] == {"ready": True, "reason": SUCCESS.reason}
    assert check_handshake(RECORDED_HANDSHAKE) is None
    assert connect_answer(RECORDED_ANSWER) == SUCCESS


def test_the_replayed_srs_answer_is_ready_and_the_probe_speaks_rtmp(stand_ins):
    origin = stand_ins()

    assert origin.readiness("127.0.0.1") == SUCCESS

    # C0+C1, then C2 echoing the server's S1, then the connect command, nothing else.
    s1 = RECORDED_HANDSHAKE[1 : 1 + HANDSHAKE_SIZE]
    assert origin.heard == [c0c1() + s1 + connect_command("127.0.0.1", origin.port)]


def test_every_cut_of_the_recorded_answer_waits_for_the_whole_result():
    """A read may end anywhere: until the `_result` message is complete the answer is undecided,
    never an error; from there on (SRS then sends onBWDone) it is success."""
    # Window Ack Size, Set Peer Bandwidth, Set Chunk Size, then `_result` on chunk stream 3.
    header = bytes.fromhex("03 000000 000352 14 00000000")
    result_end = RECORDED_ANSWER.index(header) + len(header) + 0x352
    assert result_end < len(RECORDED_ANSWER)
    before = {connect_answer(RECORDED_ANSWER[:cut]) for cut in range(result_end)}
    after = {
        connect_answer(RECORDED_ANSWER[:cut]) for cut in range(result_end, len(RECORDED_ANSWER) + 1)
    }
    assert (before, after) == ({None}, {SUCCESS})


def test_a_closed_port_is_not_ready():
    origin = Origin()  # never opened

    verdict = origin.readiness("127.0.0.1")

    assert verdict == Readiness(False, "RTMP port: Connection refused")


def test_a_silent_server_is_not_ready_within_the_timeout(stand_ins):
    origin = stand_ins(handshake=None)

    assert origin.readiness("127.0.0.1", timeout=0.3) == Readiness(
        False, "no RTMP answer within 0.3 s"
    )


def test_a_connect_answered_with_error_is_not_ready(stand_ins):
    origin = stand_ins(answer=command_answer("_error", "NetConnection.Connect.Rejected"))

    assert origin.readiness("127.0.0.1") == Readiness(
        False, "RTMP connect answered _error NetConnection.Connect.Rejected"
    )


def test_a_result_without_success_is_not_ready(stand_ins):
    origin = stand_ins(answer=command_answer("_result", "NetConnection.Connect.Closed"))

    verdict = origin.readiness("127.0.0.1")

    assert verdict == Readiness(False, "RTMP connect answered _result NetConnection.Connect.Closed")


def test_a_server_closing_after_the_handshake_is_not_ready(stand_ins):
    origin = stand_ins(answer=b"", hang_up=True)

    verdict = origin.readiness("127.0.0.1")

    assert verdict == Readiness(False, "closed after 0 bytes of the answer")


@pytest.mark.parametrize(
    ("handshake", "reason"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "handshake version 72, not 3"),
        (RECORDED_HANDSHAKE[:100], "handshake answer of 100 bytes, not 3073"),
        (b"\x06" + RECORDED_HANDSHAKE[1:], "handshake version 6, not 3"),
        (RECORDED_HANDSHAKE[:-1] + b"\xff", "handshake S2 does not echo C1"),
    ],
)
def test_a_wrong_handshake_is_not_ready(stand_ins, handshake, reason):
    origin = stand_ins(handshake=handshake)

    assert origin.readiness("127.0.0.1") == Readiness(False, reason)


def test_bytes_after_the_handshake_that_are_not_rtmp_are_not_ready(stand_ins):
    garbage = b"\x03" + bytes(3) + (4).to_bytes(3, "big") + b"\x14" + bytes(4) + b"\x42abc"
    origin = stand_ins(answer=garbage)

    assert origin.readiness("127.0.0.1") == Readiness(False, "not RTMP: AMF0 marker 66 at byte 0")


def test_a_continuation_chunk_before_any_header_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="chunk format 3 on stream 3 before its header"):
        connect_answer(b"\xc3" + bytes(10))


def test_the_probe_handshake_is_simple_and_fixed():
    """Time 0 and a fixed pattern: SRS answers with the simple handshake, S2 = C1."""
    assert len(C1) == HANDSHAKE_SIZE and C1[:8] == bytes(8)
    assert RECORDED_HANDSHAKE[1 + HANDSHAKE_SIZE :] == C1
