"""``django_clockwork.api``: snapshots in, documented exceptions out, no scheduler anywhere."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any, NoReturn

import pytest
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from django.db.models import F
from django.utils import timezone

from django_clockwork import api
from django_clockwork.api import ScheduledJob
from django_clockwork.exceptions import (
    ClockworkError,
    ConcurrentChangeError,
    InvalidJobError,
    JobExistsError,
    JobNotFoundError,
)
from django_clockwork.models import Job, JobExecution
from django_clockwork.runtime import Runtime

pytestmark = pytest.mark.django_db


def stored(job_id: str) -> dict[str, Any]:
    return dict(Job.objects.values().get(id=job_id))


def test_add_job_returns_a_frozen_snapshot_of_the_row() -> None:
    before = timezone.now()
    job = api.add_job("tests.jobs:noop", "interval", seconds=5, id="tick", name="Tick")
    assert isinstance(job, ScheduledJob)
    assert (job.id, job.name, job.func) == ("tick", "Tick", "tests.jobs:noop")
    assert job.trigger == stored("tick")["trigger"]
    assert (job.trigger["type"], job.trigger["seconds"]) == ("interval", 5)
    assert job.trigger_description == "interval[0:00:05]"
    assert job.next_run_time is not None
    assert job.next_run_time.utcoffset() == timedelta(0)
    assert before < job.next_run_time <= timezone.now() + timedelta(seconds=5)
    assert job.next_run_time == stored("tick")["next_run_time"]
    assert (job.paused, job.finished, job.source, job.load_error) == (False, False, "api", "")
    assert (job.args, job.kwargs, job.version) == ((), {}, 1)
    assert api.get_job("tick") == job
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.name = "changed"  # type: ignore[misc]


def test_add_job_defaults_id_and_name_and_takes_a_callable() -> None:
    from tests import jobs

    job = api.add_job(jobs.echo, "cron", hour=7, minute=30, args=[1], kwargs={"a": 2})
    assert len(job.id) == 32
    assert (job.name, job.func) == ("echo", "tests.jobs:echo")
    assert "hour='7', minute='30'" in job.trigger_description
    assert (job.args, job.kwargs) == ((1,), {"a": 2})


def test_trigger_description_is_apschedulers() -> None:
    job = api.add_job("tests.jobs:noop", "cron", hour=7, minute=30, timezone="UTC")
    assert job.trigger_description == (
        "cron[year='*', month='*', day='*', week='*', day_of_week='*', hour='7', minute='30', "
        "second='0']"
    )


def test_add_job_paused() -> None:
    job = api.add_job("tests.jobs:noop", "interval", seconds=5, id="later", next_run_time=None)
    assert (job.paused, job.next_run_time) == (True, None)


def test_life_cycle_through_the_returned_id() -> None:
    job = api.add_job("tests.jobs:echo", "interval", seconds=5, id="life")
    paused = api.pause_job(job.id)
    assert (paused.paused, paused.next_run_time, paused.version) == (True, None, 2)
    resumed = api.resume_job(job.id)
    assert (resumed.paused, resumed.version) == (False, 3)
    assert resumed.next_run_time is not None
    modified = api.modify_job(
        job.id, name="Renamed", args=[1], kwargs={"b": 2}, max_instances=3, coalesce=False
    )
    assert (modified.name, modified.args, modified.kwargs) == ("Renamed", (1,), {"b": 2})
    assert (modified.max_instances, modified.coalesce, modified.version) == (3, False, 4)
    assert modified.trigger == resumed.trigger
    rescheduled = api.reschedule_job(job.id, "cron", hour=7, minute=30)
    assert rescheduled.trigger["type"] == "cron"
    assert "hour='7', minute='30'" in rescheduled.trigger_description
    assert (rescheduled.name, rescheduled.version) == ("Renamed", 5)
    for snapshot in (paused, resumed, modified):
        assert snapshot != rescheduled  # snapshots do not follow the row
    assert api.get_job(job.id) == rescheduled
    api.remove_job(job.id)
    assert api.get_job(job.id) is None
    assert not Job.objects.exists()


def test_get_job_of_a_missing_id_is_none() -> None:
    assert api.get_job("ghost") is None


def test_get_jobs_lists_broken_rows_without_raising() -> None:
    api.add_job("tests.jobs:noop", "interval", seconds=5, id="good")
    trigger = stored("good")["trigger"]
    Job.objects.create(
        id="unloadable",
        func="tests.gone:noop",
        trigger=trigger,
        next_run_time=timezone.now() + timedelta(hours=1),
        load_error="could not import module 'tests.gone'",
    )
    Job.objects.create(id="bad-trigger", func="tests.jobs:noop", trigger={"type": "fortnightly"})
    Job.objects.create(id="not-json-object", func="tests.jobs:noop", trigger=[1, 2])
    jobs = {job.id: job for job in api.get_jobs()}
    assert list(jobs) == ["good", "unloadable", "bad-trigger", "not-json-object"]
    assert jobs["unloadable"].load_error == "could not import module 'tests.gone'"
    assert jobs["unloadable"].trigger_description == "interval[0:00:05]"
    assert jobs["bad-trigger"].trigger_description.startswith(
        "invalid trigger: unknown trigger type 'fortnightly'"
    )
    assert jobs["not-json-object"].trigger_description.startswith("invalid trigger:")
    assert jobs["bad-trigger"].paused
    assert api.get_job("bad-trigger") == jobs["bad-trigger"]


def test_reschedule_job_repairs_an_invalid_stored_trigger() -> None:
    Job.objects.create(id="bad-trigger", func="tests.jobs:noop", trigger={"type": "fortnightly"})
    with pytest.raises(InvalidJobError, match="give it a new one with reschedule_job"):
        api.resume_job("bad-trigger")
    job = api.reschedule_job("bad-trigger", "interval", seconds=5)
    assert job.trigger_description == "interval[0:00:05]"


# -- input errors ----------------------------------------------------------------------------


def test_dotted_function_path_is_accepted_as_a_reference() -> None:
    job = api.add_job("tests.jobs.noop", "interval", seconds=5, id="dotted")
    assert job.func == stored("dotted")["func"] == "tests.jobs:noop"
    assert api.modify_job("dotted", func="tests.jobs.fail").func == "tests.jobs:fail"


INTERVAL = {"trigger": "interval", "seconds": 5}
BAD_ADDS: list[tuple[str, dict[str, Any], str]] = [
    ("bare name", {"func": "noop"}, "expected 'package.module:function'"),
    ("kwargs list", {"kwargs": [1, 2]}, "kwargs must be a mapping of argument names to values"),
    ("kwargs str", {"kwargs": "a=1"}, "not str ('a=1')"),
    ("kwargs keys", {"kwargs": {1: "a"}}, "kwargs keys must be argument names"),
    ("args str", {"args": "abc"}, "args must be a list or tuple of positional arguments"),
    ("args dict", {"args": {"a": 1}}, "not dict ({'a': 1})"),
    ("id too long", {"id": "x" * 192}, "is 192 characters long; at most 191 fit"),
    ("id newline", {"id": "a\nb"}, "contains control or invisible characters"),
    ("id nul", {"id": "a\x00b"}, "contains control or invisible characters"),
    ("id empty", {"id": ""}, "A job id must be a non-empty string"),
    ("id not str", {"id": 7}, "A job id must be a non-empty string, not 7"),
    ("alias", {"trigger": "fortnightly"}, "Unknown trigger 'fortnightly': use one of 'date'"),
    ("cron args", {"trigger": "cron", "minute": "99"}, "Invalid cron trigger {'minute': '99'}"),
    ("cron arg name", {"trigger": "cron", "minutes": 5}, "Invalid cron trigger"),
    (
        "instance and args",
        {"trigger": CronTrigger(hour=1, timezone="UTC"), "minute": 5},
        "Trigger arguments ['minute'] were given with a trigger instance",
    ),
    ("not callable", {"func": "tests.jobs:os"}, "is not callable"),
    ("wrong arguments", {"func": "tests.jobs:noop", "args": [1]}, "Job 'bad'"),
]


@pytest.mark.parametrize(
    ("given", "message"), [case[1:] for case in BAD_ADDS], ids=[case[0] for case in BAD_ADDS]
)
def test_bad_input_is_refused_clearly_and_writes_nothing(
    given: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"func": "tests.jobs:noop", "id": "bad", **INTERVAL, **given}
    func, trigger = arguments.pop("func"), arguments.pop("trigger")
    if "seconds" in arguments and trigger != "interval":
        del arguments["seconds"]
    with pytest.raises(InvalidJobError) as info:
        api.add_job(func, trigger, **arguments)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ClockworkError)
    assert message in str(info.value)
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"colour": "red"}, "modify_job cannot change ['colour']"),
        ({"trigger": "cron"}, "(use reschedule_job for the trigger)"),
        ({"id": "new"}, "modify_job cannot change ['id']"),
        ({"func": "noop"}, "expected 'package.module:function'"),
        ({"args": "abc"}, "args must be a list or tuple"),
        ({"kwargs": ["a"]}, "kwargs must be a mapping"),
        ({"max_instances": 0}, "max_instances must be a positive integer"),
    ],
)
def test_bad_changes_are_refused_and_change_nothing(changes: dict[str, Any], message: str) -> None:
    api.add_job("tests.jobs:noop", "interval", seconds=5, id="kept")
    before = stored("kept")
    with pytest.raises(InvalidJobError) as info:
        api.modify_job("kept", **changes)
    assert message in str(info.value)
    assert stored("kept") == before


def test_bad_reschedule_changes_nothing() -> None:
    api.add_job("tests.jobs:noop", "interval", seconds=5, id="kept")
    before = stored("kept")
    with pytest.raises(InvalidJobError, match="Invalid cron trigger"):
        api.reschedule_job("kept", "cron", hour="25")
    with pytest.raises(InvalidJobError, match="Unknown trigger"):
        api.reschedule_job("kept", "weekly")
    assert stored("kept") == before


CHANGES: dict[str, Callable[[str], Any]] = {
    "modify_job": lambda job_id: api.modify_job(job_id, name="x"),
    "reschedule_job": lambda job_id: api.reschedule_job(job_id, "interval", seconds=5),
    "pause_job": api.pause_job,
    "resume_job": api.resume_job,
    "remove_job": api.remove_job,
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_change_of_a_missing_id_is_not_found(change: str) -> None:
    with pytest.raises(JobNotFoundError) as info:
        CHANGES[change]("ghost")
    assert isinstance(info.value, JobLookupError)
    assert info.value.job_id == "ghost"
    assert str(info.value) == "No job with the id 'ghost'."
    assert not Job.objects.exists()


def test_existing_id_is_refused_and_kept() -> None:
    first = api.add_job("tests.jobs:noop", "interval", seconds=5, id="same", name="first")
    with pytest.raises(JobExistsError) as info:
        api.add_job("tests.jobs:fail", "interval", seconds=9, id="same", name="second")
    assert isinstance(info.value, ConflictingIdError)
    assert "'same'" in str(info.value)
    assert "replace_existing=True" in str(info.value)
    assert api.get_job("same") == first


def test_replace_existing_replaces_and_returns_the_stored_job() -> None:
    api.add_job("tests.jobs:noop", "interval", seconds=5, id="same", name="first")
    again = api.add_job(
        "tests.jobs:fail", "cron", hour=3, id="same", name="second", replace_existing=True
    )
    assert (again.name, again.func, again.trigger["type"]) == ("second", "tests.jobs:fail", "cron")
    assert again.version > 1
    assert again == api.get_job("same")
    assert Job.objects.count() == 1


def test_bound_method_of_a_local_instance_is_refused() -> None:
    from tests.jobs import Greeter

    with pytest.raises(InvalidJobError, match="cannot be stored by reference") as info:
        api.add_job(Greeter().greet, "interval", seconds=5, id="bad")
    assert "method of a module-level instance" in str(info.value)
    assert not Job.objects.exists()


# -- no scheduler, concurrent writers ------------------------------------------------------


def test_api_never_builds_a_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError("the api built a scheduler")

    monkeypatch.setattr(Runtime, "__init__", refuse)
    monkeypatch.setattr(BaseScheduler, "__init__", refuse)
    job = api.add_job("tests.jobs:echo", "interval", seconds=5, id="solo")
    api.add_job("tests.jobs:echo", "interval", seconds=9, id="solo", replace_existing=True)
    assert api.get_job(job.id) is not None
    assert [j.id for j in api.get_jobs()] == ["solo"]
    api.pause_job(job.id)
    api.resume_job(job.id)
    api.modify_job(job.id, args=[1])
    api.reschedule_job(job.id, "cron", minute="*/5")
    api.remove_job(job.id)
    assert not Job.objects.exists()
    assert not JobExecution.objects.exists()


def test_row_changing_on_every_attempt_is_a_concurrent_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = api.add_job("tests.jobs:noop", "interval", seconds=5, id="busy")
    real_new_job = api._new_job

    def another_writer_wins(state: dict[str, Any]) -> Any:
        Job.objects.filter(id="busy").update(version=F("version") + 1)
        return real_new_job(state)

    monkeypatch.setattr(api, "_new_job", another_writer_wins)
    before = stored("busy")
    with pytest.raises(ConcurrentChangeError) as info:
        api.pause_job("busy")
    assert "'busy' changed 5 times" in str(info.value)
    assert "nothing was written" in str(info.value)
    after = stored("busy")
    assert after["version"] == job.version + api.WRITE_ATTEMPTS
    assert {**after, "version": before["version"]} == before  # only the other writer's bumps


def test_long_running_after_is_stored_changed_and_replaced() -> None:
    job = api.add_job("tests.jobs:noop", "interval", hours=1, id="lr", long_running_after=90)
    assert job.long_running_after == 90.0
    assert Job.objects.get(id="lr").long_running_after == 90.0
    changed = api.modify_job("lr", long_running_after=0.5, name="renamed")
    assert (changed.long_running_after, changed.name) == (0.5, "renamed")
    assert changed.version == job.version + 1
    assert api.modify_job("lr", max_instances=2).long_running_after == 0.5  # kept
    assert api.modify_job("lr", long_running_after=None).long_running_after is None
    api.modify_job("lr", long_running_after=30)
    replaced = api.add_job("tests.jobs:noop", "interval", hours=1, id="lr", replace_existing=True)
    assert replaced.long_running_after is None  # replaced: the setting's threshold again


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "60", True])
def test_long_running_after_must_be_positive_seconds_or_none(value: object) -> None:
    with pytest.raises(InvalidJobError, match="long_running_after must be a number of seconds"):
        api.add_job("tests.jobs:noop", "interval", hours=1, id="lr", long_running_after=value)
    assert not Job.objects.filter(id="lr").exists()
    api.add_job("tests.jobs:noop", "interval", hours=1, id="lr")
    with pytest.raises(InvalidJobError, match="long_running_after must be a number of seconds"):
        api.modify_job("lr", long_running_after=value)
    assert Job.objects.get(id="lr").long_running_after is None


def test_add_job_records_its_source() -> None:
    assert api.add_job("tests.jobs:noop", "interval", minutes=5, id="a").source == "api"
    added = api.add_job("tests.jobs:noop", "interval", minutes=5, id="b", source="admin")
    assert added.source == "admin"
    with pytest.raises(InvalidJobError, match="source must be"):
        api.add_job("tests.jobs:noop", "interval", minutes=5, id="c", source="code")
