"""Crontab text with classic numbering (0 and 7 = Sunday), checked against an independent
implementation of classic cron (croniter), and triggers described in words."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from croniter import croniter

from django_clockwork import api
from django_clockwork.crontab import crontab_fields
from django_clockwork.describe import describe
from django_clockwork.exceptions import InvalidJobError
from django_clockwork.models import Job
from django_clockwork.serialization import trigger_to_json
from django_clockwork.triggers import build_trigger

UTC = ZoneInfo("UTC")
START = datetime(2030, 1, 1, tzinfo=UTC)  # a Tuesday


def fire_times(trigger: CronTrigger, count: int) -> list[datetime]:
    times, previous, now = [], None, START
    for _ in range(count):
        previous = trigger.get_next_fire_time(previous, now)
        assert previous is not None
        times.append(previous)
        now = previous + timedelta(microseconds=1)
    return times


def cron_times(text: str, count: int) -> list[datetime]:
    """Classic cron's fire times at or after START (croniter starts strictly after)."""
    walker = croniter(text, START - timedelta(seconds=1))
    return [walker.get_next(datetime) for _ in range(count)]


def test_weekdays_one_to_five_are_monday_to_friday() -> None:
    trigger = build_trigger(None, {"crontab": "0 9 * * 1-5"}, "UTC")
    assert {t.strftime("%a") for t in fire_times(trigger, 10)} == {
        "Mon",
        "Tue",
        "Wed",
        "Thu",
        "Fri",
    }
    # What APScheduler's own from_crontab makes of the same text: Tuesday to Saturday.
    upstream = CronTrigger.from_crontab("0 9 * * 1-5", timezone="UTC")
    assert "Sat" in {t.strftime("%a") for t in fire_times(upstream, 10)}


@pytest.mark.parametrize(
    ("text", "day_of_week"),
    [
        ("0 9 * * 1-5", "mon-fri"),
        ("0 9 * * 0", "sun"),
        ("0 9 * * 7", "sun"),
        ("0 9 * * 0,7", "sun"),
        ("0 9 * * 0-3", "mon-wed,sun"),
        ("0 9 * * 5-7", "fri-sun"),
        ("0 9 * * */2", "tue,thu,sat,sun"),
        ("0 9 * * sat,sun", "sat,sun"),
        ("0 9 * * MON-FRI", "mon-fri"),
        ("0 9 * * *", "*"),
        ("0 9 * * 0-6", "*"),
    ],
)
def test_weekdays_are_stored_as_names(text: str, day_of_week: str) -> None:
    assert crontab_fields(text)["day_of_week"] == day_of_week


@pytest.mark.parametrize(
    ("macro", "text"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_macros(macro: str, text: str) -> None:
    assert crontab_fields(macro) == crontab_fields(text)


def random_field(rng: random.Random, low: int, high: int) -> str:
    shape = rng.choice(["*", "n", "range", "step", "rangestep", "list"])
    a, b = sorted(rng.sample(range(low, high + 1), 2))
    return {
        "*": "*",
        "n": str(a),
        "range": f"{a}-{b}",
        "step": f"*/{rng.randint(2, 5)}",
        "rangestep": f"{a}-{b}/{rng.randint(2, 3)}",
        "list": f"{a},{b}",
    }[shape]


def test_fire_times_agree_with_classic_cron_on_random_expressions() -> None:
    rng = random.Random(20261201)
    checked = 0
    while checked < 300:
        fields = [
            random_field(rng, 0, 59),
            random_field(rng, 0, 23),
            random_field(rng, 1, 28),
            random_field(rng, 1, 12),
            random_field(rng, 0, 7),
        ]
        if fields[2] != "*" and fields[4] != "*":
            fields[rng.choice([2, 4])] = "*"
        if fields[2].startswith("*") is False and fields[4].startswith("*") is False:
            continue
        text = " ".join(fields)
        trigger = build_trigger(None, {"crontab": text}, "UTC")
        assert fire_times(trigger, 12) == cron_times(text, 12), text
        checked += 1


def test_fire_times_in_a_zone_with_dst() -> None:
    text = "30 2 * * 0"
    trigger = build_trigger(None, {"crontab": text, "timezone": "Europe/Berlin"}, "UTC")
    assert [t.strftime("%a %H:%M") for t in fire_times(trigger, 3)] == ["Sun 02:30"] * 3


def test_both_day_fields_restricted_is_refused_with_both_ways_to_say_it() -> None:
    with pytest.raises(InvalidJobError) as error:
        crontab_fields("0 9 13 * 5")
    message = str(error.value)
    assert "EITHER" in message
    assert "BOTH" in message
    assert "crontab='0 9 13 * *'" in message
    assert "crontab='0 9 * * 5'" in message
    assert "day_of_week='fri'" in message


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("* * * *", "has 4 field(s); it needs 5"),
        ("0 9 * * 1-5 2030", "has 6 field(s)"),
        ("61 * * * *", "minute '61': 61 is outside 0-59"),
        ("0 24 * * *", "hour '24': 24 is outside 0-23"),
        ("0 0 0 * *", "day of month '0': 0 is outside 1-31"),
        ("0 0 * 13 *", "month '13': 13 is outside 1-12"),
        ("0 0 * * 8", "day of week '8': 8 is outside 0-7"),
        ("0 0 * * funday", "day of week 'funday': expected a number 0-7 or a name"),
        ("*/0 * * * *", "a step must be a whole number above 0"),
        ("0 9 5-1 * *", "a range must go upwards"),
        ("@reboot", "unknown macro"),
        ("", "has 0 field(s)"),
    ],
)
def test_bad_crontab_text_is_refused_clearly(text: str, error: str) -> None:
    with pytest.raises(InvalidJobError, match=error.replace("(", r"\(").replace(")", r"\)")):
        crontab_fields(text)


