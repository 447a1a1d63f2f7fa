"""ClockworkExecutor: the ledger's life cycle and APScheduler's events."""

from __future__ import annotations

import gc
import os
import socket
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
)
from apscheduler.executors.base import MaxInstancesReachedError
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from django.utils import timezone

from django_clockwork import ClockworkExecutor, DjangoJobStore, api, create_scheduler
from django_clockwork.executor import current_execution
from django_clockwork.models import ExecutionStatus, JobExecution

from .conftest import MakeJob

pytestmark = pytest.mark.django_db(transaction=True)


def run_now(store: DjangoJobStore, executor: ClockworkExecutor, make_job: MakeJob, **options: Any):  # type: ignore[no-untyped-def]
    """Add a job due a moment ago, claim it, submit it as the scheduler would."""
    due = timezone.now() - timedelta(milliseconds=10)
    store.add_job(make_job(options.pop("id", "job"), trigger=DateTrigger(due), **options))
    (job,) = store.get_due_jobs(timezone.now())
    executor.submit_job(job, job._get_run_times(timezone.now()))
    return job


def test_success_is_recorded(store, executor, make_job) -> None:  # type: ignore[no-untyped-def]
    run_now(store, executor, make_job, func="tests.jobs:sleep", args=(0.05,))
    assert executor.wait(5)
    execution = JobExecution.objects.get()
    assert execution.status == ExecutionStatus.SUCCEEDED
    assert execution.started_at >= execution.scheduled_run_time
    assert execution.finished_at >= execution.started_at
    assert 0.05 <= execution.duration < 5
    assert (execution.hostname, execution.pid) == (socket.gethostname(), os.getpid())
    assert (execution.exception, execution.traceback) == ("", "")


def test_failure_is_recorded_with_traceback(store, executor, make_job) -> None:  # type: ignore[no-untyped-def]
    run_now(store, executor, make_job, func="tests.jobs:fail")
    assert executor.wait(5)
    execution = JobExecution.objects.get()
    assert execution.status == ExecutionStatus.FAILED
    assert execution.exception == "RuntimeError: this job fails on purpose"
    assert 'tests/jobs.py", line' in execution.traceback
    assert execution.duration is not None


def test_coroutine_function_runs_to_completion(store, executor, make_job) -> None:  # type: ignore[no-untyped-def]
    events = []
    executor._scheduler.add_listener(events.append, EVENT_JOB_EXECUTED)
    run_now(store, executor, make_job, func="tests.jobs:async_job", args=(21,))
    assert executor.wait(5)
    assert JobExecution.objects.get().status == ExecutionStatus.SUCCEEDED
    assert [event.retval for event in events] == [42]


def test_late_run_is_missed(store, executor, make_job) -> None:  # type: ignore[no-untyped-def]
    events = []
    executor._scheduler.add_listener(events.append, EVENT_JOB_MISSED)
    due = timezone.now() - timedelta(seconds=5)
    store.add_job(make_job("late", trigger=DateTrigger(due), misfire_grace_time=1))
    # Claimed in time (0.5 s after it was due), started 5 s late: the executor records it.
    (job,) = store.get_due_jobs(due + timedelta(seconds=0.5))
    executor.submit_job(job, [due])
    assert executor.wait(5)
    execution = JobExecution.objects.get()
    assert execution.status == ExecutionStatus.MISSED
    assert "late; misfire_grace_time is 1s" in execution.exception
    assert execution.started_at is None
    assert len(events) == 1


def test_max_instances_skips_and_records(store, executor, make_job) -> None:  # type: ignore[no-untyped-def]
    trigger = IntervalTrigger(seconds=1, start_date=timezone.now() - timedelta(seconds=1.5))
    store.add_job(
        make_job(
            "slow",
            func="tests.jobs:sleep",
            args=(1,),
            trigger=trigger,
            next_run_time=timezone.now() - timedelta(seconds=1.5),
        )
    )
    (first,) = store.get_due_jobs(timezone.now())
    executor.submit_job(first, [])
    time.sleep(0.7)
    (second,) = store.get_due_jobs(timezone.now())
    with pytest.raises(MaxInstancesReachedError):
        executor.submit_job(second, [])
    assert executor.wait(5)
    statuses = list(
        JobExecution.objects.order_by("scheduled_run_time").values_list("status", flat=True)
    )
    assert statuses == [ExecutionStatus.SUCCEEDED, ExecutionStatus.SKIPPED]
    assert "max_instances (1) reached" in JobExecution.objects.get(status="skipped").exception


