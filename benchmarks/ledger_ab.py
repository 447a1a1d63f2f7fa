"""The executor's ledger cost, A/B between git revisions: runs/s, statements, commits, connects.

    python benchmarks/ledger_ab.py --revs main,HEAD --db postgres --runs 2000 --rounds 5

(from the repository root, with the project's venv; ``--db sqlite,postgres,mariadb`` is the
default). Each revision's ``src/`` is extracted with ``git archive`` into a temporary
directory; then, per database, ``--rounds`` times, each revision in turn (interleaved, so
that machine drift cancels out) runs one child process that:

- empties the tables, adds ``--runs`` jobs (``tests.jobs:noop``) due now and claims them
  all with ``DjangoJobStore.get_due_jobs`` (the ledger rows are ``scheduled``, as after
  a claim), then
- starts a ``ClockworkExecutor`` with ``--workers`` threads (default 10), submits every
  claimed job, and times from the first submit until ``shutdown(wait=True)`` returns and
  every run is ``succeeded`` in the database.

During that timed phase it counts, on every connection of the process (a
``connection.execute_wrapper`` added to each new connection): SQL statements, commits
(an explicit ``COMMIT`` or a statement run in autocommit) and new connections. Settings
are the test project's (``tests/settings.py``), with Django's default ``CONN_MAX_AGE=0``.

The table prints, per database and revision: the median runs/s with min-max over the
rounds, statements, commits and connects per run, and the ratio of runs/s to the first
revision. PostgreSQL and MariaDB use a database ``clockwork_ledger_ab`` (dropped first if a
previous run left it, dropped at the end); SQLite a file in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATABASES = ("sqlite", "postgres", "mariadb")
BENCH_NAME = "clockwork_ledger_ab"
RESULT = "RESULT "


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--revs", default="main,HEAD", help="comma-separated git revisions")
    parser.add_argument("--db", default=",".join(DATABASES), help="comma-separated databases")
    parser.add_argument("--runs", type=int, default=2000, help="runs per round")
    parser.add_argument("--workers", type=int, default=10, help="executor threads")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per revision")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(RESULT + json.dumps(child(args.runs, args.workers)), flush=True)
        return 0
    revs = args.revs.split(",")
    with tempfile.TemporaryDirectory(prefix="ledger-ab-") as tmp:
        sources = {rev: extract(rev, Path(tmp) / f"rev{i}") for i, rev in enumerate(revs)}
        for db in args.db.split(","):
            report(db, revs, measure(db, sources, args, Path(tmp)))
    return 0


def extract(rev: str, target: Path) -> Path:
    target.mkdir()
    archive = subprocess.run(
        ["git", "archive", rev, "src"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "src"


def measure(
    db: str, sources: dict[str, Path], args: argparse.Namespace, tmp: Path
) -> dict[str, list[dict[str, float]]]:
    name = str(tmp / "ab.sqlite3") if db == "sqlite" else BENCH_NAME
    env = {**os.environ, "CLOCKWORK_TEST_DB": db, "CLOCKWORK_TEST_DB_NAME": name}
    recreate(db, name)
    subprocess.run(
        [sys.executable, "tests/manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env={**env, "PYTHONPATH": f"src{os.pathsep}."},
        check=True,
    )
    results: dict[str, list[dict[str, float]]] = {rev: [] for rev in sources}
    try:
        for _round in range(args.rounds):
            for rev, src in sources.items():
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        "1",
                        "--runs",
                        str(args.runs),
                        "--workers",
                        str(args.workers),
                    ],
                    cwd=ROOT,
                    env={**env, "PYTHONPATH": f"{src}{os.pathsep}."},
                    capture_output=True,
                    text=True,
                )
                if out.returncode:
                    raise RuntimeError(f"{rev} on {db} failed:\n{out.stderr}")
                line = next(x for x in out.stdout.splitlines() if x.startswith(RESULT))
                results[rev].append(json.loads(line[len(RESULT) :]))
    finally:
        drop(db, name)
    return results


def recreate(db: str, name: str) -> None:
    drop(db, name)
    if db == "postgres":
        _server_sql(db, f"CREATE DATABASE {name}")
    elif db == "mariadb":
        _server_sql(db, f"CREATE DATABASE {name} CHARACTER SET utf8mb4")


def drop(db: str, name: str) -> None:
    if db == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(name + suffix).unlink(missing_ok=True)
    else:
        _server_sql(db, f"DROP DATABASE IF EXISTS {name}")


def _server_sql(db: str, sql: str) -> None:
    if db == "postgres":
        import psycopg

        with psycopg.connect(
            host="127.0.0.1",
            user=os.environ.get("PGUSER", "root"),
            dbname="postgres",
            autocommit=True,
        ) as conn:
            conn.execute(sql)  # type: ignore[arg-type]
    else:
        import MySQLdb

        conn = MySQLdb.connect(host="127.0.0.1", user=os.environ.get("MYSQL_USER", "root"))
        conn.cursor().execute(sql)
        conn.close()


def report(db: str, revs: list[str], results: dict[str, list[dict[str, float]]]) -> None:
    print(f"\n{db}: {len(results[revs[0]])} rounds per revision, interleaved")
    print(
        "| revision | runs/s median (min-max) | statements/run | commits/run "
        "| connects/run | ratio |"
    )
    print("|---|---|---|---|---|---|")
    base = statistics.median(r["runs_per_s"] for r in results[revs[0]])
    for rev in revs:
        rounds = results[rev]
        rate = [r["runs_per_s"] for r in rounds]
        med = statistics.median(rate)
        per = {
            k: statistics.median(r[k] for r in rounds)
            for k in ("statements", "commits", "connects")
        }
        print(
            f"| {rev} | {med:,.0f} ({min(rate):,.0f}-{max(rate):,.0f}) | {per['statements']:.3f} "
            f"| {per['commits']:.3f} | {per['connects']:.3f} | x{med / base:.2f} |"
        )


# -- the child: one measured round on the revision in PYTHONPATH ------------------------------


def child(runs: int, workers: int) -> dict[str, float]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    import threading
    from datetime import datetime, timedelta, timezone

    from apscheduler.job import Job as APJob
    from apscheduler.triggers.date import DateTrigger
    from django.db import connection, connections
    from django.db.backends.signals import connection_created

    from django_clockwork import ClockworkExecutor, DjangoJobStore, create_scheduler
    from django_clockwork.models import Job, JobExecution

    JobExecution.objects.all().delete()
    Job.objects.all().delete()
    scheduler = create_scheduler()
    store = DjangoJobStore(poll_interval=None)
    store.start(scheduler, "default")
    due = datetime.now(timezone.utc) - timedelta(seconds=1)
    for i in range(runs):
        store.add_job(
            APJob(
                scheduler,
                id=f"ab-{i}",
                func="tests.jobs:noop",
                trigger=DateTrigger(due),
                next_run_time=due,
                executor="default",
                args=(),
                kwargs={},
                name=f"ab-{i}",
                misfire_grace_time=3600,
                coalesce=True,
                max_instances=1,
            )
        )
    claimed: list[Any] = []
    while batch := store.get_due_jobs(datetime.now(timezone.utc)):
        claimed.extend(batch)
    assert len(claimed) == runs, (len(claimed), runs)

    lock = threading.Lock()
    counts = {"statements": 0, "commits": 0, "connects": 0}

    def count(execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        wrapper = context["connection"]
        with lock:
            counts["statements"] += 1
            if not wrapper.in_atomic_block or sql.strip().upper() == "COMMIT":
                counts["commits"] += 1
        return execute(sql, params, many, context)

    def on_connect(sender: Any, connection: Any, **kwargs: Any) -> None:
        with lock:
            counts["connects"] += 1
        if count not in connection.execute_wrappers:
            connection.execute_wrappers.append(count)

    wrapper_class = type(connections["default"])
    original_commit = wrapper_class.commit

    def commit(self: Any) -> None:
        with lock:
            counts["commits"] += 1
        original_commit(self)

    wrapper_class.commit = commit  # explicit commits (atomic blocks) count too
    connection_created.connect(on_connect)
    connection.close()  # this thread's next statement counts too
    executor = ClockworkExecutor(max_workers=workers)
    executor.start(scheduler, "default")
    start = time.perf_counter()
    for job in claimed:
        executor.submit_job(job, job._get_run_times(datetime.now(timezone.utc)))
    executor.shutdown(wait=True)
    measured = dict(counts)
    while JobExecution.objects.filter(status="succeeded").count() < runs:
        if time.perf_counter() - start > 120:
            raise RuntimeError("runs did not all succeed")
        time.sleep(0.001)
    elapsed = time.perf_counter() - start
    connection_created.disconnect(on_connect)
    return {
        "runs_per_s": runs / elapsed,
        **{k: v / runs for k, v in measured.items()},
    }


if __name__ == "__main__":
    sys.exit(main())
