"""Backlogs and tiny intervals are bounded: whatever ``next_run_time`` a row holds, a claim's
work, memory and ledger rows per job stay bounded, and no interval makes a scheduler spin."""

from __future__ import annotations

import logging
import threading
import time
import tracemalloc
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from apscheduler.events import EVENT_JOB_MISSED
from apscheduler.triggers.combining import AndTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from django.db import connection, connections
from django.utils import timezone

from django_clockwork import DjangoJobStore, api
from django_clockwork.backlog import MAX_RUN_TIMES, walk
from django_clockwork.exceptions import InvalidJobError
from django_clockwork.ledger import LOOKUP_CHUNK, Ledger, NewRun
from django_clockwork.models import ExecutionStatus, Job, JobExecution
from django_clockwork.serialization import SerializationError, trigger_from_json

from .conftest import MakeJob, run_scheduler_until_succeeded

pytestmark = pytest.mark.django_db

EVERY_SECOND = IntervalTrigger(seconds=1, start_date=datetime(1999, 1, 1), timezone="UTC")


def aged(store: DjangoJobStore, make_job: MakeJob, job_id: str, seconds: float, **options):  # type: ignore[no-untyped-def]
    """A 1-second job whose ``next_run_time`` lies ``seconds`` in the past."""
    now = timezone.now().replace(microsecond=0)
    store.add_job(
        make_job(
            job_id, trigger=EVERY_SECOND, next_run_time=now - timedelta(seconds=seconds), **options
        )
    )
    return now


# -- the walk ---------------------------------------------------------------------------------


def test_a_row_set_to_the_year_2000_costs_one_missed_row_and_little_time(
    store: DjangoJobStore, make_job: MakeJob, caplog: pytest.LogCaptureFixture
) -> None:
    """Once: enumerated until MemoryError while holding SQLite's write lock."""
    make = make_job("y2k", trigger=EVERY_SECOND, coalesce=False, misfire_grace_time=5)
    make._modify(next_run_time=datetime(2000, 1, 1, tzinfo=dt_timezone.utc))
    store.add_job(make)
    caplog.set_level(logging.WARNING)
    tracemalloc.start()
    clock = time.perf_counter()
    (job,) = store.get_due_jobs(timezone.now())
    elapsed = time.perf_counter() - clock
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 5, f"the claim took {elapsed:.1f} s"
    assert peak < 20 * 2**20, f"the claim peaked at {peak / 2**20:.0f} MiB"
    missed = JobExecution.objects.get(status=ExecutionStatus.MISSED)
    assert missed.scheduled_run_time == datetime(2000, 1, 1, tzinfo=dt_timezone.utc)
    assert missed.exception.startswith(
        f"Missed more than {MAX_RUN_TIMES} run time(s) from 2000-01-01"
    )
    # It goes on inside the grace window: at most grace + 1 run times, none older than 5 s.
    claim = job._clockwork_claim
    assert 1 <= len(claim.run_times) <= 6
    assert min(claim.run_times) >= timezone.now() - timedelta(seconds=6)
    assert JobExecution.objects.count() == 1 + len(claim.run_times)
    assert Job.objects.get(id="y2k").next_run_time > max(claim.run_times)
    assert [r.getMessage() for r in caplog.records if "Missed" in r.getMessage()] == [
        f"Job 'y2k': {missed.exception}"
    ]


def test_20000_seconds_of_backlog_is_one_missed_row_and_one_warning(
    store: DjangoJobStore, make_job: MakeJob, caplog: pytest.LogCaptureFixture
) -> None:
    """Once: 19,948 missed rows and as many WARNING lines in 8 s."""
    aged(store, make_job, "late", 20_000, coalesce=False, misfire_grace_time=1)
    caplog.set_level(logging.WARNING)
    store.get_due_jobs(timezone.now())
    assert JobExecution.objects.filter(status=ExecutionStatus.MISSED).count() == 1
    assert JobExecution.objects.count() <= 3
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


def test_an_exact_count_when_the_backlog_is_short(store: DjangoJobStore, make_job: MakeJob) -> None:
    now = aged(store, make_job, "short", 30, coalesce=False, misfire_grace_time=10)
    store.get_due_jobs(now)
    missed = JobExecution.objects.get(status=ExecutionStatus.MISSED)
    # now-30 .. now-11 are older than the 10 s grace time: 20 of them.
    assert missed.exception.startswith("Missed 20 run time(s) from ")
    assert JobExecution.objects.filter(status=ExecutionStatus.SCHEDULED).count() == 11


