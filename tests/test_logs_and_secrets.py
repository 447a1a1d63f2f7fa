"""User text in log lines is escaped, and stored error text is bounded."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from django.utils import timezone

from django_clockwork import ClockworkExecutor, DjangoJobStore, create_scheduler
from django_clockwork.ledger import Ledger, NewRun
from django_clockwork.models import ExecutionStatus, Job, JobExecution
from django_clockwork.storedtext import EXCEPTION_MAX, LOAD_ERROR_MAX, TRACEBACK_MAX

from .conftest import MakeJob, utc

pytestmark = pytest.mark.django_db(transaction=True)

FORGED = "a\nFAKE LINE"
EVERY_MINUTE = IntervalTrigger(minutes=1, start_date=utc(2030, 1, 1))


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every line our records print, tracebacks left out."""
    return [line for record in caplog.records for line in record.getMessage().splitlines()]


def test_a_job_name_with_a_line_break_logs_one_line(
    store: DjangoJobStore, executor: ClockworkExecutor, make_job: MakeJob, caplog
) -> None:  # type: ignore[no-untyped-def]
    due = timezone.now() - timedelta(milliseconds=10)
    store.add_job(make_job("j\nFORGED ID", name=FORGED, trigger=DateTrigger(due)))
    (job,) = store.get_due_jobs(timezone.now())
    with caplog.at_level(logging.INFO, logger="django_clockwork"):
        executor.submit_job(job, job._get_run_times(timezone.now()))
        assert executor.wait(5)
    assert len(caplog.records) == 2  # running, executed successfully
    assert len(lines(caplog)) == 2
    assert 'Running job "a\\nFAKE LINE (trigger: date[' in caplog.records[0].getMessage()
    assert not any(line.startswith("FAKE LINE") for line in lines(caplog))


def test_an_exception_message_with_a_line_break_is_escaped_in_the_line(
    store: DjangoJobStore, executor: ClockworkExecutor, make_job: MakeJob, caplog
) -> None:  # type: ignore[no-untyped-def]
    due = timezone.now() - timedelta(milliseconds=10)
    trigger = DateTrigger(due)
    store.add_job(
        make_job("raiser", func="tests.jobs:raise_message", args=(FORGED,), trigger=trigger)
    )
    (job,) = store.get_due_jobs(timezone.now())
    with caplog.at_level(logging.ERROR, logger="django_clockwork"):
        executor.submit_job(job, job._get_run_times(timezone.now()))
        assert executor.wait(5)
    (record,) = caplog.records
    assert record.getMessage().endswith("raised an exception: ValueError: a\\nFAKE LINE")
    assert record.exc_info is not None  # the traceback stays for log tools
    # The stored message keeps the text as it was: it is data, not a log line.
    assert JobExecution.objects.get().exception == f"ValueError: {FORGED}"


def test_apschedulers_own_lines_are_escaped(caplog) -> None:  # type: ignore[no-untyped-def]
    scheduler = create_scheduler()
    scheduler.add_job("tests.jobs:noop", "interval", minutes=1, id="x\nFAKE", name=FORGED)
    with caplog.at_level(logging.INFO, logger="apscheduler"):
        scheduler.start(paused=True)
        try:
            scheduler.remove_job("x\nFAKE")
        finally:
            scheduler.shutdown(wait=False)
    assert len(lines(caplog)) == len(caplog.records) >= 2
    assert "Removed job x\\nFAKE" in caplog.text
    assert 'Added job "a\\nFAKE LINE"' in caplog.text


def test_a_huge_invalid_trigger_becomes_a_bounded_load_error_logged_once(
    store: DjangoJobStore, make_job: MakeJob, caplog
) -> None:  # type: ignore[no-untyped-def]
    store.add_job(make_job("broken", trigger=EVERY_MINUTE))
    huge = "x\n" * 2_500_000  # 5 MB
    Job.objects.filter(id="broken").update(trigger={"type": huge})
    with caplog.at_level(logging.ERROR, logger="django_clockwork"):
        for _ in range(3):
            assert store.get_all_jobs() == []
            assert store.lookup_job("broken") is None
    error = Job.objects.get(id="broken").load_error
    assert len(error) <= LOAD_ERROR_MAX
    assert error.startswith("SerializationError: ")
    assert error.endswith(" characters in all, cut]")
    (record,) = caplog.records
    assert len(record.getMessage()) < 2 * LOAD_ERROR_MAX
    assert len(record.getMessage().splitlines()) == 1


def test_a_changed_error_is_logged_again(store: DjangoJobStore, make_job: MakeJob, caplog) -> None:  # type: ignore[no-untyped-def]
    store.add_job(make_job("broken", trigger=EVERY_MINUTE))
    Job.objects.filter(id="broken").update(trigger={"type": "fortnightly"})
    with caplog.at_level(logging.ERROR, logger="django_clockwork"):
        store.get_all_jobs()
        store.get_all_jobs()
        Job.objects.filter(id="broken").update(trigger={"type": "weekly"})
        store.get_all_jobs()
        store.get_all_jobs()
    messages = [record.getMessage() for record in caplog.records]
    assert [("fortnightly" in m, "weekly" in m) for m in messages] == [(True, False), (False, True)]


def test_stored_exception_and_traceback_are_bounded_keeping_the_tracebacks_end() -> None:
    ledger = Ledger("default")
    run_time = utc(2030, 1, 1)
    ledger.claimed([NewRun("big", run_time, "big", "tests.jobs:noop")])
    traceback = "Traceback (most recent call last):\n" + "  frame\n" * 100_000 + "ValueError: end"
    message = "ValueError: " + "m" * 10**6
    assert ledger.failed("big", run_time, exception=message, traceback=traceback)
    run = JobExecution.objects.get()
    assert run.status == ExecutionStatus.FAILED
    assert len(run.exception) <= EXCEPTION_MAX
    assert run.exception.startswith("ValueError: mmm")
    assert len(run.traceback) <= TRACEBACK_MAX
    assert run.traceback.endswith("  frame\nValueError: end")
    assert run.traceback.startswith("[")


def test_other_reasons_are_bounded_too() -> None:
    ledger = Ledger("default")
    run_time = utc(2030, 1, 1)
    ledger.claimed([NewRun("j", run_time, "j", "tests.jobs:noop", skipped_reason="s" * 10**5)])
    ledger.claimed([NewRun("k", run_time, "k", "tests.jobs:noop")])
    assert ledger.missed("k", [run_time], reason="r" * 10**5) == 1
    reasons = JobExecution.objects.values_list("exception", flat=True)
    assert all(len(text) <= EXCEPTION_MAX for text in reasons)
