"""The process's memory of node tokens and beats (`domain.beats`): it never outlives the token
nor its cache time, and it stays bounded."""

from __future__ import annotations

from datetime import UTC, datetime

from streamr_coordinator.domain import beats
from streamr_coordinator.domain.beats import BeatMemory
from streamr_coordinator.domain.tokens import Principal

NOW = 1_800_000_000.0


def _principal(token_hash: bytes, expires_in: float) -> Principal:
    return Principal(7, "friend", 3, token_hash, datetime.fromtimestamp(NOW + expires_in, UTC))


def test_a_token_is_remembered_for_the_cache_time_at_most() -> None:
    memory = BeatMemory()
    memory.remember(_principal(b"t", expires_in=3600), NOW, 300)
    assert memory.recall(b"t", NOW + 299) == _principal(b"t", expires_in=3600)
    assert memory.recall(b"t", NOW + 300) is None


def test_a_token_is_never_remembered_past_its_expiry() -> None:
    memory = BeatMemory()
    memory.remember(_principal(b"t", expires_in=10), NOW, 300)
    assert memory.recall(b"t", NOW + 9.9) is not None
    assert memory.recall(b"t", NOW + 10) is None
    memory.remember(_principal(b"gone", expires_in=0), NOW, 300)
    assert memory.recall(b"gone", NOW) is None


def test_forgotten_tokens_are_not_recalled() -> None:
    memory = BeatMemory()
    memory.remember(_principal(b"a", expires_in=3600), NOW, 300)
    memory.remember(_principal(b"b", expires_in=3600), NOW, 300)
    memory.forget([b"a"])
    assert memory.recall(b"a", NOW) is None
    assert memory.recall(b"b", NOW) is not None


def test_a_node_is_known_online_only_within_the_window_after_a_beat_here() -> None:
    memory = BeatMemory()
    assert memory.beat(1, 100.0, online_seconds=90) is False  # new to this process
    assert memory.beat(1, 130.0, online_seconds=90) is True
    assert memory.beat(1, 220.0, online_seconds=90) is True  # 90 s after the last beat
    assert memory.beat(1, 311.0, online_seconds=90) is False  # back after the window
    assert memory.beat(2, 311.0, online_seconds=90) is False


def test_the_memory_is_bounded(monkeypatch) -> None:
    monkeypatch.setattr(beats, "MAX_ENTRIES", 3)
    memory = BeatMemory()
    for node in range(3):
        memory.beat(node, 0.0, online_seconds=90)
    memory.beat(3, 100.0, online_seconds=90)  # the three before have lapsed: dropped
    assert memory.beat(3, 101.0, online_seconds=90) is True
    assert memory.beat(0, 101.0, online_seconds=90) is False
    for name in (b"a", b"b", b"c"):
        memory.remember(_principal(name, expires_in=3600), NOW, 300)
    memory.remember(_principal(b"d", expires_in=3600), NOW, 300)  # none lapsed: all dropped
    assert [memory.recall(name, NOW) is not None for name in (b"a", b"b", b"c", b"d")] == [
        False,
        False,
        False,
        True,
    ]
