"""Bad input gets a clear error and loses nothing."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.triggers.cron import CronTrigger

from django_clockwork import SerializationError, api
from django_clockwork.exceptions import InvalidJobError
from django_clockwork.models import Job
from django_clockwork.serialization import trigger_from_json

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("trigger", "trigger_args", "message"),
    [
        ("cron", {"minute": "99"}, "higher than the maximum value (59)"),
        ("cron", {"day_of_week": "funday"}, "Invalid weekday name"),
        ("interval", {"seconds": -5}, "an interval must be at least 0.1 seconds, not -5"),
        ("interval", {"seconds": 1e-6}, "an interval must be at least 0.1 seconds, not 1e-06"),
        ("date", {"run_date": "not a date"}, "Invalid date string"),
        ("cron", {"timezone": "Mars/Olympus_Mons"}, "Mars/Olympus_Mons"),
        ("fortnightly", {}, "fortnightly"),
    ],
)
def test_invalid_trigger_arguments(trigger, trigger_args, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises((ValueError, LookupError, TypeError)) as info:
        api.add_job("tests.jobs:noop", trigger, id="bad", **trigger_args)
    if message:
        assert message in str(info.value)
    assert not Job.objects.exists()


def test_invalid_crontab_text() -> None:
    with pytest.raises(ValueError, match="Wrong number of fields"):
        api.add_job("tests.jobs:noop", CronTrigger.from_crontab("* * *"), id="bad")
    assert not Job.objects.exists()


def test_function_reference_that_does_not_import() -> None:
    with pytest.raises(InvalidJobError, match="could not import module"):
        api.add_job("tests.no_such_module:noop", "interval", seconds=5, id="bad")
    with pytest.raises(InvalidJobError, match="has no 'no_such_function'"):
        api.add_job("tests.jobs:no_such_function", "interval", seconds=5, id="bad")
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("args", "kwargs", "where"),
    [
        ([datetime(2030, 1, 1, tzinfo=timezone.utc)], {}, "args[0] is a datetime"),
        ([], {"when": {1, 2}}, "kwargs['when'] is a set"),
        ([[1, (2, 3)]], {}, "args[0][1] is a tuple"),
        ([], {"ids": {1: "a"}}, "kwargs['ids'] has the key 1"),
        ([math.nan], {}, "args[0] is nan"),
        ([], {"blob": b"bytes"}, "kwargs['blob'] is a bytes"),
    ],
)
def test_arguments_json_cannot_hold(args, kwargs, where) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SerializationError) as info:
        api.add_job("tests.jobs:echo", "interval", seconds=5, id="bad", args=args, kwargs=kwargs)
    assert where in str(info.value)
    assert "Job 'bad'" in str(info.value)
    assert not Job.objects.exists()


def test_bound_method_refused() -> None:
    from tests.jobs import Greeter

    with pytest.raises(InvalidJobError, match="bound method"):
        api.add_job(Greeter().greet, "interval", seconds=5, id="bad")
    assert not Job.objects.exists()


def test_existing_id_is_refused_and_kept() -> None:
    api.add_job("tests.jobs:noop", "interval", seconds=5, id="same", name="first")
    with pytest.raises(ConflictingIdError):
        api.add_job("tests.jobs:fail", "interval", seconds=9, id="same", name="second")
    row = Job.objects.get(id="same")
    assert (row.name, row.func) == ("first", "tests.jobs:noop")


def test_replace_existing_replaces() -> None:
    api.add_job("tests.jobs:noop", "interval", seconds=5, id="same", name="first")
    api.add_job(
        "tests.jobs:fail", "interval", seconds=9, id="same", name="second", replace_existing=True
    )
    row = Job.objects.get(id="same")
    assert (row.name, row.func, row.trigger["seconds"]) == ("second", "tests.jobs:fail", 9)


def test_replace_existing_answers_with_the_stored_job() -> None:
    first = api.add_job("tests.jobs:noop", "cron", minute="*/5", id="same", timezone="UTC")
    kept = first.next_run_time - timedelta(minutes=5)  # a run the schedulers have not fired yet
    Job.objects.filter(id="same").update(next_run_time=kept)
    again = api.add_job(
        "tests.jobs:noop", "cron", minute="*/5", id="same", timezone="UTC", replace_existing=True
    )
    assert again.next_run_time == kept == Job.objects.get(id="same").next_run_time


def test_bad_replacement_leaves_row_untouched() -> None:
    api.add_job("tests.jobs:echo", "interval", seconds=5, id="same", args=[1])
    with pytest.raises(SerializationError):
        api.add_job(
            "tests.jobs:echo",
            "interval",
            seconds=5,
            id="same",
            args=[object()],
            replace_existing=True,
        )
    assert Job.objects.get(id="same").args == [1]


def test_changes_to_missing_jobs() -> None:
    for change in (api.pause_job, api.resume_job, api.remove_job):
        with pytest.raises(JobLookupError):
            change("ghost")


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"type": "cron", "minute": "*/0"},
        {"type": "cron", "minute": "5", "colour": "red"},
        {"type": "interval"},
        {"type": "interval", "seconds": "ten"},
        {"type": "date", "run_date": "2030-01-01T00:00:00"},
        {"type": "date", "run_date": "yesterday"},
        {"type": "and", "triggers": []},
        {"type": "calendarinterval", "months": -1},
        {"type": "cron", "timezone": "Nowhere/Special"},
        {"type": "cron", "jitter": "lots"},
    ],
)
def test_hand_edited_trigger_json_is_rejected_clearly(data) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SerializationError):
        trigger_from_json(data)
