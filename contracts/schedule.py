"""A schedule's recurrence (v1's ``ScheduleRecurrence``) and its arithmetic.

Shared by the SDK (validation before anything is sent), the API (validation of what arrives)
and the schedule firer (when is it due next), so the three agree on every date.

Why wall-clock arithmetic in the schedule's time zone: "every day at 22:30 in Europe/Berlin"
means 22:30 on the clock there in winter and in summer, so day, week and month recurrences step
through local dates and convert each local time to an instant. Minute and hour recurrences step
through instants: "every two hours" stays two hours apart across a daylight-saving change.
At a transition a local time that does not exist (02:30 on the night the clock jumps from 02:00
to 03:00) fires once, shifted forward by the gap (03:30); one that exists twice (the hour
repeated in autumn) fires once, at its first occurrence.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from itertools import product
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from tzlocal.windows_tz import win_tz

__all__ = [
    "EXTRA_WINDOWS_ZONES",
    "FREQUENCIES",
    "WEEK_DAYS",
    "Recurrence",
    "windows_zone_names",
    "zone_of",
]

FREQUENCIES = ("Minute", "Hour", "Day", "Week", "Month")
WEEK_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

#: Windows zone names v1's TimeZone enum has and the CLDR table behind tzlocal lacks
EXTRA_WINDOWS_ZONES = {
    "Kamchatka Standard Time": "Asia/Kamchatka",
    "Mid-Atlantic Standard Time": "Etc/GMT+2",
}

#: how many periods ``next_after`` looks at before deciding a recurrence never fires again
_HORIZON = 5000


def zone_of(name: str | None) -> ZoneInfo:
    """The time zone called ``name``: an IANA name (``Europe/Berlin``) or a Windows name as
    v1's ``TimeZone`` enum holds it (``W. Europe Standard Time``); UTC when None."""
    if name is None:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(EXTRA_WINDOWS_ZONES.get(name) or win_tz.get(name, name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}: give an IANA name such as 'Europe/Berlin' or a "
            "member of headrace.pipeline.core.schedule.TimeZone"
        ) from exc


def windows_zone_names() -> list[str]:
    """Every Windows time zone name ``zone_of`` knows (v1's ``TimeZone`` values)."""
    return sorted({*win_tz, *EXTRA_WINDOWS_ZONES})


