"""Claim-and-advance: each run time is handed to exactly one scheduler."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from unittest import mock

import pytest
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from django.db import OperationalError, connection
from django.utils import timezone

from django_clockwork import DjangoJobStore, jobstore
from django_clockwork.models import ExecutionStatus, Job, JobExecution
from django_clockwork.sqlrows import can_batch

from .conftest import MakeJob, utc

pytestmark = pytest.mark.django_db

EVERY_MINUTE = IntervalTrigger(minutes=1, start_date=utc(2030, 1, 1), timezone="UTC")


def claim_pass(store: DjangoJobStore, now):  # type: ignore[no-untyped-def]
    """One scheduler pass: claim, then write back as BaseScheduler._process_jobs does."""
    jobs = store.get_due_jobs(now)
    for job in jobs:
        run_times = job._get_run_times(now)
        run_times = run_times[-1:] if job.coalesce else run_times
        if not run_times:
            continue
        next_time = job.trigger.get_next_fire_time(run_times[-1], now)
        if next_time:
            job._modify(next_run_time=next_time)
            store.update_job(job)
        else:
            store.remove_job(job.id)
    store.get_next_run_time()
    return jobs


def test_claim_advances_row_and_writes_ledger(store: DjangoJobStore, make_job: MakeJob) -> None:
    store.add_job(make_job("tick", trigger=EVERY_MINUTE))
    jobs = claim_pass(store, utc(2030, 1, 1, 0, 0, 30))
    assert [job.id for job in jobs] == ["tick"]
    assert jobs[0]._clockwork_claim.run_times == (utc(2030, 1, 1),)
    row = Job.objects.get(id="tick")
    assert (row.next_run_time, row.version) == (utc(2030, 1, 1, 0, 1), 2)
    execution = JobExecution.objects.get()
    assert (execution.job_id, execution.scheduled_run_time) == ("tick", utc(2030, 1, 1))
    assert execution.status == ExecutionStatus.SCHEDULED
    assert claim_pass(store, utc(2030, 1, 1, 0, 0, 30)) == []


def test_second_scheduler_gets_nothing(scheduler, make_job: MakeJob) -> None:  # type: ignore[no-untyped-def]
    first, second = DjangoJobStore(), DjangoJobStore()
    first.start(scheduler, "default")
    second.start(scheduler, "default")
    first.add_job(make_job("tick", trigger=EVERY_MINUTE))
    now = utc(2030, 1, 1, 0, 0, 1)
    assert len(claim_pass(first, now)) == 1
    assert claim_pass(second, now) == []
    assert JobExecution.objects.count() == 1


def test_scheduler_write_back_does_not_undo_claim(store: DjangoJobStore, make_job: MakeJob) -> None:
    store.add_job(make_job("tick", trigger=EVERY_MINUTE))
    (job,) = store.get_due_jobs(utc(2030, 1, 1, 0, 3, 30))
    job._modify(next_run_time=utc(2029, 1, 1))  # whatever the scheduler computes: ignored
    store.update_job(job)
    assert Job.objects.get(id="tick").next_run_time == utc(2030, 1, 1, 0, 4)


@pytest.mark.parametrize("coalesce", [True, False])
def test_missed_runs_follow_coalesce(
    store: DjangoJobStore, make_job: MakeJob, coalesce: bool
) -> None:
    """00:00-00:02 are older than the 60 s grace time at 00:03:30; 00:03 is not. Coalesced,
    the backlog runs once (as 00:03); else the three late ones are one ``missed`` row."""
    store.add_job(make_job("tick", trigger=EVERY_MINUTE, coalesce=coalesce, misfire_grace_time=60))
    (job,) = claim_pass(store, utc(2030, 1, 1, 0, 3, 30))
    assert job._clockwork_claim.run_times == (utc(2030, 1, 1, 0, 3),)
    rows = list(JobExecution.objects.order_by("scheduled_run_time"))
    assert rows[-1].scheduled_run_time == utc(2030, 1, 1, 0, 3)
    assert rows[-1].status == ExecutionStatus.SCHEDULED
    if coalesce:
        assert len(rows) == 1
    else:
        assert len(rows) == 2
        assert rows[0].status == ExecutionStatus.MISSED
        assert rows[0].scheduled_run_time == utc(2030, 1, 1)
        assert rows[0].exception.startswith(
            "Missed 3 run time(s) from 2030-01-01 00:00:00+00:00 to 2030-01-01 00:02:00+00:00"
        )
    assert Job.objects.get(id="tick").next_run_time == utc(2030, 1, 1, 0, 4)


def test_one_off_job_is_finished_not_deleted(store: DjangoJobStore, make_job: MakeJob) -> None:
    store.add_job(make_job("once", trigger=DateTrigger(utc(2030, 1, 1))))
    assert len(claim_pass(store, utc(2030, 1, 1, 0, 0, 1))) == 1
    row = Job.objects.get(id="once")
    assert row.next_run_time is None
    assert row.finished_at is not None
    assert store.lookup_job("once") is None
    assert store.get_all_jobs() == []
    assert store.get_next_run_time() is None
    # The id can be used again, like after APScheduler removes a finished job.
    store.add_job(make_job("once", trigger=DateTrigger(utc(2031, 1, 1))))
    assert Job.objects.get(id="once").finished_at is None


def test_ledger_is_a_second_fence(store: DjangoJobStore, make_job: MakeJob) -> None:
    store.add_job(make_job("tick", trigger=EVERY_MINUTE))
    JobExecution.objects.create(job_id="tick", scheduled_run_time=utc(2030, 1, 1))
    (job,) = claim_pass(store, utc(2030, 1, 1, 0, 0, 1))
    assert job._clockwork_claim.run_times == ()
    assert JobExecution.objects.count() == 1


def test_stale_copy_does_not_restore_old_next_run_time(
    store: DjangoJobStore, make_job: MakeJob
) -> None:
    store.add_job(make_job("tick", func="tests.jobs:echo", trigger=EVERY_MINUTE))
    stale = store.lookup_job("tick")  # read by a web process at version 1
    claim_pass(store, utc(2030, 1, 1, 0, 0, 1))  # a scheduler fires 00:00 and advances
    stale._modify(args=(42,))
    store.update_job(stale)
    row = Job.objects.get(id="tick")
    assert row.args == [42]
    assert row.next_run_time == utc(2030, 1, 1, 0, 1)
    assert claim_pass(store, utc(2030, 1, 1, 0, 0, 2)) == []


def test_stale_copy_that_reschedules_wins(store: DjangoJobStore, make_job: MakeJob) -> None:
    store.add_job(make_job("tick", trigger=EVERY_MINUTE))
    stale = store.lookup_job("tick")
    claim_pass(store, utc(2030, 1, 1, 0, 0, 1))
    stale._modify(next_run_time=None)  # paused by a user
    store.update_job(stale)
    assert Job.objects.get(id="tick").next_run_time is None


@pytest.mark.parametrize(
    ("new_trigger", "expected_next"),
    [
        (EVERY_MINUTE, utc(2030, 1, 1, 0, 1)),
        (IntervalTrigger(minutes=5, start_date=utc(2030, 1, 1), timezone="UTC"), utc(2030, 1, 1)),
    ],
)
def test_replace_existing_keeps_time_unless_trigger_changed(
    store: DjangoJobStore,
    make_job: MakeJob,
    new_trigger,
    expected_next,  # type: ignore[no-untyped-def]
) -> None:
    store.add_job(make_job("tick", trigger=EVERY_MINUTE))
    claim_pass(store, utc(2030, 1, 1, 0, 0, 1))
    store.update_job(make_job("tick", trigger=new_trigger, next_run_time=utc(2030, 1, 1)))
    assert Job.objects.get(id="tick").next_run_time == expected_next


def test_nothing_handed_out_after_shutdown(store: DjangoJobStore, make_job: MakeJob) -> None:
    store.add_job(make_job("tick", trigger=EVERY_MINUTE))
    store.shutdown()
    assert store.get_due_jobs(utc(2030, 1, 2)) == []
    assert store.get_next_run_time() is None
    assert Job.objects.get(id="tick").next_run_time == utc(2030, 1, 1)
    assert not JobExecution.objects.exists()


def test_next_run_time_capped_at_poll_interval(scheduler, make_job: MakeJob) -> None:  # type: ignore[no-untyped-def]
    store = DjangoJobStore(poll_interval=2.0)
    store.start(scheduler, "default")
    before = timezone.now()
    cap = store.get_next_run_time()
    assert before + timedelta(seconds=2) <= cap <= timezone.now() + timedelta(seconds=2)
    store.add_job(make_job("soon", trigger=DateTrigger(before + timedelta(seconds=1))))
    assert store.get_next_run_time() == before + timedelta(seconds=1)


def test_next_run_time_never_raises(scheduler, caplog) -> None:  # type: ignore[no-untyped-def]
    store = DjangoJobStore(poll_interval=None)
    store.start(scheduler, "default")
    before = timezone.now()
    with mock.patch.object(store, "_rows", side_effect=OperationalError("server closed")):
        answer = store.get_next_run_time()
    assert answer >= before + timedelta(seconds=store.retry_interval)
    assert "Could not read the next run time" in caplog.text


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"func": "tests.moved_away:noop"}, "could not import module"),
        ({"func": "not a reference"}, "is not a reference of the form 'package.module:qualname'"),
        ({"trigger": {"type": "cron", "minute": "99"}}, "SerializationError"),
        ({"trigger": {"type": "fortnightly"}}, "unknown trigger type"),
        ({"args": "not-a-list"}, "args must be a JSON list"),
        ({"executor": "gpu"}, "no executor named 'gpu'"),
    ],
)
def test_broken_row_is_skipped_flagged_and_kept(
    store: DjangoJobStore,
    make_job: MakeJob,
    caplog,
    change,
    error,  # type: ignore[no-untyped-def]
) -> None:
    store.add_job(make_job("broken", trigger=EVERY_MINUTE))
    store.add_job(make_job("healthy", trigger=EVERY_MINUTE))
    Job.objects.filter(id="broken").update(**change)
    with caplog.at_level(logging.ERROR, logger="django_clockwork"):
        jobs = claim_pass(store, utc(2030, 1, 1, 0, 0, 1))
        assert [job.id for job in jobs] == ["healthy"]
        claim_pass(store, utc(2030, 1, 1, 0, 1, 1))
    row = Job.objects.get(id="broken")
    assert error in row.load_error
    assert caplog.text.count("'broken' cannot be loaded") == 1
    assert row.next_run_time == utc(2030, 1, 1)
    # Its (past) time must not make the scheduler spin: only healthy jobs count.
    store.poll_interval = None
    assert store.get_next_run_time() == utc(2030, 1, 1, 0, 2)
    assert not JobExecution.objects.filter(job_id="broken").exists()


def test_fixed_row_is_picked_up_again(
    store: DjangoJobStore, make_job: MakeJob, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    store.add_job(make_job("broken", trigger=EVERY_MINUTE))
    Job.objects.filter(id="broken").update(func="tests.moved_away:noop")
    assert claim_pass(store, utc(2030, 1, 1, 0, 0, 1)) == []
    Job.objects.filter(id="broken").update(func="tests.jobs:noop")
    monkeypatch.setattr(jobstore, "BROKEN_RECHECK_SECONDS", 0.0)
    store.get_next_run_time()
    assert Job.objects.get(id="broken").load_error == ""
    assert [job.id for job in claim_pass(store, utc(2030, 1, 1, 0, 0, 2))] == ["broken"]


def test_the_recheck_finds_broken_rows_by_the_generated_column(
    store: DjangoJobStore, make_job: MakeJob
) -> None:
    for job_id in ("healthy", "flagged", "by-hand"):
        store.add_job(make_job(job_id, trigger=EVERY_MINUTE))
    Job.objects.filter(id="flagged").update(load_error="ImportError: gone")
    table = connection.ops.quote_name(Job._meta.db_table)
    with connection.cursor() as cursor:  # a hand edit: the database computes the column
        cursor.execute(f"UPDATE {table} SET load_error = %s WHERE id = %s", ["x", "by-hand"])
    query = str(Job.objects.broken().query)
    assert "broken" in query
    assert ("unlikely(" in query) == (connection.vendor == "sqlite")  # else SQLite may scan
    assert sorted(Job.objects.broken().values_list("id", flat=True)) == ["by-hand", "flagged"]
    Job.objects.filter(id="flagged").update(load_error="")
    assert list(Job.objects.broken().values_list("id", flat=True)) == ["by-hand"]


def test_claiming_many_jobs_takes_few_queries(
    scheduler, make_job: MakeJob, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    store = DjangoJobStore(batch_size=1000, poll_interval=None)
    store.node_id = "node-1"  # as create_scheduler() sets it: max_instances counted fleet-wide
    store.start(scheduler, "default")
    store.add_job(make_job("template", trigger=EVERY_MINUTE))
    template = Job.objects.get()
    Job.objects.bulk_create(
        Job(
            **{**{f.attname: getattr(template, f.attname) for f in Job._meta.fields}, "id": f"j{i}"}
        )
        for i in range(1, 1000)
    )
    # PostgreSQL and MariaDB: lock+select, 5 chunked UPDATEs, a ledger check, the fleet-wide
    # max_instances count, one INSERT, plus the savepoint pair of the test transaction;
    # PostgreSQL also marks the transaction as a claim (its updates notify nobody).
    # SQLite adds a due check, its write lock, a SELECT changes() after each UPDATE (Python's
    # sqlite3 gives no rowcount for WITH ... UPDATE), and splits the INSERT at its 999 bound
    # parameters.
    budget = {"sqlite": 36, "postgresql": 12}.get(connection.vendor, 11)
    with django_assert_max_num_queries(budget):
        jobs = store.get_due_jobs(utc(2030, 1, 1, 0, 0, 1))
    assert len(jobs) == 1000
    assert JobExecution.objects.count() == 1000
    assert not Job.objects.filter(next_run_time=utc(2030, 1, 1)).exists()


@pytest.mark.parametrize("declared_jobs", [True, False])
def test_the_claims_statement_selects_what_the_querysets_do(
    settings, store: DjangoJobStore, make_job: MakeJob, declared_jobs: bool
) -> None:  # type: ignore[no-untyped-def]
    """``select_due`` is one fixed statement (no ORM per claim): the rows, their order and
    every column's value are those of ``Job.objects.due(now).runnable(...)``, for rows due,
    not due, paused, finished, broken and declared in code, with equal due times."""
    from django_clockwork.claim import select_due
    from django_clockwork.rows import JOB_COLUMNS

    settings.CLOCKWORK = {**getattr(settings, "CLOCKWORK", {}), "DECLARED_JOBS": declared_jobs}
    now = utc(2030, 1, 1, 12)
    for n, job_id in enumerate(["b", "a", "c", "paused", "done", "broken", "code", "later"]):
        due = now - timedelta(minutes=1 if n < 2 else n)
        store.add_job(
            make_job(
                job_id,
                func="tests.jobs:echo",
                trigger=EVERY_MINUTE,
                next_run_time=now + timedelta(hours=1) if job_id == "later" else due,
                args=(n, {"k": [n]}),
                misfire_grace_time=None if n % 2 else 30,
                coalesce=bool(n % 2),
                max_instances=n + 1,
            )
        )
    Job.objects.filter(id="paused").update(next_run_time=None)
    Job.objects.filter(id="done").update(finished_at=now)
    Job.objects.filter(id="broken").update(load_error="ImportError: gone")
    Job.objects.filter(id="code").update(source="code")
    Job.objects.filter(id="c").update(long_running_after=2.5, task_options={"queue_name": "q"})
    expected = list(
        Job.objects.due(now)
        .runnable(declared_jobs=declared_jobs)
        .order_by("next_run_time", "id")
        .values_list(*JOB_COLUMNS)
    )
    assert [row[0] for row in expected] == [*(["code"] if declared_jobs else []), "c", "a", "b"]

    def read(limit: int) -> list[tuple[object, ...]]:
        # The trigger column stays text (jobstore.stored_trigger builds it once per text).
        rows = select_due("default", now, limit)
        return [tuple(row._replace(trigger=json.loads(row.trigger))) for row in rows]

    assert read(10) == expected
    assert read(2) == expected[:2]


def test_a_claim_of_many_due_runs_is_a_few_fixed_round_trips(
    store: DjangoJobStore, make_job: MakeJob
) -> None:
    """A node's claim reads (due rows and run-now requests, locked, then the unfinished runs
    on live nodes) and writes (advance, ledger rows): on PostgreSQL each group is one round
    trip to the server, one statement each elsewhere (SQLite adds its write lock and
    ``changes()``), whatever the number of rows."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from django_clockwork.models import SchedulerNode

    now = timezone.now()
    SchedulerNode.objects.create(
        id="n1", hostname="h", pid=1, version="x", started_at=now, last_heartbeat=now
    )
    store.node_id = "n1"
    store._claimer.ledger.node_id = "n1"

    def round_trips(count: int) -> int:
        Job.objects.all().delete()
        for n in range(count):
            due = timezone.now() - timedelta(seconds=1)
            store.add_job(make_job(f"j{n}", next_run_time=due, misfire_grace_time=None))
        with CaptureQueriesContext(connection) as claim:
            assert len(store.get_due_jobs(timezone.now())) == count
        return len(claim.captured_queries)

    # The test's transaction makes the claim's a savepoint: SAVEPOINT and RELEASE count too.
    # SQLite also reads the due rows before its write lock; MySQL/MariaDB look the ledger
    # keys up before inserting.
    expected = {"postgresql": 2, "mysql": 6, "sqlite": 8}[connection.vendor] + 2
    assert round_trips(3) == round_trips(40) == expected


