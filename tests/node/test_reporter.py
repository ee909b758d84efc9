"""The reporter's pure parts and its on-disk queue: intervals from counter deltas (with resets and
gaps), a queue that is bounded (oldest dropped, counted), survives restarts and torn writes."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node import reporter
from node.reporter import Client, Sample, Spool, Window, served_between, stream_name

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def item(number: int) -> dict:
    start = at(10 * number)
    return {
        "stream": "show",
        "interval_start": start.isoformat(),
        "interval_end": (start + timedelta(seconds=10)).isoformat(),
        "bytes_served": number,
        "viewers": 1,
    }


def sample(seconds: float, sent: int, **clients: tuple[str, int]) -> Sample:
    """A reading: the vhost counter and each client's (stream, bytes sent)."""
    return Sample(at(seconds), sent, {key: Client(*value) for key, value in clients.items()})


def test_each_stream_gets_its_clients_deltas_and_a_new_client_counts_from_zero() -> None:
    previous = sample(0, 1_000, a=("show", 600), b=("other", 400))
    current = sample(3, 4_500, a=("show", 2_600), b=("other", 900), c=("show", 1_000))
    assert served_between(previous, current) == ({"show": 3_000, "other": 500}, 0)


def test_what_clients_that_left_sent_after_the_last_sample_goes_to_their_stream() -> None:
    """The vhost counter keeps the last bytes of a connection SRS no longer lists."""
    previous = sample(0, 1_000, a=("show", 600), b=("other", 400))
    current = sample(3, 1_700, b=("other", 600))
    assert served_between(previous, current) == ({"show": 500, "other": 200}, 0)


def test_a_connection_never_seen_is_counted_but_not_named() -> None:
    previous = sample(0, 1_000, a=("show", 1_000))
    current = sample(1, 1_300, a=("show", 1_100))
    assert served_between(previous, current) == ({"show": 100}, 200)


def test_a_vhost_counter_that_went_down_means_srs_restarted() -> None:
    previous = sample(0, 50_000, a=("show", 50_000))
    current = sample(3, 2_000, a=("show", 2_000))  # SRS ids restart too; even if one repeats
    assert served_between(previous, current) == ({"show": 2_000}, 0)


def test_stream_names_lose_the_suffix_srs_6_0_157_puts_on_them() -> None:
    assert [stream_name(n) for n in ("show", "show.flv", "show.m3u8")] == ["show"] * 3


def test_a_window_reports_each_stream_once_with_unnamed_bytes_shared_by_what_they_served() -> None:
    window = Window(sample(0, 0), sample(0, 0))
    window.add(sample(1, 300, a=("show", 100), b=("other", 100), c=("other", 0)))
    window.add(sample(2, 700, a=("show", 300), b=("other", 300)))
    assert window.items() == [
        {
            "stream": name,
            "interval_start": at(0).isoformat(),
            "interval_end": at(2).isoformat(),
            "bytes_served": sent,
            "viewers": viewers,
        }
        for name, sent, viewers in (("other", 350, 2), ("show", 350, 1))
    ]  # 300 + 300 named; the 100 unnamed bytes split 50/50


def test_samples_survive_json_and_the_old_format_is_no_baseline() -> None:
    reading = sample(5, 77, a=("show", 70))
    assert Sample.from_json(json.loads(json.dumps(reading.to_json()))) == reading
    assert Sample.from_json({"time": at(0).isoformat(), "send_bytes": {"show": 1}}) is None


def test_the_queue_and_the_last_sample_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    spool = Spool.open(path, limit=100)
    spool.record(sample(10, 10), [item(0)])
    spool.record(sample(20, 20), [item(1)])

    reopened = Spool.open(path, limit=100)
    assert reopened.items == [item(0), item(1)]
    assert reopened.sample == sample(20, 20)
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_settled_items_are_gone_after_a_restart_and_the_rest_stay(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    spool = Spool.open(path, limit=100)
    spool.record(sample(30, 30), [item(0), item(1), item(2)])
    spool.settle({("show", item(1)["interval_start"])})
    spool.record(sample(40, 40), [item(3)])

    reopened = Spool.open(path, limit=100)
    assert reopened.items == [item(0), item(2), item(3)]
    assert reopened.sample == sample(40, 40)


def test_a_full_queue_drops_the_oldest_and_counts_the_drops(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    spool = Spool.open(path, limit=3)
    for number in range(5):
        spool.record(sample(10 * number + 10, number), [item(number)])
    assert spool.items == [item(2), item(3), item(4)]
    assert spool.dropped == 2

    reopened = Spool.open(path, limit=3)
    assert reopened.items == [item(2), item(3), item(4)]
    assert reopened.dropped == 2
    assert reopened.sample == sample(50, 4)

    smaller = Spool.open(path, limit=1)  # a lower limit applies on restart too
    assert smaller.items == [item(4)]
    assert smaller.dropped == 4


def test_a_torn_last_line_loses_that_poll_whole_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    spool = Spool.open(path, limit=100)
    spool.record(sample(10, 10), [item(0)])
    whole = json.dumps({"sample": sample(20, 20).to_json(), "items": [item(1)]})
    with path.open("a") as file:
        file.write(whole[: len(whole) // 2])  # a crash in the middle of the append

    reopened = Spool.open(path, limit=100)
    assert reopened.items == [item(0)]
    assert reopened.sample == sample(10, 10)  # so the next poll re-covers [10, ...)

    reopened.record(sample(30, 30), [item(2)])  # not glued onto the torn line
    assert Spool.open(path, limit=100).items == [item(0), item(2)]


def test_a_queue_limit_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="queue limit is 0; it must be at least 1"):
        Spool.open(tmp_path / "spool.jsonl", limit=0)


def test_atomic_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "node.json"
    reporter.write_atomically(target, "{}\n")
    assert target.read_text() == "{}\n"
    assert os.listdir(tmp_path) == ["node.json"]


def test_backoff_grows_and_is_capped() -> None:
    backoff = reporter.Backoff(cap=8)
    delays = [backoff.next_delay() for _ in range(10)]
    assert all(0 <= delay <= 8 for delay in delays)
    assert backoff.failures == 10
    backoff.reset()
    assert backoff.failures == 0


def test_an_idle_node_does_not_grow_its_spool_without_bound(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    spool = Spool.open(path, limit=10)
    spool.record(sample(0, 0), [item(0)])
    polls = reporter.COMPACT_AFTER_LINES * 3
    for number in range(1, polls):
        spool.record(sample(10 * number, 0), [])
    assert len(path.read_text().splitlines()) <= reporter.COMPACT_AFTER_LINES
    reopened = Spool.open(path, limit=10)
    assert reopened.items == [item(0)]
    assert reopened.sample == sample(10 * (polls - 1), 0)
