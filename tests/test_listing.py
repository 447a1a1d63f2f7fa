"""Listing every job: ``api.iter_jobs`` streams, ``api.get_jobs`` and the store's
``get_all_jobs`` keep their lists, all in one order (soonest first, paused last)."""

from __future__ import annotations

import inspect
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from apscheduler.triggers.date import DateTrigger

from django_clockwork import DjangoJobStore, api
from django_clockwork.models import Job
from tests.conftest import MakeJob

pytestmark = pytest.mark.django_db

START = datetime(2999, 1, 1, tzinfo=timezone.utc)


def add_jobs(count: int) -> list[str]:
    """``count`` one-off jobs, added out of order; every third one paused."""
    for n in reversed(range(count)):
        api.add_job(
            "tests.jobs:noop",
            "date",
            run_date=START + timedelta(minutes=n),
            id=f"job-{n:02}",
            next_run_time=None if n % 3 == 0 else api.UNSET,
        )
    running = [f"job-{n:02}" for n in range(count) if n % 3]
    paused = [f"job-{n:02}" for n in range(count) if n % 3 == 0]
    return running + paused


def test_iter_jobs_streams_what_get_jobs_lists() -> None:
    order = add_jobs(7)
    stream = api.iter_jobs(chunk_size=2)
    assert inspect.isgenerator(stream)
    listed = api.get_jobs()
    assert [job.id for job in listed] == order
    assert list(stream) == listed


def test_iter_jobs_reads_nothing_until_iterated(django_assert_num_queries: Any) -> None:
    add_jobs(2)
    with django_assert_num_queries(0):
        stream = api.iter_jobs()
    assert next(stream).id == "job-01"


def test_iter_jobs_includes_broken_rows_but_not_finished_ones() -> None:
    add_jobs(3)
    Job.objects.filter(id="job-01").update(load_error="ImportError: gone")
    Job.objects.filter(id="job-02").update(finished_at=START, next_run_time=None)
    listed = {job.id: job for job in api.iter_jobs()}
    assert set(listed) == {"job-00", "job-01"}
    assert listed["job-01"].load_error == "ImportError: gone"


def test_get_all_jobs_in_chunks_keeps_the_order(
    monkeypatch: pytest.MonkeyPatch, store: DjangoJobStore, make_job: MakeJob
) -> None:
    from django_clockwork import jobstore

    monkeypatch.setattr(jobstore, "LIST_CHUNK", 2)
    for n in (3, 1, 4, 0, 2):
        store.add_job(make_job(f"j{n}", trigger=DateTrigger(START + timedelta(hours=n))))
    store.add_job(make_job("paused", next_run_time=None))
    assert [job.id for job in store.get_all_jobs()] == ["j0", "j1", "j2", "j3", "j4", "paused"]


def test_listing_and_claiming_read_each_row_once(store: DjangoJobStore, make_job: MakeJob) -> None:
    """Every column a job is restored from is in the listing's and the claim's one query: a
    column left out would cost a query per row when read (as task columns once did)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(count: int) -> tuple[int, int]:
        Job.objects.all().delete()
        for n in range(count):
            due = datetime.now(timezone.utc) - timedelta(seconds=1)
            store.add_job(make_job(f"j{n}", next_run_time=due, misfire_grace_time=None))
        with CaptureQueriesContext(connection) as listing:
            assert len(store.get_all_jobs()) == count
        with CaptureQueriesContext(connection) as claiming:
            assert len(store.get_due_jobs(datetime.now(timezone.utc))) == count
        return len(listing.captured_queries), len(claiming.captured_queries)

    assert queries(2) == queries(7)


def test_listed_jobs_can_be_written_back(store: DjangoJobStore, make_job: MakeJob) -> None:
    store.add_job(make_job("one", func="tests.jobs:echo"))
    (job,) = store.get_all_jobs()
    job._modify(args=(1,))  # only the arguments: the stored next run time stays
    store.update_job(job)
    assert Job.objects.get(id="one").args == [1]


def test_get_all_jobs_flags_a_broken_row_and_lists_the_rest(
    monkeypatch: pytest.MonkeyPatch, store: DjangoJobStore, make_job: MakeJob
) -> None:
    from django_clockwork import jobstore

    monkeypatch.setattr(jobstore, "LIST_CHUNK", 1)
    for n in range(3):
        store.add_job(make_job(f"j{n}", trigger=DateTrigger(START + timedelta(hours=n))))
    Job.objects.filter(id="j1").update(func="tests.moved_away:noop")
    assert [job.id for job in store.get_all_jobs()] == ["j0", "j2"]
    assert "moved_away" in Job.objects.get(id="j1").load_error
