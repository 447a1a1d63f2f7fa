"""The admin with a big ledger: ms per request of the scheduler's pages, 1M ledger rows.

The rows are generated in the database (1,000 jobs x 1,000 runs, 1 % failed); one job row
exists for its page. A superuser requests through Django's test ``Client``: the history
changelist, filtered by status, by one job, by one day (the date hierarchy), by trigger
source, and searched by job id; that job's page, the job list and the scheduler nodes page.
Each page is requested once to warm up, then R times; every answer must be 200.
"""

from __future__ import annotations

import time

from benchmarks.harness import BenchmarkError, Context, Measure, log, now
from benchmarks.targets import Spec

TABLE = "django_clockwork_jobexecution"
COLUMNS = (
    "job_id, job_name, func, scheduled_run_time, status, trigger_source, claimed_at, "
    "started_at, finished_at, duration, exception, traceback, hostname, pid, node_id, "
    "warning, requested_by"
)
# n -> one ledger row; {job} and {ts} are each database's spelling of the job id and the time.
ROW = (
    "SELECT {job}, {job}, 'benchmarks.jobs:hit', {ts}, "
    "CASE WHEN n % 100 = 0 THEN 'failed' ELSE 'succeeded' END, 'schedule', {ts}, {ts}, {ts}, "
    "0.01, CASE WHEN n % 100 = 0 THEN 'RuntimeError: failed' ELSE '' END, '', 'bench', 1, 'bench', "
    "'', ''"
)
PAGES = {
    "history changelist": "/admin/django_clockwork/jobexecution/",
    "history, failed only": "/admin/django_clockwork/jobexecution/?status__exact=failed",
    "history of one job": "/admin/django_clockwork/jobexecution/?job_id=job-7",
    "history, one day": "/admin/django_clockwork/jobexecution/?scheduled_run_time__year=2026"
    "&scheduled_run_time__month=1&scheduled_run_time__day=5",
    "history, run-now only": "/admin/django_clockwork/jobexecution/?trigger_source__exact=run-now",
    "history, search by job id": "/admin/django_clockwork/jobexecution/?q=job-7",
    "one job's page": "/admin/django_clockwork/job/job-7/change/",
    "job list": "/admin/django_clockwork/job/",
    "scheduler nodes": "/admin/django_clockwork/schedulernode/",
}


def _other_columns() -> tuple[str, str]:
    """The ledger's columns that :data:`COLUMNS` does not name (added by later releases), with
    their defaults as SQL: a new column cannot break the seeding again."""
    from django_clockwork.models import JobExecution

    named = {name.strip() for name in COLUMNS.split(",")}
    columns, values = [], []
    for field in JobExecution._meta.concrete_fields:
        if field.primary_key or field.column in named:
            continue
        default = field.get_default()
        if default is None:
            if not field.null:
                raise BenchmarkError(f"admin workload: no value for ledger column {field.column}")
            values.append("NULL")
        elif isinstance(default, str):
            values.append("'" + default.replace("'", "''") + "'")
        else:
            values.append(str(default))
        columns.append(field.column)
    return "".join(f", {c}" for c in columns), "".join(f", {v}" for v in values)


def generate(rows: int) -> None:
    """Insert ``rows`` ledger rows with one statement, then update the planner's statistics."""
    from django.db import connection

    extra_columns, extra_values = _other_columns()
    columns = COLUMNS + extra_columns
    row = ROW + extra_values
    vendor = connection.vendor
    if vendor == "postgresql":
        select = row.format(job="'job-' || (n % 1000)", ts="ts")
        sql = (
            f"INSERT INTO {TABLE} ({columns}) {select} FROM (SELECT n, TIMESTAMPTZ "
            f"'2026-01-01 00:00:00+00' + n * INTERVAL '1 second' AS ts "
            f"FROM generate_series(1, {rows}) AS n) AS s"
        )
        analyze = f"ANALYZE {TABLE}"
    elif vendor == "mysql":
        select = row.format(job="CONCAT('job-', n % 1000)", ts="ts")
        sql = (
            f"INSERT INTO {TABLE} ({columns}) {select} FROM (SELECT seq AS n, "
            f"TIMESTAMPADD(SECOND, seq, '2026-01-01 00:00:00') AS ts FROM seq_1_to_{rows}) AS s"
        )
        analyze = f"ANALYZE TABLE {TABLE}"
    else:
        select = row.format(
            job="'job-' || (n % 1000)", ts="datetime('2026-01-01', '+' || n || ' seconds')"
        )
        sql = (
            f"WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq "
            f"WHERE n < {rows}) INSERT INTO {TABLE} ({columns}) {select} FROM seq"
        )
        analyze = "ANALYZE"
    with connection.cursor() as cursor:
        cursor.execute(sql)
        cursor.execute(analyze)
        if vendor == "mysql":
            cursor.fetchall()


def run(context: Context) -> list[Measure]:
    from django.contrib.auth.models import User
    from django.test import Client

    from django_clockwork.models import JobExecution

    rows = 1_000 if context.smoke else 1_000_000
    requests = context.samples(10, smoke=2)
    ours = context.target("ours")
    log(f"  generating {rows:,} ledger rows")
    generate(rows)
    if JobExecution.objects.count() != rows:
        raise BenchmarkError(f"admin: {JobExecution.objects.count()} ledger rows, not {rows}")
    ours.scheduler()
    ours.seed([Spec("job-7", *_daily())])
    user = User.objects.create_superuser("bench", "bench@example.com", "bench")
    client = Client()
    client.force_login(user)
    values: dict[str, list[float]] = {}
    try:
        for page, url in PAGES.items():
            for n in range(requests + 1):
                started = time.perf_counter()
                response = client.get(url)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise BenchmarkError(f"admin {page}: HTTP {response.status_code}")
                if n:
                    values.setdefault(page, []).append(elapsed)
    finally:
        user.delete()
        ours.clear()
    return [
        Measure(f"admin, {rows:,} ledger rows: {page}", "ms per request", {"ours": ms}, False)
        for page, ms in values.items()
    ]


def _daily() -> tuple[object, object]:
    from datetime import timedelta

    from apscheduler.triggers.interval import IntervalTrigger

    start = now() + timedelta(days=1)
    return IntervalTrigger(days=1, start_date=start), start