def test_without_grace_limit_the_backlog_is_taken_a_bounded_slice_per_claim(
    store: DjangoJobStore, make_job: MakeJob
) -> None:
    """Once: 300,000 s of backlog with coalesce=False failed every claim (too many SQL
    variables). Without a grace limit every run time is owed a run: each claim takes the
    next MAX_RUN_TIMES, and the job's next_run_time moves on by as many."""
    now = aged(store, make_job, "owed", 300_000, coalesce=False, misfire_grace_time=None)
    start = now - timedelta(seconds=300_000)
    for turn in range(1, 4):
        (job,) = store.get_due_jobs(now)
        assert len(job._clockwork_claim.run_times) == MAX_RUN_TIMES
        assert Job.objects.get(id="owed").next_run_time == start + timedelta(
            seconds=turn * MAX_RUN_TIMES
        )
    assert JobExecution.objects.count() == 3 * MAX_RUN_TIMES
    assert not JobExecution.objects.filter(status=ExecutionStatus.MISSED).exists()


def test_a_coalescing_job_runs_its_backlog_once_and_goes_on_after_now(
    store: DjangoJobStore, make_job: MakeJob
) -> None:
    now = aged(store, make_job, "coalesced", 300_000, coalesce=True, misfire_grace_time=None)
    (job,) = store.get_due_jobs(now)
    assert len(job._clockwork_claim.run_times) == 1
    assert JobExecution.objects.count() == 1
    assert Job.objects.get(id="coalesced").next_run_time > now
    assert store.get_due_jobs(now) == []


def test_a_coalescing_job_past_its_grace_time_is_one_missed_row(
    store: DjangoJobStore, make_job: MakeJob
) -> None:
    """APScheduler hands over the last late run time, which its executor records missed."""
    hour = (timezone.now().hour + 12) % 24  # never within the grace time of now
    make = make_job("stale", trigger=CronTrigger(hour=hour, timezone="UTC"), misfire_grace_time=60)
    make._modify(next_run_time=datetime(2001, 1, 1, hour, tzinfo=dt_timezone.utc))
    store.add_job(make)
    now = timezone.now()
    store.get_due_jobs(now)
    (row,) = JobExecution.objects.all()
    assert row.status == ExecutionStatus.MISSED
    assert row.scheduled_run_time == datetime(2001, 1, 1, hour, tzinfo=dt_timezone.utc)
    assert Job.objects.get(id="stale").next_run_time > now


def test_the_scheduler_is_told_once_and_submits_only_the_claim(
    store: DjangoJobStore, make_job: MakeJob
) -> None:
    """Listeners get one EVENT_JOB_MISSED for the backlog; the scheduling pass, which would
    list every run time from next_run_time to now, gets the claim's run times instead."""
    events = []
    store._scheduler.add_listener(events.append, EVENT_JOB_MISSED)
    now = aged(store, make_job, "told", 1_000_000, coalesce=False, misfire_grace_time=2)
    (job,) = store.get_due_jobs(now)
    assert len(events) == 1
    assert job._get_run_times(now) == sorted(job._clockwork_claim.run_times)
    assert len(job._get_run_times(now)) <= 3


def test_a_bounded_walk_whatever_the_trigger() -> None:
    """The walk jumps over an old backlog with the trigger's public API (cron and interval)."""
    from apscheduler.job import Job as APJob

    class Stub:
        timezone = dt_timezone.utc

    now = datetime(2030, 6, 1, 12, tzinfo=dt_timezone.utc)
    for trigger in (
        CronTrigger(second="*", timezone="UTC"),
        IntervalTrigger(seconds=1, start_date=datetime(1990, 1, 1), timezone="UTC"),
    ):
        job = APJob(
            Stub(),
            func="tests.jobs:noop",
            trigger=trigger,
            next_run_time=datetime(1990, 1, 1, tzinfo=dt_timezone.utc),
            coalesce=False,
            misfire_grace_time=10,
            max_instances=1,
            executor="default",
            args=(),
            kwargs={},
            name="j",
            id="j",
        )
        taken = walk(job, now)
        assert taken.missed is not None
        assert taken.missed.more
        assert taken.run_times == [now - timedelta(seconds=s) for s in range(10, -1, -1)]
        assert taken.next_run_time == now + timedelta(seconds=1)


# -- intervals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [1e-6, 0.05])
def test_an_interval_below_the_floor_is_refused_at_add(seconds: float) -> None:
    with pytest.raises(SerializationError, match=r"at least 0\.1 seconds"):
        api.add_job("tests.jobs:noop", "interval", seconds=seconds, id="spin")
    assert not Job.objects.exists()


def test_the_floor_itself_is_accepted() -> None:
    api.add_job("tests.jobs:noop", "interval", seconds=0.1, id="fast")
    assert Job.objects.get(id="fast").trigger["seconds"] == 0.1