def test_job_sees_its_execution(store, executor, make_job) -> None:  # type: ignore[no-untyped-def]
    events = []
    executor._scheduler.add_listener(events.append, EVENT_JOB_EXECUTED)
    job = run_now(store, executor, make_job, id="me", func="tests.jobs:whoami")
    assert executor.wait(5)
    (event,) = events
    assert event.retval.job_id == "me"
    assert event.retval.scheduled_run_time == job.next_run_time
    assert current_execution() is None


def test_ledger_write_survives_a_database_hiccup(store, executor, make_job, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from django_clockwork import ledger

    monkeypatch.setattr(ledger, "DURABLE_BACKOFF", (0.01, 0.01, 0.01))
    real_filter = JobExecution.objects.filter
    failures = iter([True, True])

    def flaky_filter(*args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        if threading.current_thread().name.startswith("clockwork-job") and next(failures, False):
            from django.db import OperationalError

            raise OperationalError("server has gone away")
        return real_filter(*args, **kwargs)

    monkeypatch.setattr(JobExecution.objects, "filter", flaky_filter)
    run_now(store, executor, make_job, func="tests.jobs:noop")
    assert executor.wait(5)
    assert JobExecution.objects.get().status == ExecutionStatus.SUCCEEDED


def test_scheduler_end_to_end_with_listeners() -> None:
    events: list[Any] = []
    api.add_job("tests.jobs:noop", "interval", seconds=0.3, id="ok")
    api.add_job("tests.jobs:fail", "interval", seconds=0.3, id="bad")
    scheduler = create_scheduler()
    scheduler.add_listener(events.append, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len({e.job_id for e in events}) < 2:
            time.sleep(0.05)
    finally:
        scheduler.shutdown()
        gc.collect()  # close the finished scheduler thread's connection before teardown
    assert {(e.job_id, e.code) for e in events} >= {
        ("ok", EVENT_JOB_EXECUTED),
        ("bad", EVENT_JOB_ERROR),
    }
    assert JobExecution.objects.filter(job_id="ok", status="succeeded").exists()
    assert JobExecution.objects.filter(job_id="bad", status="failed").exists()


def test_max_instances_event_reaches_listeners() -> None:
    events: list[Any] = []
    api.add_job("tests.jobs:sleep", "interval", seconds=0.2, args=[1.2], id="slow", coalesce=True)
    scheduler = create_scheduler()
    scheduler.add_listener(events.append, EVENT_JOB_MAX_INSTANCES)
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not events:
            time.sleep(0.05)
    finally:
        scheduler.shutdown()
        gc.collect()  # close the finished scheduler thread's connection before teardown
    assert events
    assert JobExecution.objects.filter(job_id="slow", status="skipped").exists()


@pytest.mark.parametrize("cause", ["overflow", "database"])
def test_an_error_before_the_job_starts_is_recorded_failed(  # type: ignore[no-untyped-def]
    store, executor, make_job, monkeypatch, cause
) -> None:
    """An error before the job's function is called must end the run ``failed`` with the
    error, not leave it ``scheduled`` (which would count towards max_instances for ever): a
    hand-edited misfire_grace_time of 10**14 that overflows timedelta (SQLite's integer column
    holds it; PostgreSQL's and MariaDB's refuse it), or the database failing the ``started``
    write."""
    from django.db import connection

    from django_clockwork.groupcommit import LedgerWriter

    options: dict[str, Any] = {}
    expected = "OverflowError"
    if cause == "overflow":
        if connection.vendor != "sqlite":
            pytest.skip("only SQLite's integer column holds 10**14")
        options["misfire_grace_time"] = 10**14
    else:

        def broken(*args: Any, **kwargs: Any) -> bool:
            raise RuntimeError("the database failed the started write")

        monkeypatch.setattr(LedgerWriter, "started", broken)
        expected = "RuntimeError: the database failed the started write"
    events = []
    executor._scheduler.add_listener(events.append, EVENT_JOB_ERROR)
    job = run_now(store, executor, make_job, func="tests.jobs:noop", **options)
    assert executor.wait(5)
    execution = JobExecution.objects.get()
    assert execution.status == ExecutionStatus.FAILED
    assert execution.exception.startswith(f"Could not run the job: {expected}")
    assert expected.split(":")[0] in execution.traceback
    assert [event.job_id for event in events] == [job.id]
    assert executor.running == 0
