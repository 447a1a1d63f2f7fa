"""APScheduler's generic job-store contract, as its own stores honour it."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError, TransientJobError
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from django_clockwork import DjangoJobStore
from django_clockwork.models import Job

from .conftest import MakeJob, utc

pytestmark = pytest.mark.django_db


def test_add_and_lookup_round_trip(store: DjangoJobStore, make_job: MakeJob) -> None:
    trigger = CronTrigger(hour="*/2", minute=15, timezone="Europe/Paris")
    job = make_job(
        "cron",
        func="tests.jobs:echo",
        trigger=trigger,
        args=(1, "two", [3.5, None]),
        kwargs={"nested": {"a": [True]}},
        misfire_grace_time=7,
        coalesce=False,
        max_instances=3,
    )
    store.add_job(job)
    loaded = store.lookup_job("cron")
    assert loaded is not None
    assert loaded.func_ref == "tests.jobs:echo"
    assert loaded.args == (1, "two", [3.5, None])
    assert loaded.kwargs == {"nested": {"a": [True]}}
    assert (loaded.misfire_grace_time, loaded.coalesce, loaded.max_instances) == (7, False, 3)
    assert loaded.next_run_time == job.next_run_time
    assert loaded.trigger.__getstate__() == trigger.__getstate__()
    assert loaded._scheduler is store._scheduler
    assert loaded._jobstore_alias == "default"


def test_lookup_missing_returns_none(store: DjangoJobStore) -> None:
    assert store.lookup_job("missing") is None


def test_get_all_jobs_sorted_with_paused_last(store: DjangoJobStore, make_job: MakeJob) -> None:
    store.add_job(make_job("paused", next_run_time=None))
    store.add_job(make_job("late", trigger=DateTrigger(utc(2999, 1, 3))))
    store.add_job(make_job("early", trigger=DateTrigger(utc(2999, 1, 2))))
    assert [job.id for job in store.get_all_jobs()] == ["early", "late", "paused"]


def test_get_due_jobs_only_due_in_order(store: DjangoJobStore, make_job: MakeJob) -> None:
    store.add_job(make_job("b", trigger=DateTrigger(utc(2020, 1, 2))))
    store.add_job(make_job("a", trigger=DateTrigger(utc(2020, 1, 1))))
    store.add_job(make_job("future", trigger=DateTrigger(utc(2999, 1, 1))))
    store.add_job(make_job("paused", trigger=DateTrigger(utc(2020, 1, 1)), next_run_time=None))
    due = store.get_due_jobs(utc(2021, 1, 1))
    assert [job.id for job in due] == ["a", "b"]


def test_get_due_jobs_microsecond_precision(store: DjangoJobStore, make_job: MakeJob) -> None:
    run_at = datetime(2020, 1, 1, 12, 0, 0, 500_000, tzinfo=timezone.utc)
    store.add_job(make_job("precise", trigger=DateTrigger(run_at)))
    assert store.get_due_jobs(run_at.replace(microsecond=499_999)) == []
    assert [job.id for job in store.get_due_jobs(run_at)] == ["precise"]


def test_get_next_run_time(store: DjangoJobStore, make_job: MakeJob) -> None:
    assert store.get_next_run_time() is None
    store.add_job(make_job("paused", next_run_time=None))
    assert store.get_next_run_time() is None
    store.add_job(make_job("late", trigger=DateTrigger(utc(2999, 1, 3))))
    store.add_job(make_job("early", trigger=DateTrigger(utc(2999, 1, 2))))
    assert store.get_next_run_time() == utc(2999, 1, 2)


def test_conflicting_id(store: DjangoJobStore, make_job: MakeJob) -> None:
    store.add_job(make_job("same", name="first"))
    with pytest.raises(ConflictingIdError):
        store.add_job(make_job("same", name="second"))
    assert Job.objects.get(id="same").name == "first"


def test_update_job(store: DjangoJobStore, make_job: MakeJob) -> None:
    store.add_job(make_job("a", trigger=DateTrigger(utc(2999, 1, 1))))
    store.add_job(make_job("b", trigger=DateTrigger(utc(2999, 1, 2))))
    job = store.lookup_job("a")
    assert job is not None
    job._modify(func="tests.jobs:echo", name="renamed", args=(5,), next_run_time=utc(2999, 1, 3))
    store.update_job(job)
    assert [j.id for j in store.get_all_jobs()] == ["b", "a"]
    reloaded = store.lookup_job("a")
    assert reloaded is not None
    assert (reloaded.name, reloaded.args) == ("renamed", (5,))
    assert reloaded.next_run_time == utc(2999, 1, 3)


def test_update_missing_job(store: DjangoJobStore, make_job: MakeJob) -> None:
    with pytest.raises(JobLookupError):
        store.update_job(make_job("ghost"))


def test_remove_job(store: DjangoJobStore, make_job: MakeJob) -> None:
    store.add_job(make_job("a"))
    store.add_job(make_job("b"))
    store.remove_job("a")
    assert [job.id for job in store.get_all_jobs()] == ["b"]
    with pytest.raises(JobLookupError):
        store.remove_job("a")


def test_remove_all_jobs(store: DjangoJobStore, make_job: MakeJob) -> None:
    store.add_job(make_job("a"))
    store.add_job(make_job("b", next_run_time=None))
    store.remove_all_jobs()
    assert store.get_all_jobs() == []
    assert not Job.objects.exists()


def test_start_without_scheduler() -> None:
    store = DjangoJobStore()
    store.start(None, "clockwork")
    assert store._alias == "clockwork"
    assert repr(store) == "<DjangoJobStore database='default'>"


def test_transient_job_refused(store: DjangoJobStore, make_job: MakeJob) -> None:
    job = make_job("lambda", func=lambda: None)
    with pytest.raises(TransientJobError):
        store.add_job(job)
    assert not Job.objects.exists()


def test_interval_trigger_round_trip(store: DjangoJobStore, make_job: MakeJob) -> None:
    trigger = IntervalTrigger(minutes=90, start_date=utc(2026, 1, 1), timezone="Asia/Kolkata")
    store.add_job(make_job("interval", trigger=trigger))
    loaded = store.lookup_job("interval")
    assert loaded is not None
    assert loaded.trigger.__getstate__() == trigger.__getstate__()
