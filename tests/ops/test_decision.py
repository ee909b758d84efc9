"""The schedule and the decision function: tables for the cases, properties for time and DST."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ops.decision import Resource, Sizes, decide
from ops.schedule import WEEKDAYS, Schedule, ScheduleError

EVERY_DAY = ",".join(WEEKDAYS)
NIGHTLY = Schedule.parse("22:00", "08:00", EVERY_DAY, "Europe/Berlin")
NIGHT = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)  # 00:30 Berlin
DAY = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # 13:00 Berlin
JUST_PAUSED = datetime(2026, 11, 25, 21, 5, tzinfo=UTC)  # 22:05 Berlin

DB = Resource("rds", "db", "db", "available")
ASG_RUNNING = Resource("asg", "g", "g", "running", sizes=Sizes(1, 2, 4))
ASG_ZERO_SAVED = Resource("asg", "g", "g", "zero", sizes=Sizes(0, 0, 0), saved_sizes=Sizes(1, 2, 4))


def with_state(resource: Resource, state: str, **changes) -> Resource:
    return Resource(**{**resource.__dict__, "state": state, **changes})


@pytest.mark.parametrize(
    ("resource", "now", "enforced", "requested", "verb"),
    [
        (ASG_RUNNING, NIGHT, False, "paused", "scale_to_zero"),
        (ASG_ZERO_SAVED, NIGHT, False, "paused", "none"),
        (ASG_ZERO_SAVED, DAY, False, "running", "restore_sizes"),
        (ASG_RUNNING, DAY, False, "running", "none"),
        (Resource("asg", "g", "g", "zero", sizes=Sizes(0, 0, 0)), DAY, True, None, "skip"),
        (Resource("ec2", "i", "i", "running"), NIGHT, True, None, "stop"),
        (Resource("ec2", "i", "i", "stopped"), NIGHT, True, None, "none"),
        (Resource("ec2", "i", "i", "stopped"), DAY, True, None, "start"),
        (Resource("ec2", "i", "i", "pending"), NIGHT, True, None, "skip"),
        (Resource("ec2", "i", "i", "stopping"), DAY, True, None, "skip"),
        (DB, NIGHT, True, None, "stop"),
        (with_state(DB, "stopped"), NIGHT, True, None, "none"),
        (with_state(DB, "stopped"), DAY, True, None, "start"),
        (with_state(DB, "starting"), NIGHT, True, None, "skip"),
        (with_state(DB, "starting"), DAY, True, None, "none"),
        (with_state(DB, "backing-up"), DAY, True, None, "skip"),
        # A scheduled, non-enforced run acts right after a transition...
        (DB, JUST_PAUSED, False, None, "stop"),
        # ...but leaves alone what someone started by hand hours later.
        (DB, NIGHT, False, None, "none"),
        # An explicit pause or resume ignores the clock.
        (DB, DAY, False, "paused", "stop"),
    ],
)
def test_decide(resource, now, enforced, requested, verb):
    assert decide(resource, NIGHTLY, now, enforced, requested).verb == verb


def test_a_database_running_while_paused_by_ops_is_stopped_with_the_seven_day_reason():
    restarted = with_state(DB, "available", paused_by_ops=True)
    action = decide(restarted, NIGHTLY, NIGHT, enforced=True)
    assert action.verb == "stop"
    assert "7 days" in action.reason


def test_without_schedule_or_request_decide_refuses():
    with pytest.raises(ValueError, match="schedule is required"):
        decide(DB, None, NIGHT, enforced=True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("25:00", "08:00", EVERY_DAY, "UTC"), "pause_at is '25:00'"),
        (("22:00", "8", EVERY_DAY, "UTC"), "resume_at is '8'"),
        (("22:00", "08:00", "mon,funday", "UTC"), "unknown day"),
        (("22:00", "08:00", "", "UTC"), "weekdays is empty"),
        (("22:00", "08:00", EVERY_DAY, "Mars/Olympus"), "not an IANA timezone"),
        (("08:00", "08:00", EVERY_DAY, "UTC"), "both 08:00"),
    ],
)
def test_bad_schedule_settings_name_the_problem(args, message):
    with pytest.raises(ScheduleError, match=message):
        Schedule.parse(*args)


def test_sizes_tag_round_trips_and_rejects_garbage():
    assert Sizes.from_tag(Sizes(1, 2, 4).to_tag()) == Sizes(1, 2, 4)
    with pytest.raises(ValueError, match="not 'min=N desired=N max=N'"):
        Sizes.from_tag("one two")


def test_weekend_only_schedule_is_paused_on_weekdays():
    weekend = Schedule.parse("23:00", "10:00", "sat,sun", "Europe/Amsterdam")
    saturday_noon = datetime(2026, 11, 28, 11, 0, tzinfo=UTC)
    monday_noon = datetime(2026, 11, 30, 11, 0, tzinfo=UTC)
    assert weekend.target_at(saturday_noon) == "running"
    assert weekend.target_at(monday_noon) == "paused"


moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)
zones = st.sampled_from(["Europe/Berlin", "America/New_York", "Europe/Amsterdam", "UTC"])
local_times = st.times().map(lambda value: time(value.hour, value.minute))
day_sets = st.sets(st.sampled_from(WEEKDAYS), min_size=1).map(tuple)


@given(moments, zones, local_times, local_times, day_sets)
def test_state_is_the_last_transition_and_changes_only_at_transitions(
    now, zone, pause_at, resume_at, days
):
    assume(pause_at != resume_at)
    schedule = Schedule(pause_at, resume_at, days, zone)
    last = schedule.last_event(now)
    assert last.at <= now
    assert schedule.target_at(now) == last.target
    # Nothing happens between the last transition and now, and one minute on nothing changes
    # unless a transition lies in between.
    assert schedule.events_between(last.at, now) == []
    later = now + timedelta(minutes=1)
    if not schedule.events_between(now, later):
        assert schedule.target_at(later) == schedule.target_at(now)


@given(st.sampled_from(["Europe/Berlin", "America/New_York"]), st.integers(2024, 2030))
def test_every_dst_day_has_exactly_one_pause_and_one_resume(zone, year):
    schedule = Schedule(time(2, 30), time(1, 30), WEEKDAYS, zone)
    tz = ZoneInfo(zone)
    # Days when the UTC offset changes (spring forward, fall back).
    days = [
        datetime(year, month, day, tzinfo=tz)
        for month in (3, 4, 10, 11)
        for day in range(1, 31 if month in (4, 11) else 32)
    ]
    changes = [d for d in days if d.utcoffset() != (d + timedelta(days=1)).utcoffset()]
    assert len(changes) == 2
    for day in changes:
        # Local midnight to local midnight of the change day (23 or 25 hours).
        start, end = day.astimezone(UTC), (day + timedelta(days=1)).astimezone(UTC)
        assert end - start != timedelta(days=1)
        events = schedule.events_between(start, end)
        assert sorted(event.target for event in events) == ["paused", "running"]
        # 02:30 on spring-forward day does not exist: it fires at 03:30 local wall time.
        pause = next(event for event in events if event.target == "paused")
        assert pause.at.astimezone(tz).hour in (2, 3)
