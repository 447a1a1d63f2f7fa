"""Real ``runscheduler`` processes sharing the test database.

These prove the promises that only real processes can: many schedulers on one database
fire each run time exactly once, shutdown is graceful (and forced when asked), and a
database outage is survived. Run times and exit codes are checked against the ledger
(``JobExecution``) and against the hits file ``tests.jobs.record_hit`` appends to, which
would show a run time executed twice (the ledger's unique key cannot).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from django_clockwork import api
from django_clockwork.models import ExecutionStatus, Job, JobExecution
from tests.process_helpers import SchedulerProcess, Schedulers, ledger_key, wait_until

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

ONE_SECOND = timedelta(seconds=1)
GRACEFUL = ("Stopping (SIGTERM)", "Scheduler stopped: received SIGTERM")


@pytest.fixture
def schedulers(
    transactional_db: None, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Schedulers]:
    """Starts scheduler processes on this test's database; kills them all at teardown.

    The processes' logs are printed when the test failed (pytest shows them in its report).
    """
    failed_before = request.session.testsfailed
    started = Schedulers(tmp_path, connection.settings_dict["NAME"])
    try:
        yield started
    finally:
        started.close()
        if request.session.testsfailed != failed_before:
            print(started.logs())
            print(describe_ledger())


def describe_ledger() -> str:
    """Every ledger row, with how late it was claimed and started (for failure reports)."""
    lines = ["===== ledger: job, scheduled, status, claimed +s, started +s, finished +s, pid ====="]
    for row in JobExecution.objects.order_by("scheduled_run_time", "job_id"):
        late = [
            f"{(t - row.scheduled_run_time).total_seconds():+.3f}" if t else "-"
            for t in (row.claimed_at, row.started_at, row.finished_at)
        ]
        lines.append(
            f"{row.job_id}\t{row.scheduled_run_time:%H:%M:%S}\t{row.status}\t"
            + "\t".join(late)
            + f"\t{row.pid}\t{row.exception[:120]}"
        )
    return "\n".join(lines)


def lateness(ids: list[str]) -> str:
    """How late runs started after their scheduled time: median, 95th percentile, max."""
    late = sorted(
        (started - scheduled).total_seconds()
        for scheduled, started in JobExecution.objects.filter(
            job_id__in=ids, started_at__isnull=False
        ).values_list("scheduled_run_time", "started_at")
    )
    if not late:
        return "no run started"
    p50, p95 = (late[min(len(late) - 1, int(q * len(late)))] for q in (0.5, 0.95))
    return f"start lateness p50 {p50:.3f}s p95 {p95:.3f}s max {late[-1]:.3f}s"


def add_interval_jobs(ids: list[str], lead: float) -> datetime:
    """Add 1 s interval jobs starting on the first whole second ``lead`` s from now.

    Returns that start time. A job added after its start would begin a second later
    (``add_job`` computes the first run from now), so adding must finish before it.
    """
    start = (timezone.now() + timedelta(seconds=lead)).replace(microsecond=0) + ONE_SECOND
    for job_id in ids:
        api.add_job(
            "tests.jobs:record_hit",
            "interval",
            seconds=1,
            start_date=start,
            id=job_id,
            coalesce=False,
            misfire_grace_time=30,
        )
    assert timezone.now() < start, f"adding {len(ids)} jobs took more than {lead}s"
    return start


def sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - timezone.now()).total_seconds()))


def run_times_by_job(ids: list[str]) -> dict[str, list[datetime]]:
    times: dict[str, list[datetime]] = defaultdict(list)
    for job_id, scheduled in (
        JobExecution.objects.filter(job_id__in=ids)
        .order_by("scheduled_run_time")
        .values_list("job_id", "scheduled_run_time")
    ):
        times[job_id].append(scheduled)
    return times


def assert_no_gaps(times: dict[str, list[datetime]], start: datetime) -> None:
    """Every job ran at ``start`` and then every second, none skipped."""
    for job_id, scheduled in times.items():
        assert scheduled[0] == start, (job_id, scheduled[0], start)
        gaps = [b - a for a, b in pairwise(scheduled) if b - a != ONE_SECOND]
        assert not gaps, f"{job_id}: run times not 1 s apart: {gaps} in {scheduled}"


def statuses(ids: list[str]) -> Counter[str]:
    return Counter(JobExecution.objects.filter(job_id__in=ids).values_list("status", flat=True))


def assert_stopped_gracefully(process: SchedulerProcess, code: int) -> None:
    log = process.log()
    assert code == 0, f"{process.name} exited with {code}"
    for line in GRACEFUL:
        assert line in log, f"{process.name} did not log {line!r}"
    errors = [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line]
    assert not errors, f"{process.name} logged errors:\n" + "\n".join(errors)


# -- many schedulers, one database -------------------------------------------------------------


def test_many_schedulers_fire_each_run_time_exactly_once(schedulers: Schedulers) -> None:
    count = 2 if connection.vendor == "sqlite" else 3
    processes = schedulers.start_many(count)
    ids = [f"j{i}" for i in range(40)]
    adding = time.monotonic()
    start = add_interval_jobs(ids, lead=3)
    adding = time.monotonic() - adding

    sleep_until(start + timedelta(seconds=6))
    first_signal = timezone.now()
    for process in processes:
        process.signal(signal.SIGTERM)
    last_signal = timezone.now()
    for process in processes:
        assert_stopped_gracefully(process, process.wait(40))

    rows = list(
        JobExecution.objects.filter(job_id__in=ids).values_list(
            "job_id", "scheduled_run_time", "status", "pid"
        )
    )
    hits = schedulers.hits()
    work = Counter(pid for _job, _ts, pid in hits)
    counts = Counter(status for _job, _t, status, _pid in rows)
    print(
        f"\n{connection.vendor}: {len(rows)} runs, {dict(counts)}, by {count} processes: "
        f"{dict(work)}; {lateness(ids)}; adding the jobs took {adding:.2f}s"
    )

    # Each run time ran at most once, in the process the ledger names.
    executed = Counter((job_id, ts) for job_id, ts, _pid in hits)
    twice = {key: n for key, n in executed.items() if n > 1}
    assert not twice, f"run times executed more than once: {twice}"
    ran_in = {(job_id, ts): pid for job_id, ts, pid in hits}
    succeeded = {
        ledger_key(job_id, t): pid for job_id, t, status, pid in rows if status == "succeeded"
    }
    assert ran_in == succeeded
    assert set(work) <= {process.pid for process in processes}

    # No run time was skipped over, and nothing stalled before the stop.
    times = run_times_by_job(ids)
    assert sorted(times) == sorted(ids)
    assert_no_gaps(times, start)
    for job_id, scheduled in times.items():
        assert first_signal - 2 * ONE_SECOND <= scheduled[-1] <= last_signal, (job_id, scheduled)

    # ... and each ran exactly once: none was skipped, missed or left unfinished.
    unfinished = [
        (job_id, f"{t:%H:%M:%S}", status) for job_id, t, status, _ in rows if status != "succeeded"
    ]
    assert not unfinished, f"{lateness(ids)}; not succeeded: {unfinished}"
    assert len(hits) == len(rows)
    if connection.vendor != "sqlite":
        assert len(work) > 1, f"one process did all the work: {dict(work)}"


# -- graceful and forced shutdown --------------------------------------------------------------


def add_sleeper(seconds: float) -> str:
    """A one-off job that sleeps ``seconds`` and then records a hit; returns its id."""
    api.add_job(
        "tests.jobs:sleep_then_hit",
        "date",
        run_date=timezone.now() + timedelta(seconds=0.3),
        args=[seconds],
        id="sleeper",
        misfire_grace_time=30,
    )
    wait_until(
        lambda: JobExecution.objects.filter(
            job_id="sleeper", status=ExecutionStatus.RUNNING
        ).exists(),
        15,
        "the sleeper to start running",
    )
    return "sleeper"


def sleeper_status() -> str:
    return JobExecution.objects.get(job_id="sleeper").status


def test_sigterm_waits_for_the_running_job(schedulers: Schedulers) -> None:
    process = schedulers.start_many(1)[0]
    add_sleeper(3)
    signalled = time.monotonic()
    process.signal(signal.SIGTERM)
    code = process.wait(20)
    waited = time.monotonic() - signalled

    assert_stopped_gracefully(process, code)
    assert waited > 1.5, f"exited {waited:.1f}s after SIGTERM, before the 3 s job could finish"
    assert sleeper_status() == ExecutionStatus.SUCCEEDED
    assert [job_id for job_id, _ts, _pid in schedulers.hits()] == ["sleeper"]


def test_second_sigterm_stops_at_once_and_abandons_the_run(schedulers: Schedulers) -> None:
    process = schedulers.start_many(1)[0]
    add_sleeper(60)
    process.signal(signal.SIGTERM)
    wait_until(lambda: "Stopping (SIGTERM)" in process.log(), 10, "the first SIGTERM to be handled")
    assert process.alive(), "the first SIGTERM must wait for the running job"
    signalled = time.monotonic()
    process.signal(signal.SIGTERM)
    code = process.wait(10)

    assert time.monotonic() - signalled < 5
    assert code != 0
    assert "Scheduler stopped at once (second signal (SIGTERM)); 1 run(s)" in process.log()
    assert sleeper_status() == ExecutionStatus.ABANDONED
    assert schedulers.hits() == []


def test_shutdown_timeout_abandons_a_job_that_runs_too_long(schedulers: Schedulers) -> None:
    process = schedulers.start_many(1, "--shutdown-timeout", "1")[0]
    add_sleeper(10)
    signalled = time.monotonic()
    process.signal(signal.SIGTERM)
    code = process.wait(10)
    took = time.monotonic() - signalled

    assert 0.9 <= took < 4, f"exited {took:.1f}s after SIGTERM with --shutdown-timeout 1"
    assert code != 0
    assert "shutdown timeout of 1.0s reached" in process.log()
    assert sleeper_status() == ExecutionStatus.ABANDONED
    assert schedulers.hits() == []


def test_second_sigterm_stops_at_once_while_the_claim_waits_on_a_lock(
    schedulers: Schedulers,
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("only psycopg runs Python signal handlers while a query waits")
    process = schedulers.start_many(1)[0]
    add_sleeper(60)
    api.add_job("tests.jobs:noop", "date", run_date=timezone.now() + ONE_SECOND, id="due")
    table = connection.ops.quote_name(JobExecution._meta.db_table)
    locker = connection.copy()
    try:
        with locker.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            wait_until(claim_waits_on_a_lock, 10, "the claim to wait on the lock")
            process.signal(signal.SIGTERM)
            wait_until(lambda: "Stopping (SIGTERM)" in process.log(), 10, "the first SIGTERM")
            process.signal(signal.SIGTERM)
            time.sleep(1)
            cursor.execute("ROLLBACK")
    finally:
        locker.close()
    code = process.wait(8)

    assert code != 0
    assert sleeper_status() == ExecutionStatus.ABANDONED


def claim_waits_on_a_lock() -> bool:
    """The claim waits on the history table's lock: taking run-now requests (SELECT ... FOR
    UPDATE) or inserting its ledger rows."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
            "AND wait_event_type = 'Lock' "
            "AND (query LIKE 'INSERT INTO%%' OR query LIKE 'SELECT%%FOR UPDATE SKIP LOCKED%%')",
            [connection.settings_dict["NAME"]],
        )
        return bool(cursor.fetchone()[0])


