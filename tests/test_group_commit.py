"""The group-committed ledger writer: runs' starts and outcomes, one statement per
transition kind per flush, with every promise of the ledger kept."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError
from django.db.backends.signals import connection_created
from django.utils import timezone

from django_clockwork import ClockworkExecutor, DjangoJobStore, groupcommit, ledger
from django_clockwork.groupcommit import LedgerWriter
from django_clockwork.ledger import Ledger
from django_clockwork.models import ExecutionStatus, JobExecution

from .conftest import MakeJob, utc

pytestmark = pytest.mark.django_db(transaction=True)

S = ExecutionStatus
T0 = utc(2030, 1, 1, 12, 0)
NODE = "n" * 32


def add_runs(count: int, job_id: str = "job", status: str = S.SCHEDULED) -> list[Any]:
    JobExecution.objects.bulk_create(
        JobExecution(
            job_id=job_id,
            job_name=job_id,
            scheduled_run_time=T0 + timedelta(seconds=i),
            status=status,
            node_id=NODE,
        )
        for i in range(count)
    )
    return [T0 + timedelta(seconds=i) for i in range(count)]


@pytest.fixture
def writer() -> Iterator[LedgerWriter]:
    book = LedgerWriter("default")
    yield book
    book.stop()


@pytest.fixture
def updates() -> Iterator[list[str]]:
    """The UPDATE statements of the ledger table, on every connection opened meanwhile (a
    batch sent in one round trip counts each of its statements)."""
    seen: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        for statement in sql.split(";\n"):
            if statement.lstrip().upper().startswith("UPDATE") and "execution" in sql.lower():
                seen.append(statement)
        return execute(sql, params, many, context)

    def add(sender: Any, connection: Any, **kwargs: Any) -> None:
        if count not in connection.execute_wrappers:
            connection.execute_wrappers.append(count)

    connection_created.connect(add)
    yield seen
    connection_created.disconnect(add)


def states() -> list[str]:
    return list(
        JobExecution.objects.order_by("scheduled_run_time").values_list("status", flat=True)
    )


def test_started_and_outcome_in_one_flush_is_one_statement_in_order(
    writer: LedgerWriter, updates: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(groupcommit, "FLUSH_EVERY", 30.0)  # only flush() writes
    times = add_runs(50)
    for i, at in enumerate(times):
        writer.started("job", at, hostname="h", pid=7)
        if i % 2:
            writer.succeeded("job", at, duration=0.5)
        else:
            writer.failed("job", at, exception="E: x", traceback="tb", duration=0.25)
    assert states() == [S.SCHEDULED] * 50  # nothing waited for its "running"
    assert writer.flush(10)
    assert states() == [S.FAILED, S.SUCCEEDED] * 25
    assert len(updates) == 2  # started+failed, started+succeeded: one statement each
    row = JobExecution.objects.get(scheduled_run_time=times[1])
    assert (row.hostname, row.pid, row.duration) == ("h", 7, 0.5)
    assert row.started_at is not None
    assert row.finished_at >= row.started_at
    failed = JobExecution.objects.get(scheduled_run_time=times[0])
    assert (failed.exception, failed.traceback, failed.duration) == ("E: x", "tb", 0.25)


def test_sqlite_before_3_33_moves_one_run_per_statement(
    writer: LedgerWriter, updates: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``UPDATE ... FROM`` (SQLite before 3.33) a flush is one statement per run,
    with the same outcome."""
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite's version decides the statements")
    monkeypatch.setattr(connection.Database, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(groupcommit, "FLUSH_EVERY", 30.0)  # only flush() writes
    times = add_runs(3)
    for at in times:
        writer.started("job", at, hostname="h", pid=7)
        writer.succeeded("job", at, duration=0.5)
    assert writer.flush(10)
    assert states() == [S.SUCCEEDED] * 3
    assert len(updates) == 3


def test_started_then_outcome_in_separate_flushes(
    writer: LedgerWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(groupcommit, "FLUSH_EVERY", 30.0)
    (at,) = add_runs(1)
    writer.started("job", at, hostname="h", pid=7)
    assert writer.flush(10)
    assert states() == [S.RUNNING]
    writer.succeeded("job", at, duration=1.0)
    assert writer.flush(10)
    assert states() == [S.SUCCEEDED]


def test_a_transition_from_the_wrong_state_changes_nothing_and_is_logged(
    writer: LedgerWriter, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = add_runs(2)
    JobExecution.objects.filter(scheduled_run_time=second).update(status=S.ABANDONED)
    with caplog.at_level(logging.WARNING, logger="django_clockwork"):
        writer.succeeded("job", first, duration=1.0)  # never started: it is scheduled
        writer.started("job", second, hostname="h", pid=7)
        writer.started("job", T0 - timedelta(days=1), hostname="h", pid=7)  # no such run
        assert writer.flush(10)
    assert states() == [S.SCHEDULED, S.ABANDONED]
    assert "Ledger refused 'succeeded' for job 'job'" in caplog.text
    assert "the run is scheduled; 'succeeded' only leaves running" in caplog.text
    assert "the run is abandoned; 'started' only leaves scheduled" in caplog.text
    assert "the run is not in the ledger" in caplog.text


def test_a_flush_that_fails_is_retried(
    writer: LedgerWriter, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ledger, "DURABLE_BACKOFF", (0.01, 0.01))
    monkeypatch.setattr(groupcommit, "DURABLE_BACKOFF", (0.01, 0.01))
    real = groupcommit.batch  # the flush's statements, in one round trip where possible
    failures = [OperationalError("server closed the connection")]

    def flaky(*args: Any) -> Any:
        if failures:
            raise failures.pop()
        return real(*args)

    monkeypatch.setattr(groupcommit, "batch", flaky)
    (at,) = add_runs(1)
    with caplog.at_level(logging.WARNING, logger="django_clockwork"):
        writer.started("job", at, hostname="h", pid=7)
        writer.succeeded("job", at, duration=1.0)
        assert writer.flush(10)
    assert states() == [S.SUCCEEDED]
    assert "Could not record 2 run transition(s); retrying in 0.01s" in caplog.text


def test_pending_runs_count_as_submitted_until_written(
    scheduler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's recovery re-runs this node's ``scheduled`` runs its executor does not
    know: a run whose "running" write is still queued must not look like one."""
    monkeypatch.setattr(groupcommit, "FLUSH_EVERY", 30.0)
    (at,) = add_runs(1)
    executor = ClockworkExecutor(max_workers=1)
    executor.start(scheduler, "default")
    try:
        executor.writer("default").started("job", at, hostname="h", pid=7)
        assert ("job", at) in executor.submitted_runs()
        assert states() == [S.SCHEDULED]
        assert executor.flush(10)
        assert executor.submitted_runs() == set()
        assert states() == [S.RUNNING]
    finally:
        executor.shutdown()


def test_a_crash_before_the_running_write_leaves_a_run_the_reaper_abandons(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(groupcommit, "FLUSH_EVERY", 30.0)
    (at,) = add_runs(1)
    writer = LedgerWriter("default")
    writer.started("job", at, hostname="h", pid=7)  # queued; then the process dies
    assert Ledger("default", "other").abandon_node(NODE, "its node died") == 1
    assert states() == [S.ABANDONED]
    writer.stop()  # a late write of the "dead" writer moves nothing
    assert states() == [S.ABANDONED]


def test_outcomes_are_written_at_shutdown_and_within_a_second(
    scheduler: Any, store: DjangoJobStore, make_job: MakeJob
) -> None:
    from apscheduler.triggers.date import DateTrigger

    executor = ClockworkExecutor(max_workers=2)
    executor.start(scheduler, "default")
    due = timezone.now() - timedelta(milliseconds=10)
    for name in ("a", "b"):
        store.add_job(make_job(name, trigger=DateTrigger(due)))
    jobs = store.get_due_jobs(timezone.now())
    executor.submit_job(jobs[0], jobs[0]._get_run_times(timezone.now()))
    deadline = time.monotonic() + 1.0
    while JobExecution.objects.filter(status=S.SUCCEEDED).count() < 1:
        assert time.monotonic() < deadline, "an outcome took more than a second"
        time.sleep(0.01)
    executor.submit_job(jobs[1], jobs[1]._get_run_times(timezone.now()))
    executor.shutdown(wait=True)  # no flush, no wait: shutdown writes what is queued
    assert states() == [S.SUCCEEDED, S.SUCCEEDED]


def test_a_run_that_outlives_the_stop_writes_its_own_outcome(
    writer: LedgerWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(groupcommit, "FLUSH_EVERY", 30.0)
    (at,) = add_runs(1)
    writer.started("job", at, hostname="h", pid=7)
    assert writer.stop(10)
    assert states() == [S.RUNNING]
    writer.succeeded("job", at, duration=1.0)  # after the stop: written at once
    assert states() == [S.SUCCEEDED]
