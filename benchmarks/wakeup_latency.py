"""Wake-up latency: from a job being added in one process to its run starting in another.

    CLOCKWORK_TEST_DB=postgres /tmp/venv311/bin/python benchmarks/wakeup_latency.py --runs 50

(from the repository root; ``--db sqlite,postgres,mariadb`` is the default: every database,
one after the other, in one run; ``CLOCKWORK_TEST_DB`` is set per database by the script).

For each database it creates its own database (PostgreSQL and MariaDB: ``clockwork_bench``,
dropped first if a previous run left it; SQLite: a file in a temporary directory), migrates
it, starts ONE ``runscheduler`` process on it (``POLL_INTERVAL`` 1 s, the library default,
unless ``--poll-interval`` says otherwise), and then, ``--runs`` times: waits a random
0..POLL_INTERVAL seconds (so that every phase of the scheduler's poll is sampled), adds a
one-off job due now with ``django_clockwork.api.add_job`` from this process, and measures
from ``add_job`` returning to the ``started_at`` the scheduler wrote in the ledger for that
run (both clocks are this machine's). It then stops the scheduler and drops the database.

On PostgreSQL a NOTIFY wakes the scheduler at once; elsewhere it sees the job at its next
poll, so the expected median there is about POLL_INTERVAL / 2. The table gives, per
database: runs, median, 95th percentile, max, and the median divided by PostgreSQL's.
Each database runs in a child process of this script (Django is configured once per process).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATABASES = ("sqlite", "postgres", "mariadb")
BENCH_NAME = "clockwork_bench"
RESULT = "RESULT "


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="measured adds per database")
    parser.add_argument(
        "--db",
        default=",".join(DATABASES),
        help="comma-separated databases to measure, in order (default: all three)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        help="the scheduler's POLL_INTERVAL in seconds (default 1.0, the library default)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the random waits")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.runs, args.poll_interval, args.seed)

    databases = [name.strip() for name in args.db.split(",") if name.strip()]
    unknown = set(databases) - set(DATABASES)
    if unknown:
        parser.error(f"unknown database(s) {sorted(unknown)}; choose from {DATABASES}")
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    print(
        f"wake-up latency: add_job() returning -> run started, 1 scheduler process, "
        f"POLL_INTERVAL {args.poll_interval}s, {args.runs} runs per database, seed {seed}",
        flush=True,
    )
    results = {}
    for database in databases:
        print(f"... {database}", flush=True)
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                database,
                "--runs",
                str(args.runs),
                "--poll-interval",
                str(args.poll_interval),
                "--seed",
                str(seed),
            ],
            cwd=ROOT,
            env={**os.environ, "CLOCKWORK_TEST_DB": database},
            stdout=subprocess.PIPE,
            text=True,
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
        if done.returncode != 0 or not lines:
            print(f"{database}: failed (exit {done.returncode})\n{done.stdout}", file=sys.stderr)
            continue
        results[database] = json.loads(lines[-1][len(RESULT) :])
    print_table(results)
    return 0 if len(results) == len(databases) else 1


def print_table(results: dict[str, list[float]]) -> None:
    base = statistics.median(results["postgres"]) if "postgres" in results else None
    print()
    print(f"{'database':<10} {'runs':>5} {'median':>9} {'p95':>9} {'max':>9} {'vs PostgreSQL':>14}")
    for database, delays in results.items():
        ordered = sorted(delays)
        median = statistics.median(ordered)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        ratio = f"{median / base:.1f}x" if base else "-"
        print(
            f"{database:<10} {len(ordered):>5} {median * 1000:>7.1f}ms {p95 * 1000:>7.1f}ms "
            f"{ordered[-1] * 1000:>7.1f}ms {ratio:>14}"
        )


# -- one database, in a child process ----------------------------------------------------------


def child(database: str, runs: int, poll_interval: float, seed: int | None) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="clockwork-bench-"))
    name = str(workdir / "bench.sqlite3") if database == "sqlite" else BENCH_NAME
    os.environ.update(
        {
            "CLOCKWORK_TEST_DB": database,
            "CLOCKWORK_TEST_DB_NAME": name,
            "CLOCKWORK_TEST_SETTINGS": json.dumps({"POLL_INTERVAL": poll_interval}),
            "DJANGO_SETTINGS_MODULE": "tests.settings",
        }
    )
    sys.path[:0] = [str(ROOT), str(ROOT / "src")]
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    scheduler = None
    try:
        create_database(connection, database, name)
        connection.close()
        call_command("migrate", verbosity=0)
        scheduler = start_scheduler(workdir)
        delays = measure(runs, poll_interval, random.Random(seed))
        print(RESULT + json.dumps(delays), flush=True)
        return 0
    finally:
        if scheduler is not None:
            stop_scheduler(scheduler)
        connection.close()
        drop_database(connection, database, name)
        shutil.rmtree(workdir, ignore_errors=True)


def create_database(connection: Any, database: str, name: str) -> None:
    if database == "sqlite":
        return  # the file is created on first use
    drop_database(connection, database, name)
    with connection._nodb_cursor() as cursor:
        charset = " CHARACTER SET utf8mb4" if database == "mariadb" else ""
        cursor.execute(f"CREATE DATABASE {BENCH_NAME}{charset}")


def drop_database(connection: Any, database: str, name: str) -> None:
    if database == "sqlite":
        Path(name).unlink(missing_ok=True)
        return
    with connection._nodb_cursor() as cursor:
        force = " WITH (FORCE)" if database == "postgres" else ""
        cursor.execute(f"DROP DATABASE IF EXISTS {BENCH_NAME}{force}")


def start_scheduler(workdir: Path) -> subprocess.Popen[bytes]:
    log_path = workdir / "scheduler.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "tests/manage.py", "runscheduler", "-v", "1"],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while "Scheduler started" not in log_path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_scheduler(process)
            raise RuntimeError("the scheduler did not start:\n" + log_path.read_text())
        time.sleep(0.05)
    return process


def stop_scheduler(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def measure(runs: int, poll_interval: float, rng: random.Random) -> list[float]:
    from django.utils import timezone

    from django_clockwork import api
    from django_clockwork.models import JobExecution

    delays = []
    for n in range(-3, runs):  # 3 warm-up runs, not counted
        time.sleep(rng.uniform(0, poll_interval))
        job_id = f"bench-{n + 3}"
        api.add_job("tests.jobs:noop", "date", run_date=timezone.now(), id=job_id)
        returned = timezone.now()
        deadline = time.monotonic() + 10 + 2 * poll_interval
        while True:
            started = (
                JobExecution.objects.filter(job_id=job_id, started_at__isnull=False)
                .values_list("started_at", flat=True)
                .first()
            )
            if started is not None:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{job_id} did not start within the deadline")
            time.sleep(0.02)
        if n >= 0:
            delays.append((started - returned).total_seconds())
    return delays


if __name__ == "__main__":
    sys.exit(main())