# -- the database goes away for a while --------------------------------------------------------


def cut_off_database(seconds: float) -> int:
    """Make the database unreachable for the scheduler for about ``seconds``.

    PostgreSQL: refuse new connections to the test database and kill the scheduler's,
    repeatedly. MariaDB: kill the scheduler's connections, repeatedly. SQLite: hold an
    exclusive lock (the scheduler's queries wait on the busy timeout). Returns how many
    connections were killed (SQLite: 1, the lock).
    """
    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        locker = sqlite3.connect(name, isolation_level=None, timeout=20)
        try:
            locker.execute("BEGIN EXCLUSIVE")
            time.sleep(seconds)
            locker.execute("ROLLBACK")
        finally:
            locker.close()
        return 1
    killed = 0
    deadline = time.monotonic() + seconds
    allow_connections(name, False)
    try:
        while time.monotonic() < deadline:
            killed += kill_other_connections(name)
            time.sleep(0.2)
    finally:
        allow_connections(name, True)
    return killed


def allow_connections(name: str, allow: bool) -> None:
    """PostgreSQL: let (or stop) new sessions connect to the test database."""
    if connection.vendor == "postgresql":
        # Not allowed from a session on that database: use the maintenance database.
        with connection._nodb_cursor() as cursor:
            cursor.execute(
                f"ALTER DATABASE {connection.ops.quote_name(name)} ALLOW_CONNECTIONS {allow}"
            )


