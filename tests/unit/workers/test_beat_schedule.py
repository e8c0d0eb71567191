"""Beat's schedule from protocols: cron read in the protocol's time zone, env override."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from celery.schedules import schedule

from workers.celery_app import app
from workers.schedule import ScheduleError, ZonedCrontab, build_schedule, parse_override

NY = ZoneInfo("America/New_York")
PROTOCOL = {"schedule": {"cron": "0 3 * * 1", "timezone": "America/New_York"}}


def zoned(expr: str, zone: str, now: dt.datetime) -> ZonedCrontab:
    entry = ZonedCrontab(expr, zone)
    entry.nowfun = lambda: now
    entry.app = app
    return entry


def test_monday_3am_new_york_is_due_at_the_right_utc_instant() -> None:
    # Monday 2026-11-23 03:00 EST == 08:00 UTC; last run the Monday before.
    last = dt.datetime(2026, 11, 16, 8, 0, tzinfo=dt.UTC)
    before = zoned("0 3 * * 1", "America/New_York", dt.datetime(2026, 11, 23, 7, 59, tzinfo=dt.UTC))
    due, wait = before.is_due(last)
    assert not due and 55 <= wait <= 65
    after = zoned(
        "0 3 * * 1", "America/New_York", dt.datetime(2026, 11, 23, 8, 0, 5, tzinfo=dt.UTC)
    )
    due, wait = after.is_due(last)
    assert due
    assert abs(wait - 7 * 86400) < 60  # next Monday


def test_summer_time_shifts_the_utc_hour() -> None:
    # 2026-07-06 is a Monday; 03:00 EDT == 07:00 UTC.
    last = dt.datetime(2026, 6, 29, 7, 0, tzinfo=dt.UTC)
    entry = zoned("0 3 * * 1", "America/New_York", dt.datetime(2026, 7, 6, 6, 30, tzinfo=dt.UTC))
    due, wait = entry.is_due(last)
    assert not due and 1790 <= wait <= 1810


def test_override_all_and_per_review() -> None:
    assert parse_override(None) == {}
    assert parse_override("30 2 * * *") == {"*": "30 2 * * *"}
    assert parse_override("a=*/5 * * * *; b=600") == {"a": "*/5 * * * *", "b": "600"}
    with pytest.raises(ScheduleError, match="no schedule after 'a'"):
        parse_override("a=")


def test_build_schedule_uses_protocol_then_override() -> None:
    reviews = [(1, "ldh", PROTOCOL), (2, "other", {})]
    entries = build_schedule(reviews, None)
    ldh = entries["update:ldh"]
    assert ldh["task"] == "living_review.scheduled_update" and ldh["args"] == (1,)
    assert isinstance(ldh["schedule"], ZonedCrontab)
    assert ldh["schedule"].tz == NY and ldh["schedule"].hour == {3}
    assert entries["update:other"]["schedule"].tz == ZoneInfo("UTC")
    assert "send-digests" in entries
    over = build_schedule(reviews, "ldh=45;*/10 * * * *")
    assert isinstance(over["update:ldh"]["schedule"], schedule)
    assert over["update:ldh"]["schedule"].run_every == dt.timedelta(seconds=45)
    assert over["update:other"]["schedule"].minute == set(range(0, 60, 10))


def test_bad_cron_or_zone_is_named() -> None:
    with pytest.raises(ScheduleError, match="5 fields"):
        ZonedCrontab("0 3 * *", "UTC")
    with pytest.raises(ScheduleError, match="unknown time zone 'Mars/Base'"):
        ZonedCrontab("0 3 * * 1", "Mars/Base")
    with pytest.raises(ScheduleError, match="cron '99 3"):
        ZonedCrontab("99 3 * * 1", "UTC")