def test_crontab_goes_with_its_companions_only() -> None:
    with pytest.raises(InvalidJobError, match="cannot be given with trigger 'interval'"):
        build_trigger("interval", {"crontab": "* * * * *"}, "UTC")
    with pytest.raises(InvalidJobError, match=r"\['hour'\] cannot be given with it"):
        build_trigger(None, {"crontab": "* * * * *", "hour": 3}, "UTC")
    with pytest.raises(InvalidJobError, match="must be a string"):
        build_trigger(None, {"crontab": 5}, "UTC")


@pytest.mark.django_db
def test_api_stores_crontab_as_cron_json_with_weekday_names() -> None:
    job = api.add_job(
        "tests.jobs:noop", crontab="0 9 * * 1-5", timezone="Europe/Paris", id="report"
    )
    stored = Job.objects.get(id="report").trigger
    assert (stored["type"], stored["day_of_week"], stored["hour"], stored["minute"]) == (
        "cron",
        "mon-fri",
        "9",
        "0",
    )
    assert stored["timezone"] == "Europe/Paris"
    assert job.description == "At 09:00, Monday through Friday (Europe/Paris)"
    assert job.next_run_time is not None
    assert job.next_run_time.astimezone(ZoneInfo("Europe/Paris")).strftime("%a") in {
        "Mon",
        "Tue",
        "Wed",
        "Thu",
        "Fri",
    }
    again = api.reschedule_job("report", crontab="*/10 * * * *")
    assert again.description == "Every 10 minutes (UTC)"
    with pytest.raises(InvalidJobError, match="EITHER"):
        api.reschedule_job("report", crontab="0 9 1 * 1")
    assert Job.objects.get(id="report").trigger["minute"] == "*/10"


@pytest.mark.parametrize(
    ("trigger", "kwargs", "words"),
    [
        (
            "cron",
            {"crontab": "0 9 * * 1-5", "timezone": "Europe/Paris"},
            "At 09:00, Monday through Friday (Europe/Paris)",
        ),
        (
            "cron",
            {"day_of_week": "sat,sun", "hour": 7, "minute": 30},
            "At 07:30, only on Saturday and Sunday (UTC)",
        ),
        ("cron", {"second": "*/30"}, "Every 30 seconds (UTC)"),
        ("cron", {"day": "last", "hour": 3}, "At 03:00, on the last day of the month (UTC)"),
        (
            "cron",
            {"day": "last fri", "hour": 3},
            "Cron: day=last fri, hour=3, minute=0, second=0 (UTC)",
        ),
        ("cron", {"week": "1-10", "hour": 3}, "Cron: week=1-10, hour=3, minute=0, second=0 (UTC)"),
        ("interval", {"minutes": 10}, "Every 10 minutes"),
        ("interval", {"hours": 1}, "Every hour"),
        ("interval", {"hours": 1, "minutes": 30}, "Every 1 hour and 30 minutes"),
        ("interval", {"days": 2, "seconds": 5}, "Every 2 days and 5 seconds"),
        ("interval", {"seconds": 0.5}, "Every 0.5 seconds"),
        (
            "date",
            {"run_date": "2030-06-01 09:00:00", "timezone": "Europe/Paris"},
            "Once, at 2030-06-01 09:00:00 (Europe/Paris)",
        ),
        (
            "calendarinterval",
            {"months": 1, "hour": 9, "start_date": "2030-01-31"},
            "Every 1 month, at 09:00:00 (UTC), from 2030-01-31",
        ),
        ("cron", {"hour": 3, "jitter": 30}, "At 03:00 (UTC), up to 30 s later at random (jitter)"),
    ],
)
def test_descriptions(trigger: str, kwargs: dict[str, object], words: str) -> None:
    assert describe(trigger_to_json(build_trigger(trigger, kwargs, "UTC"))) == words


def test_combined_and_unreadable_descriptions() -> None:
    either = {
        "type": "or",
        "triggers": [
            trigger_to_json(build_trigger(None, {"crontab": "0 9 13 * *"}, "UTC")),
            trigger_to_json(build_trigger(None, {"crontab": "0 9 * * 5"}, "UTC")),
        ],
    }
    assert describe(either) == (
        "Any of: At 09:00, on day 13 of the month (UTC); At 09:00, only on Friday (UTC)"
    )
    assert describe("nonsense") == "unreadable trigger"
    assert describe({"type": "fortnightly"}) == "unknown trigger type 'fortnightly'"