def kill_other_connections(name: str) -> int:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
            return sum(1 for (done,) in cursor.fetchall() if done)
        cursor.execute(
            "SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()",
            [name],
        )
        killed = 0
        for (thread_id,) in cursor.fetchall():
            try:
                cursor.execute(f"KILL {int(thread_id)}")
            except Exception:  # gone already
                continue
            killed += 1
        return killed


#: How a run may end after an outage: a catch-up run still going when the next run time
#: comes makes that one ``skipped`` (max_instances=1), which the ledger records.
AFTER_OUTAGE = {ExecutionStatus.SUCCEEDED, ExecutionStatus.SKIPPED}


def test_scheduler_survives_the_database_going_away(schedulers: Schedulers) -> None:
    process = schedulers.start_many(1)[0]
    ids = [f"db{i}" for i in range(5)]
    start = add_interval_jobs(ids, lead=1)
    wait_until(
        lambda: statuses(ids)[ExecutionStatus.SUCCEEDED] >= 2 * len(ids),
        15,
        "jobs to run before the outage",
    )

    killed = cut_off_database(3)
    recovered = timezone.now()
    assert killed > 0, "the outage did not touch the scheduler"
    wait_until(
        lambda: (
            JobExecution.objects.filter(
                job_id__in=ids, status=ExecutionStatus.SUCCEEDED, scheduled_run_time__gt=recovered
            )
            .values("job_id")
            .distinct()
            .count()
            == len(ids)
        ),
        20,
        "every job to run again after the outage",
    )
    assert process.alive()
    assert Job.objects.filter(id__in=ids).count() == len(ids)

    process.signal(signal.SIGTERM)
    code = process.wait(40)
    assert code == 0, f"{process.name} exited with {code}"
    assert all(line in process.log() for line in GRACEFUL)
    counts = statuses(ids)
    print(f"\n{connection.vendor}: killed {killed}; ledger {dict(counts)}; {lateness(ids)}")
    assert set(counts) <= AFTER_OUTAGE, counts
    assert_no_gaps(run_times_by_job(ids), start)