def _store_with_room(
    scheduler: object, room: list[int], wants: list[bool], *, wants_runs: bool = True
) -> DjangoJobStore:
    """A store whose claims take at most ``room[0]`` runs, as our runtime's executor says."""
    store = DjangoJobStore(
        poll_interval=5,
        batch_size=3,
        capacity=lambda: room[0],
        wants_runs=(lambda: wants[0]) if wants_runs else None,
    )
    store.start(scheduler, "default")
    return store


def _due_jobs(store: DjangoJobStore, make_job: MakeJob, count: int) -> None:
    due = timezone.now() - timedelta(seconds=1)
    for n in range(count):
        store.add_job(make_job(f"due-{n}", next_run_time=due, misfire_grace_time=None))


def test_after_a_claim_that_took_all_it_could_the_next_run_time_needs_no_query(
    scheduler: object, make_job: MakeJob, django_assert_num_queries: object
) -> None:
    """A claim cut at the batch size leaves due rows: the next pass is now if the executor
    wants runs, else when it wakes the scheduler (the poll cap), without reading the table."""
    room, wants = [10], [True]
    store = _store_with_room(scheduler, room, wants)
    _due_jobs(store, make_job, 5)
    assert store.get_next_run_time() is not None  # the scheduler's first look at the table
    assert len(store.get_due_jobs(timezone.now())) == 3  # the batch size
    assert store.full
    assert not store.starved
    before = timezone.now()
    with django_assert_num_queries(0):  # type: ignore[operator]
        assert store.get_next_run_time() - before < timedelta(seconds=1)  # type: ignore[operator]
        wants[0] = False
        assert store.get_next_run_time() - before >= timedelta(seconds=5)  # type: ignore[operator]
    assert len(store.get_due_jobs(timezone.now())) == 2  # the rest; the claim is not full
    assert not store.full
    wants[0] = True
    assert store.get_next_run_time() is not None  # a look at the table again
    assert store.get_due_jobs(timezone.now()) == []