@pytest.mark.django_db(transaction=True)
def test_a_hand_edited_interval_below_the_floor_is_flagged_and_the_others_run() -> None:
    api.add_job("tests.jobs:noop", "interval", seconds=1, id="spin")
    api.add_job("tests.jobs:noop", "interval", seconds=1, id="healthy")
    row = Job.objects.get(id="spin")
    Job.objects.filter(id="spin").update(trigger={**row.trigger, "seconds": 1e-6})
    assert run_scheduler_until_succeeded("healthy", runs=2) >= 2
    spin = Job.objects.get(id="spin")
    assert "at least 0.1 seconds" in spin.load_error
    assert not JobExecution.objects.filter(job_id="spin").exists()


# -- many run times in one statement -----------------------------------------------------------


def test_ledger_writes_and_lookups_of_many_run_times_fit_every_database() -> None:
    """SQLite allows 999 host parameters in older builds, 32,766 in newer ones."""
    book = Ledger(connection.alias, "node")
    start = datetime(2030, 1, 1, tzinfo=dt_timezone.utc)
    times = [start + timedelta(seconds=i) for i in range(3 * LOOKUP_CHUNK + 7)]
    inserted = book.claimed([NewRun("many", t, "many", "tests.jobs:noop") for t in times])
    assert len(inserted.run) == len(times)
    assert book.existing({("many", t) for t in times}) == {("many", t) for t in times}
    assert book.missed("many", times, reason="test") == len(times)
    assert JobExecution.objects.filter(status=ExecutionStatus.MISSED).count() == len(times)


# -- SQLite: slow work before the write lock ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_sqlite_loads_jobs_before_taking_its_write_lock(
    store: DjangoJobStore, make_job: MakeJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once: a module that took 8 s to import blocked another process's write for 7.75 s."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's database-wide write lock")
    store.add_job(make_job("slow", trigger=EVERY_SECOND, next_run_time=timezone.now()))
    load = store._claimer.load
    writes: list[float] = []

    def write_from_another_connection() -> None:
        clock = time.perf_counter()
        api.add_job("tests.jobs:noop", "interval", minutes=5, id="other")
        writes.append(time.perf_counter() - clock)
        connections.close_all()

    def slow_load(row: Job):  # type: ignore[no-untyped-def]
        writer = threading.Thread(target=write_from_another_connection)
        writer.start()
        time.sleep(1.5)  # importing a heavy module
        writer.join()
        return load(row)

    monkeypatch.setattr(store._claimer, "load", slow_load)
    (job,) = store.get_due_jobs(timezone.now())
    assert job._clockwork_claim.run_times
    assert writes
    assert writes[0] < 1.0, f"the other write waited {writes[0]:.2f} s"


# -- and triggers (APScheduler issue #281) ---------------------------------------------------------

NEVER_AGREE = {
    "type": "and",
    "triggers": [
        {"type": "cron", "second": "1", "timezone": "UTC"},
        {"type": "cron", "second": "2", "timezone": "UTC"},
    ],
}


def test_an_and_trigger_whose_parts_disagree_settles_on_their_next_common_time() -> None:
    """Upstream's AndTrigger asks its parts again with the same previous fire time and loops
    for ever once they disagree; ours goes on from the latest proposal."""
    trigger = trigger_from_json(
        {
            "type": "and",
            "triggers": [
                {"type": "cron", "minute": "*/7", "timezone": "UTC"},
                {"type": "cron", "minute": "*/11", "timezone": "UTC"},
            ],
        }
    )
    previous = datetime(2030, 1, 1, 10, tzinfo=dt_timezone.utc)
    assert trigger.get_next_fire_time(previous, previous) == previous + timedelta(hours=1)


def test_an_and_trigger_that_never_agrees_is_refused_at_add() -> None:
    never = trigger_from_json(NEVER_AGREE)
    upstream = AndTrigger(never.triggers)  # an instance as a caller builds it
    with pytest.raises(InvalidJobError, match="no fire time in common"):
        api.add_job("tests.jobs:noop", upstream, id="never")
    assert not Job.objects.exists()


def test_a_stored_and_trigger_that_never_agrees_is_flagged_and_the_claim_goes_on(
    store: DjangoJobStore, make_job: MakeJob
) -> None:
    now = timezone.now()
    store.add_job(make_job("never", trigger=EVERY_SECOND, next_run_time=now))
    store.add_job(make_job("healthy", trigger=EVERY_SECOND, next_run_time=now))
    Job.objects.filter(id="never").update(trigger=NEVER_AGREE)
    clock = time.perf_counter()
    jobs = store.get_due_jobs(now + timedelta(seconds=1))
    assert time.perf_counter() - clock < 5
    assert [job.id for job in jobs] == ["healthy"]
    assert "no fire time in common" in Job.objects.get(id="never").load_error
