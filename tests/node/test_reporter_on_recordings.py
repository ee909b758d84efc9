"""The reporter against real SRS 6 edges, replayed from tests/fixtures/srs (HTTP API answers as
recorded, in time order): at the default interval, what it reports for a stream is within ±5 % of
what SRS itself counted as sent, at every report and over the whole session, including the first
poll after the stream appears, the last interval before it disappears and sessions of a few
seconds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.reporter import Coordinator, Reporter, Spool

from . import recordings
from .recordings import Frame, RecordedSrs

TOLERANCE = 0.05
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    node = {"id": 1, "node_token": "unused", "token_expires_at": "2099-01-01T00:00:00+00:00"}
    (state / "node.json").write_text(json.dumps(node))
    return state


def replay(scenario: str, first_frame: int, state_dir: Path) -> tuple[list[Frame], list[dict]]:
    """The reporter (default interval) started at `first_frame` and polled once per recorded
    frame, its clock the frame's time; returns the frames it saw and the items it queued."""
    recorded = recordings.frames(scenario)[first_frame:]
    srs = RecordedSrs(recorded)
    now = T0
    reporter = Reporter(
        Coordinator("http://127.0.0.1:9", state_dir),  # never called: nothing is sent here
        Spool.open(state_dir / "spool.jsonl", limit=10_000),
        srs.url,
        clock=lambda: now,
    )
    try:
        for index, frame in enumerate(recorded):
            srs.index, now = index, frame.at(T0)
            reporter.poll()
    finally:
        srs.close()
    return recorded, reporter.spool.items


def sessions(scenario: str) -> Iterator[tuple[str, float, float]]:
    """(client, on_play time, on_stop time) of each viewer of the edge, from its hooks."""
    started = {}
    for call in recordings.hooks(scenario):
        body = call["body"]
        if call["server"] == "edge" and body["action"] == "on_play":
            started[body["client_id"]] = call["t"]
        elif call["server"] == "edge" and body["action"] == "on_stop":
            yield body["client_id"], started.pop(body["client_id"]), call["t"]


@pytest.mark.parametrize("first_frame", [0, 3, 6, 9])  # where the report intervals fall
@pytest.mark.parametrize("scenario", recordings.SCENARIOS)
def test_reported_bytes_are_within_5_percent_of_what_srs_counted_at_every_report(
    scenario: str, first_frame: int, state_dir: Path
) -> None:
    recorded, items = replay(scenario, first_frame, state_dir)
    baseline = recorded[0].sent
    counted_at = {frame.at(T0).replace(microsecond=0).isoformat(): frame.sent for frame in recorded}
    assert items, "nothing was reported"
    assert {item["stream"] for item in items} == {"show"}  # `show.flv` (SRS #4215) is `show` too

    reported = 0
    for end in sorted({item["interval_end"] for item in items}):
        reported += sum(item["bytes_served"] for item in items if item["interval_end"] == end)
        counted = counted_at[end] - baseline
        assert abs(reported - counted) <= TOLERANCE * counted, (end, reported, counted)

    # The recording runs on after the last viewer left, so the last report has every byte.
    assert counted_at[max(item["interval_end"] for item in items)] == recorded[-1].sent
    total = recorded[-1].sent - baseline
    assert abs(reported - total) <= TOLERANCE * total


@pytest.mark.parametrize("scenario", recordings.SCENARIOS)
def test_every_viewer_session_on_the_edge_is_in_a_report_short_ones_included(
    scenario: str, state_dir: Path
) -> None:
    _, items = replay(scenario, 0, state_dir)
    found = list(sessions(scenario))
    assert found
    for client, started, stopped in found:
        play, stop = T0.timestamp() + started, T0.timestamp() + stopped
        covering = [
            item
            for item in items
            if datetime.fromisoformat(item["interval_start"]).timestamp() < stop
            and datetime.fromisoformat(item["interval_end"]).timestamp() > play
        ]
        assert covering, f"the session of {client} ({stopped - started:.1f} s) was not reported"
        assert all(item["viewers"] >= 1 for item in covering)


def test_the_recordings_hold_short_sessions_and_an_http_flv_first_viewer() -> None:
    """What the accuracy tests above rely on being in the fixtures."""
    every = [session for scenario in recordings.SCENARIOS for session in sessions(scenario)]
    lengths = [stop - start for _, start, stop in every]
    assert min(lengths) < 6
    first_viewers = [recordings.viewers(scenario)[0]["url"] for scenario in recordings.SCENARIOS]
    assert any(url.startswith("http://") and ".flv" in url for url in first_viewers)


def test_srs_counts_what_http_flv_viewers_received_but_their_last_seconds() -> None:
    """The yardstick above is real: where every edge viewer played HTTP-FLV (whose bytes on the
    wire are what the viewer read, plus headers), SRS's vhost counter is what they received less
    at most each connection's last 3 s resample (~36 KB/s here), which SRS never counts."""
    scenario = "edge-short-sessions"
    viewers = [v for v in recordings.viewers(scenario) if v["server"] == "edge"]
    assert {v["protocol"] for v in viewers} == {"flv"}
    received = sum(v["received_bytes"] for v in viewers)
    counted = recordings.frames(scenario)[-1].sent
    assert 0 < received - counted <= len(viewers) * 3 * 40_000
