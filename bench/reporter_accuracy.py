"""The node reporter's accuracy on the real SRS recordings (tests/fixtures/srs), per scenario.

For each recording of an edge, at the default 10 s interval and every phase of it (the reporter
started at each of the first ten polls): the bytes the reporter reports against what SRS itself
counted as sent (its vhost counter over the recording), as the worst error over the phases. For
comparison, the earlier design (deltas of `/api/v1/streams/` `send_bytes` between two 10 s polls
that both list the stream), and what the viewers themselves received against SRS's count (SRS
drops an HTTP-FLV connection's bytes since its last 3 s resample when it closes).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from node.reporter import DEFAULT_INTERVAL_SECONDS, Window, sample_of
from tests.node import recordings

START = datetime(2026, 3, 1, 12, tzinfo=UTC)
PHASES = 10


def reported(frames: list[recordings.Frame]) -> int:
    """What the reporter queues over the recording, driven frame by frame (as `Reporter.poll`)."""
    samples = [
        sample_of(f.at(START).replace(microsecond=0), f.answers["vhosts"], f.answers["clients"])
        for f in frames
    ]
    window, total = Window(samples[0], samples[0]), 0
    for sample in samples[1:]:
        window.add(sample)
        if window.due(DEFAULT_INTERVAL_SECONDS):
            total += sum(item["bytes_served"] for item in window.items())
            window = Window(sample, sample)
    return total


def stream_counter_deltas(frames: list[recordings.Frame]) -> int:
    """The earlier design: a poll every 10 s, a stream's delta when both polls list it."""
    polls = frames[:: int(DEFAULT_INTERVAL_SECONDS)]
    total = 0
    for previous, current in itertools.pairwise(polls):
        before = {s["name"]: s["send_bytes"] for s in previous.answers["streams"]["streams"]}
        for stream in current.answers["streams"]["streams"]:
            if stream["name"] in before:
                sent, was = stream["send_bytes"], before[stream["name"]]
                total += sent - was if sent >= was else sent
    return total


def error(measured: int, counted: int) -> float:
    return 100.0 * (measured - counted) / counted


def main() -> None:
    print(f"interval {DEFAULT_INTERVAL_SECONDS:g} s; errors over {PHASES} phases of it")
    header = ("scenario", "SRS counted", "reporter (worst)", "earlier design (mean)", "viewers")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for scenario in recordings.SCENARIOS:
        frames = recordings.frames(scenario)
        new, old = [], []
        for phase in range(PHASES):
            part = frames[phase:]
            counted = part[-1].sent - part[0].sent
            new.append(error(reported(part), counted))
            old.append(error(stream_counter_deltas(part), counted))
        counted = frames[-1].sent - frames[0].sent
        received = sum(
            viewer["received_bytes"]
            for viewer in recordings.viewers(scenario)
            if viewer["server"] == "edge"
        )
        print(
            f"| {scenario} | {counted:,} B | {max(new, key=abs):+.2f} % "
            f"| {sum(old) / PHASES:+.1f} % (worst {max(old, key=abs):+.1f} %) "
            f"| {error(received, counted):+.1f} % |"
        )