class Recurrence(BaseModel):
    """When a schedule fires: every ``interval`` ``frequency`` from ``start_time``.

    ``hours``/``minutes`` (or ``time_of_day``, "HH:MM") pick the times of day of a Day or Week
    recurrence and ``week_days`` the days of a Week one; without them the time of day and week
    day are those of ``start_time``. A naive ``start_time`` is read in ``time_zone``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    frequency: Literal["Minute", "Hour", "Day", "Week", "Month"]
    interval: int = Field(ge=1, le=1000)
    start_time: datetime | None = None
    time_zone: str | None = Field(default=None, max_length=100)
    hours: list[int] | None = Field(default=None, min_length=1, max_length=24)
    minutes: list[int] | None = Field(default=None, min_length=1, max_length=60)
    week_days: list[Literal[WEEK_DAYS]] | None = Field(  # type: ignore[valid-type]
        default=None, min_length=1, max_length=7
    )
    time_of_day: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and not all(0 <= h <= 23 for h in v):
            raise ValueError(f"hours must be between 0 and 23, got {v}")
        return sorted(set(v)) if v is not None else None

    @field_validator("minutes")
    @classmethod
    def _minutes(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and not all(0 <= m <= 59 for m in v):
            raise ValueError(f"minutes must be between 0 and 59, got {v}")
        return sorted(set(v)) if v is not None else None

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        zone_of(v)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        timed = self.hours is not None or self.minutes is not None
        if (timed or self.time_of_day) and self.frequency not in ("Day", "Week"):
            raise ValueError(
                "hours, minutes and time_of_day apply to frequency 'Day' or 'Week' only; "
                f"a {self.frequency!r} recurrence fires every {self.interval} "
                f"{self.frequency.lower()}(s) from start_time"
            )
        if timed and self.time_of_day:
            raise ValueError("give either hours/minutes or time_of_day, not both")
        if self.week_days is not None and self.frequency != "Week":
            raise ValueError("week_days applies to frequency 'Week' only")
        return self

    # -- arithmetic ---------------------------------------------------------------------

    @cached_property
    def zone(self) -> ZoneInfo:
        return zone_of(self.time_zone)

    def anchor(self, created_at: datetime) -> datetime:
        """The first instant the recurrence counts from: ``start_time``, else creation."""
        start = self.start_time or created_at
        if start.tzinfo is None:
            start = start.replace(tzinfo=self.zone)
        return start.astimezone(UTC)

    def next_after(self, after: datetime, created_at: datetime) -> datetime | None:
        """The first due instant strictly after ``after`` (UTC), or None if there is none
        within the horizon (which only a recurrence that can never fire reaches)."""
        anchor = self.anchor(created_at)
        floor = max(after, anchor - timedelta(microseconds=1))
        if self.frequency in ("Minute", "Hour"):
            step = timedelta(minutes=self.interval) * (60 if self.frequency == "Hour" else 1)
            n = max(0, (floor - anchor) // step + 1)
            return anchor + n * step
        local_anchor = anchor.astimezone(self.zone)
        first = self._period_index(local_anchor, floor.astimezone(self.zone)) - 1
        for k in range(max(0, first), max(0, first) + _HORIZON):
            for due in self._in_period(local_anchor, k):
                if due > floor:
                    return due
        return None

    def _period_index(self, anchor: datetime, at: datetime) -> int:
        """Which period (0 = the anchor's) the local time ``at`` falls in."""
        if self.frequency == "Day":
            return (at.date() - anchor.date()).days // self.interval
        if self.frequency == "Week":
            monday = anchor.date() - timedelta(days=anchor.weekday())
            return (at.date() - monday).days // (7 * self.interval)
        months = (at.year - anchor.year) * 12 + at.month - anchor.month
        return months // self.interval

    def _times(self, anchor: datetime) -> list[time]:
        if self.time_of_day is not None:
            h, m = (int(x) for x in self.time_of_day.split(":"))
            return [time(h, m)]
        if self.hours is None and self.minutes is None:
            return [anchor.time().replace(tzinfo=None)]
        hours = self.hours if self.hours is not None else [anchor.hour]
        minutes = self.minutes if self.minutes is not None else [0]
        return [time(h, m) for h, m in product(hours, minutes)]

    def _days(self, anchor: datetime, k: int) -> list[date]:
        if self.frequency == "Day":
            return [anchor.date() + timedelta(days=k * self.interval)]
        if self.frequency == "Week":
            monday = (
                anchor.date()
                - timedelta(days=anchor.weekday())
                + timedelta(weeks=k * self.interval)
            )
            days = self.week_days or [WEEK_DAYS[anchor.weekday()]]
            return [monday + timedelta(days=WEEK_DAYS.index(d)) for d in days]
        months = anchor.month - 1 + k * self.interval
        year, month = anchor.year + months // 12, months % 12 + 1
        return [date(year, month, min(anchor.day, calendar.monthrange(year, month)[1]))]

    def _in_period(self, anchor: datetime, k: int) -> list[datetime]:
        """The due instants of period ``k``, sorted, each once."""
        times = self._times(anchor) if self.frequency != "Month" else [anchor.time()]
        instants = {
            datetime.combine(d, t.replace(tzinfo=None), tzinfo=self.zone).astimezone(UTC)
            for d in self._days(anchor, k)
            for t in times
        }
        return sorted(instants)

    def describe(self) -> str:
        """One line for people: "every 2 Day(s) at 22:30 (UTC)"."""
        at = ""
        if self.time_of_day or self.hours or self.minutes:
            at = " at " + ", ".join(t.strftime("%H:%M") for t in self._times(datetime.now(UTC)))
        on = f" on {', '.join(self.week_days)}" if self.week_days else ""
        return f"every {self.interval} {self.frequency}(s){on}{at} ({self.zone.key})"
