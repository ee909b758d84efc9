"""When the platform should run: pause and resume local times on chosen weekdays, in one timezone.

Pure: every answer is a function of the schedule and a moment passed in by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Target = Literal["paused", "running"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ScheduleError(ValueError):
    """The schedule's settings are invalid; the message names the setting and what is allowed."""


@dataclass(frozen=True)
class Event:
    """One scheduled transition, at an exact instant (UTC-aware)."""

    at: datetime
    target: Target


@dataclass(frozen=True)
class Schedule:
    """On each listed weekday the platform resumes at `resume_at` and pauses at `pause_at` (local).

    `pause_at` earlier than `resume_at` is the usual overnight pause (e.g. pause 22:00, resume
    08:00). Between transitions the platform keeps the state of the most recent one, so a list of
    weekdays such as `fri, sat` means: running Friday and Saturday daytime, paused otherwise.
    Local times that a DST change skips or repeats resolve as `zoneinfo` does with `fold=0`:
    a skipped time lands one hour later in wall-clock terms, a repeated one on its first occurrence.
    """

    pause_at: time
    resume_at: time
    weekdays: tuple[str, ...]
    timezone: str

    def __post_init__(self) -> None:
        if not self.weekdays:
            raise ScheduleError(f"weekdays is empty; allowed values: {', '.join(WEEKDAYS)}")
        unknown = [day for day in self.weekdays if day not in WEEKDAYS]
        if unknown:
            raise ScheduleError(
                f"weekdays has unknown day(s) {', '.join(unknown)}; allowed values: "
                f"{', '.join(WEEKDAYS)}"
            )
        if self.pause_at == self.resume_at:
            raise ScheduleError(f"pause_at and resume_at are both {self.pause_at:%H:%M}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ScheduleError(
                f"timezone {self.timezone!r} is not an IANA timezone (e.g. Europe/Amsterdam)"
            ) from error

    @classmethod
    def parse(cls, pause_at: str, resume_at: str, weekdays: str, timezone: str) -> Schedule:
        """Build from text settings: `HH:MM`, `HH:MM`, comma-separated weekdays, IANA zone."""
        days = tuple(day.strip().lower() for day in weekdays.split(",") if day.strip())
        return cls(
            pause_at=_parse_time("pause_at", pause_at),
            resume_at=_parse_time("resume_at", resume_at),
            weekdays=days,
            timezone=timezone.strip(),
        )

    def describe(self) -> str:
        """One line for people: `pauses 22:00, resumes 08:00 (Europe/Amsterdam) on mon, fri`."""
        days = "every day" if self.weekdays == WEEKDAYS else ", ".join(self.weekdays)
        return (
            f"pauses {self.pause_at:%H:%M}, resumes {self.resume_at:%H:%M} "
            f"({self.timezone}) on {days}"
        )

    def events_between(self, start: datetime, end: datetime) -> list[Event]:
        """Transitions with `start < at <= end`, in time order (both bounds timezone-aware)."""
        _require_aware(start, end)
        zone = ZoneInfo(self.timezone)
        first_day = start.astimezone(zone).date() - timedelta(days=1)
        last_day = end.astimezone(zone).date() + timedelta(days=1)
        events = [
            event
            for day in _days(first_day, last_day)
            if WEEKDAYS[day.weekday()] in self.weekdays
            for event in (
                Event(_instant(day, self.resume_at, zone), "running"),
                Event(_instant(day, self.pause_at, zone), "paused"),
            )
            if start < event.at <= end
        ]
        return sorted(events, key=lambda event: event.at)

    def last_event(self, now: datetime) -> Event:
        """The most recent transition at or before `now` (there is one within any 8 days)."""
        return self.events_between(now - timedelta(days=8), now)[-1]

    def target_at(self, now: datetime) -> Target:
        """The state the schedule wants at `now`."""
        return self.last_event(now).target


def _parse_time(key: str, text: str) -> time:
    try:
        hours, minutes = text.strip().split(":")
        if len(hours) != 2 or len(minutes) != 2:
            raise ValueError(text)
        return time(int(hours), int(minutes))
    except ValueError as error:
        raise ScheduleError(
            f"{key} is {text!r}; expected a local time HH:MM (00:00-23:59)"
        ) from error


def _require_aware(*moments: datetime) -> None:
    if any(moment.tzinfo is None for moment in moments):
        raise ScheduleError("times passed to the schedule must be timezone-aware")


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def _instant(day: date, local: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, local, tzinfo=zone).astimezone(ZoneInfo("UTC"))