def test_a_full_claim_of_a_store_outside_our_runtime_reads_the_table(
    scheduler: object, make_job: MakeJob
) -> None:
    from django.test.utils import CaptureQueriesContext

    store = _store_with_room(scheduler, [10], [True], wants_runs=False)
    _due_jobs(store, make_job, 5)
    assert store.get_next_run_time() is not None
    assert len(store.get_due_jobs(timezone.now())) == 3
    with CaptureQueriesContext(connection) as looked:
        assert store.get_next_run_time() <= timezone.now()  # type: ignore[operator]
    assert looked.captured_queries


def test_a_claim_without_room_sends_nothing(
    scheduler: object, make_job: MakeJob, django_assert_num_queries: object
) -> None:
    room = [0]
    store = _store_with_room(scheduler, room, [False])
    _due_jobs(store, make_job, 2)
    with django_assert_num_queries(0):  # type: ignore[operator]
        assert store.get_due_jobs(timezone.now()) == []
    assert store.starved
    assert store.full
    room[0] = 5
    assert len(store.get_due_jobs(timezone.now())) == 2
    assert not store.starved
    assert not store.full


def test_a_job_restored_with_its_resolved_function_is_the_one_setstate_makes(
    store: DjangoJobStore, make_job: MakeJob
) -> None:
    """A claim resolves each row's function once (checked, allowed) and restores the job
    without APScheduler importing the reference again: the same job as ``__setstate__``'s."""
    from django_clockwork import aps
    from tests import jobs

    job = make_job(
        "same", "tests.jobs:echo", next_run_time=timezone.now(), args=[1], kwargs={"a": 2}
    )
    state = job.__getstate__()
    plain = aps.restore_job(jobstore.StoredJob, state, store)
    resolved = aps.restore_job(jobstore.StoredJob, state, store, jobs.echo)
    for name in (*aps._STATE_ATTRIBUTES, "func", "func_ref", "_scheduler", "_jobstore_alias"):
        assert getattr(resolved, name) == getattr(plain, name), name
    with pytest.raises(ValueError, match="version"):
        aps.restore_job(jobstore.StoredJob, {**state, "version": 2}, store, jobs.echo)


