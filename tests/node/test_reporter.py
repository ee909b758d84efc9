"""The reporter's pure parts and its on-disk queue: intervals from counter deltas (with resets and
gaps), a queue that is bounded (oldest dropped, counted), survives restarts and torn writes."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node import reporter
from node.reporter import Sample, Spool, report_items

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


def test_first_poll_only_sets_the_baseline() -> None:
    assert report_items(None, at(0), {"show": (1000, 2)}) == []


def test_an_interval_per_stream_seen_in_both_polls_with_the_byte_delta() -> None:
    previous = Sample(at(0), {"show": 1000, "other": 50, "gone": 7})
    streams = {"show": (4000, 3), "other": (50, 0), "new": (999, 1)}
    assert report_items(previous, at(10), streams) == [
        {
            "stream": "show",
            "interval_start": at(0).isoformat(),
            "interval_end": at(10).isoformat(),
            "bytes_served": 3000,
            "viewers": 3,
        }
    ]  # "other" served nothing, "new" has no baseline yet, "gone" is gone


def test_a_counter_that_went_down_counts_the_new_value() -> None:
    previous = Sample(at(0), {"show": 10_000})
    (only,) = report_items(previous, at(10), {"show": (2_500, 1)})
    assert only["bytes_served"] == 2_500


def test_a_gap_longer_than_the_coordinator_accepts_starts_a_new_series() -> None:
    previous = Sample(at(0), {"show": 0})
    assert report_items(previous, at(301), {"show": (5_000, 1)}) == []
    assert len(report_items(previous, at(300), {"show": (5_000, 1)})) == 1


def test_a_poll_under_a_second_after_the_last_makes_no_interval() -> None:
    previous = Sample(at(0), {"show": 0})
    assert report_items(previous, at(0.5), {"show": (5_000, 1)}) is None


def test_the_queue_and_the_last_sample_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    spool = Spool.open(path, limit=100)
    spool.record(Sample(at(10), {"show": 10}), [item(0)])
    spool.record(Sample(at(20), {"show": 20}), [item(1)])

    reopened = Spool.open(path, limit=100)
    assert reopened.items == [item(0), item(1)]
    assert reopened.sample == Sample(at(20), {"show": 20})
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_settled_items_are_gone_after_a_restart_and_the_rest_stay(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    spool = Spool.open(path, limit=100)
    spool.record(Sample(at(30), {"show": 30}), [item(0), item(1), item(2)])
    spool.settle({("show", item(1)["interval_start"])})
    spool.record(Sample(at(40), {"show": 40}), [item(3)])

    reopened = Spool.open(path, limit=100)
    assert reopened.items == [item(0), item(2), item(3)]
    assert reopened.sample == Sample(at(40), {"show": 40})


def test_a_full_queue_drops_the_oldest_and_counts_the_drops(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    spool = Spool.open(path, limit=3)
    for number in range(5):
        spool.record(Sample(at(10 * number + 10), {"show": number}), [item(number)])
    assert spool.items == [item(2), item(3), item(4)]
    assert spool.dropped == 2

    reopened = Spool.open(path, limit=3)
    assert reopened.items == [item(2), item(3), item(4)]
    assert reopened.dropped == 2
    assert reopened.sample == Sample(at(50), {"show": 4})

    smaller = Spool.open(path, limit=1)  # a lower limit applies on restart too
    assert smaller.items == [item(4)]
    assert smaller.dropped == 4


def test_a_torn_last_line_loses_that_poll_whole_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    spool = Spool.open(path, limit=100)
    spool.record(Sample(at(10), {"show": 10}), [item(0)])
    whole = json.dumps({"sample": Sample(at(20), {"show": 20}).to_json(), "items": [item(1)]})
    with path.open("a") as file:
        file.write(whole[: len(whole) // 2])  # a crash in the middle of the append

    reopened = Spool.open(path, limit=100)
    assert reopened.items == [item(0)]
    assert reopened.sample == Sample(at(10), {"show": 10})  # so the next poll re-covers [10, ...)

    reopened.record(Sample(at(30), {"show": 30}), [item(2)])  # not glued onto the torn line
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
    spool.record(Sample(at(0), {"show": 0}), [item(0)])
    polls = reporter.COMPACT_AFTER_LINES * 3
    for number in range(1, polls):
        spool.record(Sample(at(10 * number), {"show": 0}), [])
    assert len(path.read_text().splitlines()) <= reporter.COMPACT_AFTER_LINES
    reopened = Spool.open(path, limit=10)
    assert reopened.items == [item(0)]
    assert reopened.sample == Sample(at(10 * (polls - 1)), {"show": 0})
