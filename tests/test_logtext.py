"""Times in log lines: the scheduler's zone, APScheduler's format."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from django.test import override_settings

from django_clockwork.logtext import ZoneFormatter, format_job, format_time, format_times, user

BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc(2026, 1, 15, 12, 0), "2026-01-15 13:00:00 CET"),
        (utc(2026, 7, 15, 12, 0), "2026-07-15 14:00:00 CEST"),
        # The spring-forward gap: 01:00 UTC is 03:00 CEST, 02:xx never shows.
        (utc(2026, 3, 29, 0, 59, 59), "2026-03-29 01:59:59 CET"),
        (utc(2026, 3, 29, 1, 0), "2026-03-29 03:00:00 CEST"),
        # The fall-back fold: two 02:30s, told apart by the abbreviation.
        (utc(2026, 10, 25, 0, 30), "2026-10-25 02:30:00 CEST"),
        (utc(2026, 10, 25, 1, 30), "2026-10-25 02:30:00 CET"),
        # A time already in another zone is converted, not just relabelled.
        (
            datetime(2026, 1, 15, 7, 0, tzinfo=ZoneInfo("America/New_York")),
            "2026-01-15 13:00:00 CET",
        ),
    ],
)
def test_times_are_shown_in_the_given_zone(moment: datetime, expected: str) -> None:
    assert format_time(moment, BERLIN) == expected


def test_zone_without_abbreviation_shows_its_offset() -> None:
    assert format_time(utc(2026, 1, 15, 12), ZoneInfo("America/Sao_Paulo")) == (
        "2026-01-15 09:00:00 -03"
    )


def test_default_zone_is_the_clockwork_timezone_setting() -> None:
    with override_settings(CLOCKWORK={"TIMEZONE": "Asia/Kolkata"}, TIME_ZONE="Europe/Berlin"):
        assert format_time(utc(2026, 1, 15, 12)) == "2026-01-15 17:30:00 IST"


def test_default_zone_falls_back_to_time_zone() -> None:
    with override_settings(CLOCKWORK={}, TIME_ZONE="Europe/Berlin"):
        assert format_time(utc(2026, 1, 15, 12)) == "2026-01-15 13:00:00 CET"
    with override_settings(CLOCKWORK={}, TIME_ZONE="UTC"):
        assert format_time(utc(2026, 1, 15, 12)) == "2026-01-15 12:00:00 UTC"


def test_invalid_settings_give_utc_instead_of_a_logging_error() -> None:
    with override_settings(CLOCKWORK={"TIMEZONE": "Mars/Base"}, TIME_ZONE="Europe/Berlin"):
        assert format_time(utc(2026, 1, 15, 12)) == "2026-01-15 12:00:00 UTC"


def test_none_and_naive_times_are_marked() -> None:
    assert format_time(None, BERLIN) == "None"
    assert format_time(datetime(2026, 1, 15, 12), BERLIN) == "2026-01-15 12:00:00 (naive)"


def test_several_times() -> None:
    moments = [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)]
    assert format_times(moments, BERLIN) == "2026-10-25 02:30:00 CEST, 2026-10-25 02:30:00 CET"
    assert format_times([], BERLIN) == ""


def test_a_job_reads_like_apschedulers_with_its_next_run_in_the_zone() -> None:
    trigger = IntervalTrigger(minutes=15, timezone="UTC")
    job = SimpleNamespace(name="digest", trigger=trigger, next_run_time=utc(2026, 3, 29, 1, 30))
    paused = SimpleNamespace(name="digest", trigger=trigger, next_run_time=None)

    assert format_job(job, BERLIN) == (
        "digest (trigger: interval[0:15:00], next run at: 2026-03-29 03:30:00 CEST)"
    )
    assert format_job(paused, BERLIN) == "digest (trigger: interval[0:15:00], next run at: paused)"


def test_formatter_stamps_lines_in_the_scheduler_zone() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    record.created = utc(2026, 10, 25, 1, 30, 5).timestamp() + 0.25
    record.msecs = 250.0
    formatter = ZoneFormatter("%(asctime)s %(message)s")

    with override_settings(CLOCKWORK={}, TIME_ZONE="Europe/Berlin"):
        assert formatter.format(record) == "2026-10-25 02:30:05,250 CET hello"
    with override_settings(CLOCKWORK={"TIMEZONE": "UTC"}, TIME_ZONE="Europe/Berlin"):
        assert formatter.format(record) == "2026-10-25 01:30:05,250 UTC hello"
    with override_settings(CLOCKWORK={}, TIME_ZONE="Europe/Berlin"):
        assert ZoneFormatter("%(asctime)s", datefmt="%H:%M %z").format(record) == "02:30 +0100"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("digest", "digest"),
        ("a\nFAKE LINE", "a\\nFAKE LINE"),
        ("cr\rtab\tnul\x00", "cr\\rtab\\tnul\\x00"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("line\u2028sep", "line\\u2028sep"),
        ("C:\\dir 'q' \"d\" caf\u00e9", "C:\\dir 'q' \"d\" caf\u00e9"),
        (ValueError("x\ny"), "x\\ny"),
    ],
)
def test_user_text_escapes_what_would_break_the_line(text: object, expected: str) -> None:
    assert user(text) == expected
    assert len(user(text).splitlines()) <= 1


def test_a_job_name_and_trigger_are_user_text() -> None:
    job = SimpleNamespace(name="a\nFAKE", trigger="t\r", next_run_time=None)
    assert format_job(job, BERLIN) == "a\\nFAKE (trigger: t\\r, next run at: paused)"


def test_formatter_indents_every_line_of_a_traceback() -> None:
    try:
        raise ValueError("boom\n2026-10-25 02:30:05,250 CET ERROR forged")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "hi", None, sys.exc_info())
    with override_settings(CLOCKWORK={"TIMEZONE": "UTC"}):
        first, *rest = ZoneFormatter("%(asctime)s %(message)s").format(record).splitlines()
    assert first.endswith(" hi")
    assert rest[0] == "    Traceback (most recent call last):"
    assert rest[-1] == "    2026-10-25 02:30:05,250 CET ERROR forged"
    assert all(line.startswith("    ") for line in rest)