@pytest.mark.django_db(transaction=True)
def test_a_claim_on_its_own_transaction_commits_with_its_writes(
    store: DjangoJobStore, make_job: MakeJob
) -> None:
    """PostgreSQL: a claim that is the outermost transaction sends its COMMIT with the advance
    and the ledger rows (two round trips besides BEGIN); the atomic block's commit is a no-op."""
    from django.test.utils import CaptureQueriesContext

    if not can_batch(connection):
        pytest.skip("one round trip for several statements: PostgreSQL with psycopg 3")
    due = timezone.now() - timedelta(seconds=1)
    for n in range(3):
        store.add_job(make_job(f"c{n}", next_run_time=due, misfire_grace_time=None))
    with CaptureQueriesContext(connection) as claim:
        jobs = store.get_due_jobs(timezone.now())
    assert sorted(job.id for job in jobs) == ["c0", "c1", "c2"]
    # Django also logs its BEGIN and COMMIT; psycopg finds the transaction committed already.
    sent = [q["sql"] for q in claim.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
    assert len(sent) == 2
    assert sent[-1].rstrip().endswith("COMMIT")
    assert connection.get_autocommit()
    assert not connection.in_atomic_block
    assert set(Job.objects.values_list("version", flat=True)) == {2}
    assert JobExecution.objects.filter(status=ExecutionStatus.SCHEDULED).count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_claim_whose_advance_misses_a_row_commits_nothing(
    store: DjangoJobStore, make_job: MakeJob, caplog: pytest.LogCaptureFixture
) -> None:
    """The guard of the one-statement advance and insert: unless every row advanced, the
    statement fails and the claim rolls back whole (then it is retried at the next pass)."""
    from django_clockwork import claim

    if not can_batch(connection):
        pytest.skip("one round trip for several statements: PostgreSQL with psycopg 3")
    due = timezone.now() - timedelta(seconds=1)
    for n in range(2):
        store.add_job(make_job(f"g{n}", next_run_time=due, misfire_grace_time=None))
    real = claim.guarded_advance
    with (
        mock.patch.object(
            claim,
            "guarded_advance",
            lambda advance, insert, count: real(advance, insert, count + 1),
        ),
        caplog.at_level(logging.DEBUG, logger="django_clockwork.jobstore"),
    ):
        assert store.get_due_jobs(timezone.now()) == []
    assert "lost a race" in caplog.text
    assert set(Job.objects.values_list("version", flat=True)) == {1}
    assert not JobExecution.objects.exists()
    assert len(store.get_due_jobs(timezone.now())) == 2  # the next pass claims them
