"""Job threads keep their database connections from run to run, whatever CONN_MAX_AGE is;
a connection the server ended is replaced before the next run, and no run leaves a
transaction open."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from apscheduler.job import Job as APJob
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.date import DateTrigger
from django.db import connection, connections
from django.utils import timezone

from django_clockwork import ClockworkExecutor, DjangoJobStore
from django_clockwork.models import ExecutionStatus, JobExecution

from . import jobs
from .conftest import MakeJob

pytestmark = pytest.mark.django_db(transaction=True)
needs_a_server = pytest.mark.skipif(
    connection.vendor == "sqlite", reason="SQLite has no server to end a connection"
)


@pytest.fixture
def one_thread(scheduler: BaseScheduler) -> Iterator[ClockworkExecutor]:
    """A started executor with ONE job thread: every run uses the same thread."""
    pool = ClockworkExecutor(max_workers=1)
    pool.start(scheduler, "default")
    jobs.CONNECTIONS.clear()
    yield pool
    pool.shutdown(wait=True)
    jobs.CONNECTIONS.clear()


def run(
    store: DjangoJobStore, executor: ClockworkExecutor, make_job: MakeJob, id: str, func: str
) -> APJob:
    due = timezone.now() - timedelta(milliseconds=10)
    store.add_job(make_job(id, func=func, trigger=DateTrigger(due)))
    (job,) = store.get_due_jobs(timezone.now())
    executor.submit_job(job, job._get_run_times(timezone.now()))
    assert executor.wait(5)
    return job


def statuses() -> list[str]:
    return list(JobExecution.objects.order_by("id").values_list("status", flat=True))


@pytest.mark.parametrize("max_age", [0, None])
def test_consecutive_runs_on_one_thread_share_one_connection(
    store: DjangoJobStore,
    one_thread: ClockworkExecutor,
    make_job: MakeJob,
    monkeypatch: pytest.MonkeyPatch,
    max_age: int | None,
) -> None:
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", max_age)
    for i in range(3):
        run(store, one_thread, make_job, f"run-{i}", "tests.jobs:record_connection")
    first, *others = jobs.CONNECTIONS
    assert len(others) == 2
    assert all(other is first for other in others)
    assert statuses() == [ExecutionStatus.SUCCEEDED] * 3


def end_connection(raw: Any) -> None:
    """Make the server end a job thread's connection, as a restart or a timeout would."""
    with connections["other"].cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_terminate_backend(%s)", [raw.info.backend_pid])
        else:
            cursor.execute(f"KILL {int(raw.thread_id())}")


@needs_a_server
@pytest.mark.django_db(transaction=True, databases=["default", "other"])
@pytest.mark.parametrize("max_age", [0, None])
def test_a_connection_the_server_ended_is_replaced_before_the_next_run(
    store: DjangoJobStore,
    one_thread: ClockworkExecutor,
    make_job: MakeJob,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    max_age: int | None,
) -> None:
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", max_age)
    run(store, one_thread, make_job, "before", "tests.jobs:record_connection")
    end_connection(jobs.CONNECTIONS[0])
    with caplog.at_level(logging.INFO, logger="django_clockwork"):
        run(store, one_thread, make_job, "after", "tests.jobs:record_connection")
    before, after = jobs.CONNECTIONS
    assert after is not before
    assert statuses() == [ExecutionStatus.SUCCEEDED] * 2
    assert "was ended by the server; replacing it" in caplog.text
    assert "retrying" not in caplog.text  # no write had to fail first


def test_a_transaction_a_job_left_open_is_rolled_back_and_the_outcome_kept(
    store: DjangoJobStore,
    one_thread: ClockworkExecutor,
    make_job: MakeJob,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="django_clockwork"):
        run(store, one_thread, make_job, "leaky", "tests.jobs:leave_transaction_open")
    assert statuses() == [ExecutionStatus.SUCCEEDED]
    assert "A job left a transaction open on database 'default'" in caplog.text
    run(store, one_thread, make_job, "next", "tests.jobs:record_connection")
    run(store, one_thread, make_job, "last", "tests.jobs:record_connection")
    assert statuses() == [ExecutionStatus.SUCCEEDED] * 3
    assert jobs.CONNECTIONS[0] is jobs.CONNECTIONS[1]


def test_a_job_thread_closes_its_connections_when_it_ends(
    scheduler: BaseScheduler, store: DjangoJobStore, make_job: MakeJob
) -> None:
    pool = ClockworkExecutor(max_workers=1)
    pool.start(scheduler, "default")
    jobs.CONNECTIONS.clear()
    run(store, pool, make_job, "only", "tests.jobs:record_connection")
    pool.shutdown(wait=True)
    (raw,) = jobs.CONNECTIONS
    jobs.CONNECTIONS.clear()
    if connection.vendor == "postgresql":
        assert raw.closed
    elif connection.vendor == "sqlite":
        with pytest.raises(Exception, match="closed"):
            raw.cursor()
    else:
        import MySQLdb

        with pytest.raises((MySQLdb.InterfaceError, MySQLdb.OperationalError)):
            raw.ping()