# -- connections the server drops while idle ---------------------------------------------------


def test_scheduler_survives_mariadb_wait_timeout(schedulers: Schedulers) -> None:
    """MariaDB drops connections idle for wait_timeout (1 s here); the scheduler polls,
    heartbeats and runs jobs less often than that, so every use finds a dead connection."""
    if connection.vendor != "mysql":
        pytest.skip("wait_timeout is MariaDB's/MySQL's")
    schedulers.env["CLOCKWORK_TEST_MYSQL_WAIT_TIMEOUT"] = "1"
    schedulers.env["CLOCKWORK_TEST_SETTINGS"] = json.dumps(
        {"POLL_INTERVAL": 2.5, "HEARTBEAT_INTERVAL": 2.0, "NODE_TIMEOUT": 10}
    )
    ids = [f"idle{i}" for i in range(3)]
    start = (timezone.now() + timedelta(seconds=4)).replace(microsecond=0)
    for job_id in ids:
        api.add_job(
            "tests.jobs:record_hit",
            "interval",
            seconds=3,
            start_date=start,
            id=job_id,
            coalesce=False,
            misfire_grace_time=30,
        )
    (process,) = schedulers.start_many(1)
    sleep_until(start + timedelta(seconds=10))
    assert process.alive()
    process.signal(signal.SIGTERM)
    assert_stopped_gracefully(process, process.wait(30))

    times = run_times_by_job(ids)
    assert all(len(scheduled) >= 3 for scheduled in times.values()), times
    for job_id, scheduled in times.items():
        assert scheduled[0] == start, job_id
        assert {b - a for a, b in pairwise(scheduled)} == {timedelta(seconds=3)}, job_id
    assert statuses(ids) == {ExecutionStatus.SUCCEEDED: sum(len(t) for t in times.values())}
    assert len(schedulers.hits()) == sum(len(t) for t in times.values())
    assert "retrying in" in process.log()  # the dropped connections were met, and survived
