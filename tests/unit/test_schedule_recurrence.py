"""Recurrence arithmetic: when a schedule is due, in its time zone, across daylight saving."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from contracts.schedule import Recurrence, windows_zone_names, zone_of
from headrace.pipeline.core.schedule import ScheduleRecurrence, TimeZone

CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def dues(r: Recurrence, after: datetime, n: int) -> list[datetime]:
    out = []
    for _ in range(n):
        nxt = r.next_after(after, CREATED)
        assert nxt is not None
        out.append(nxt)
        after = nxt
    return out


def local(r: Recurrence, values: list[datetime]) -> list[str]:
    return [v.astimezone(r.zone).strftime("%Y-%m-%d %H:%M %Z") for v in values]


def test_every_other_day_at_half_past_ten_from_creation() -> None:
    """The notebook's "every other day at 22:30" counts days from creation, at 22:30 UTC."""
    r = Recurrence(frequency="Day", interval=2, hours=[22], minutes=[30])
    assert local(r, dues(r, CREATED, 3)) == [
        "2026-01-01 22:30 UTC",
        "2026-01-03 22:30 UTC",
        "2026-01-05 22:30 UTC",
    ]


def test_daily_wall_clock_time_survives_both_dst_changes_in_new_york() -> None:
    """09:00 New York time stays 09:00 local: 14:00 UTC in winter, 13:00 UTC in summer."""
    r = Recurrence(
        frequency="Day",
        interval=1,
        time_of_day="09:00",
        time_zone="America/New_York",
        start_time=datetime(2026, 3, 6),
    )
    got = dues(r, datetime(2026, 3, 6, tzinfo=UTC), 3)
    assert [g.hour for g in got] == [14, 14, 13]  # 6, 7 March EST; 8 March EDT
    autumn = dues(r, datetime(2026, 10, 31, 12, tzinfo=UTC), 2)
    assert [g.hour for g in autumn] == [13, 14]  # 31 Oct EDT... 1 Nov EST


def test_a_time_skipped_by_spring_forward_fires_once_an_hour_later() -> None:
    """02:30 does not exist on 8 March 2026 in New York: it fires once, at 03:30 EDT."""
    r = Recurrence(
        frequency="Day",
        interval=1,
        hours=[2],
        minutes=[30],
        time_zone="America/New_York",
        start_time=datetime(2026, 3, 1),
    )
    got = dues(r, datetime(2026, 3, 7, 12, tzinfo=UTC), 3)
    assert local(r, got) == [
        "2026-03-08 03:30 EDT",
        "2026-03-09 02:30 EDT",
        "2026-03-10 02:30 EDT",
    ]


def test_a_time_repeated_by_fall_back_fires_once() -> None:
    """02:30 happens twice on 25 October 2026 in Berlin (a Windows zone name): one firing,
    at the first."""
    r = Recurrence(
        frequency="Day",
        interval=1,
        time_of_day="02:30",
        time_zone="W. Europe Standard Time",
        start_time=datetime(2026, 10, 1),
    )
    got = dues(r, datetime(2026, 10, 24, 12, tzinfo=UTC), 2)
    assert local(r, got) == ["2026-10-25 02:30 CEST", "2026-10-26 02:30 CET"]
    assert got[1] - got[0] == timedelta(hours=25)


def test_hourly_counts_elapsed_time_across_dst() -> None:
    """ "Every 2 hours" stays 2 hours apart when the clock jumps."""
    r = Recurrence(
        frequency="Hour",
        interval=2,
        time_zone="Europe/Berlin",
        start_time=datetime(2026, 3, 28, 23, 0),
    )
    got = dues(r, datetime(2026, 3, 28, 12, tzinfo=UTC), 4)
    assert [b - a for a, b in itertools.pairwise(got)] == [timedelta(hours=2)] * 3


def test_weekly_on_given_days_and_monthly_clamped_to_month_end() -> None:
    """Week recurrences fire on their week days; a month without day 31 fires on its last."""
    w = Recurrence(
        frequency="Week",
        interval=2,
        week_days=["Monday", "Friday"],
        time_of_day="09:15",
        start_time=datetime(2026, 3, 2, tzinfo=UTC),
    )
    assert [d.strftime("%a %d") for d in dues(w, CREATED, 4)] == [
        "Mon 02",
        "Fri 06",
        "Mon 16",
        "Fri 20",
    ]
    m = Recurrence(frequency="Month", interval=1, start_time=datetime(2026, 1, 31, 8, tzinfo=UTC))
    assert [d.strftime("%m-%d") for d in dues(m, CREATED, 4)] == [
        "01-31",
        "02-28",
        "03-31",
        "04-30",
    ]


def test_catch_up_jumps_to_the_first_due_time_after_now() -> None:
    """After a long gap the next due time is the first after *now*, not each missed one."""
    r = Recurrence(frequency="Minute", interval=15, start_time=datetime(2026, 1, 1, tzinfo=UTC))
    now = datetime(2026, 1, 1, 10, 7, tzinfo=UTC)
    assert r.next_after(now, CREATED) == datetime(2026, 1, 1, 10, 15, tzinfo=UTC)
    assert r.next_after(datetime(2025, 1, 1, tzinfo=UTC), CREATED) == r.anchor(CREATED)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"frequency": "Hour", "interval": 1, "hours": [3]}, "apply to frequency 'Day' or 'Week'"),
        ({"frequency": "Day", "interval": 1, "week_days": ["Monday"]}, "'Week' only"),
        ({"frequency": "Day", "interval": 1, "hours": [24]}, "between 0 and 23"),
        ({"frequency": "Day", "interval": 0}, "greater than or equal to 1"),
        ({"frequency": "Daily", "interval": 1}, "'Minute', 'Hour', 'Day', 'Week' or 'Month'"),
        ({"frequency": "Day", "interval": 1, "time_zone": "Mars/Olympus"}, "unknown time zone"),
        (
            {"frequency": "Day", "interval": 1, "hours": [1], "time_of_day": "01:00"},
            "either hours/minutes or time_of_day",
        ),
    ],
)
def test_bad_recurrences_say_what_is_wrong(fields: dict[str, object], fragment: str) -> None:
    """Each inconsistent recurrence is refused with a message naming the problem."""
    with pytest.raises(ValidationError, match=fragment):
        Recurrence.model_validate(fields)


def test_v1_schedule_recurrence_validates_and_takes_timezone_members() -> None:
    """The SDK class raises ValueError for bad input and accepts v1's TimeZone enum."""
    with pytest.raises(ValueError, match="invalid ScheduleRecurrence: hours"):
        ScheduleRecurrence(frequency="Day", interval=1, hours=[25])
    r = ScheduleRecurrence(
        frequency="Day", interval=1, hours=[8], time_zone=TimeZone.PacificStandardTime
    )
    assert r._model().zone.key == "America/Los_Angeles"
    assert TimeZone.AUSCentralStandardTime.value == "AUS Central Standard Time"
    assert all(zone_of(n) for n in windows_zone_names())


def test_timezone_enum_holds_every_known_windows_zone() -> None:
    """The SDK's TimeZone members are exactly the Windows names the arithmetic resolves."""
    assert sorted(z.value for z in TimeZone) == windows_zone_names()
