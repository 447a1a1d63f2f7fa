"""The demo project (``demo/``, run by ``scripts/demo.sh``) passes its checks, seeds its jobs
idempotently, and its scheduler runs them and records them in the ledger.

Everything runs in subprocesses against a temporary SQLite file (``DEMO_DB_PATH``), so these
tests need no test database.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MANAGE = Path(__file__).resolve().parent.parent / "demo" / "manage.py"
EXPECTED_TRIGGERS = {
    "demo-report": "cron",
    "demo-heartbeat": "interval",
    "demo-fails": "interval",
    "demo-once": "date",
}
JOBS_SQL = "SELECT id, json_extract(trigger, '$.type'), func FROM django_clockwork_job"
FINISHED_RUNS_SQL = (
    "SELECT job_id, status, exception, traceback, duration FROM django_clockwork_jobexecution"
    " WHERE status IN ('succeeded', 'failed')"
)
Scheduler = tuple[subprocess.Popen[bytes], Path]


def demo_env(db_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",  # pytest-django set tests.settings
        "DEMO_DB_PATH": str(db_path),
        "PYTHONUNBUFFERED": "1",
    }


def manage(db_path: Path, *args: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, str(MANAGE), *args],
        env={**demo_env(db_path), **env},
        cwd=db_path.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def query(db_path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db_path, timeout=10) as connection:
        rows = connection.execute(sql).fetchall()
    connection.close()
    return rows


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db_path = tmp_path_factory.mktemp("demo-template") / "demo.sqlite3"
    manage(db_path, "migrate", "--verbosity", "0")
    return db_path


@pytest.fixture
def db_path(migrated_template: Path, tmp_path: Path) -> Path:
    """A freshly migrated demo database of this test's own."""
    path = tmp_path / "demo.sqlite3"
    shutil.copyfile(migrated_template, path)
    return path


def test_demo_project_passes_its_checks(tmp_path: Path) -> None:
    out = manage(tmp_path / "unused.sqlite3", "check", "--fail-level", "WARNING")

    assert "no issues" in out


def test_seed_demo_is_idempotent(db_path: Path) -> None:
    first = manage(db_path, "seed_demo")
    second = manage(db_path, "seed_demo", "--start-now")

    rows = query(db_path, JOBS_SQL)
    assert {job_id: kind for job_id, kind, _func in rows} == EXPECTED_TRIGGERS
    assert all(func.startswith("demo_app.jobs:") for _id, _kind, func in rows)
    assert "Seeded 4 demo jobs." in first
    assert "Seeded 4 demo jobs." in second


def test_demo_admin_creates_then_resets_the_superuser(db_path: Path) -> None:
    manage(db_path, "demo_admin", DEMO_ADMIN_PASSWORD="first-password")
    out = manage(db_path, "demo_admin", DEMO_ADMIN_PASSWORD="second-password")

    check = (
        "from django.contrib.auth import authenticate; "
        "print(authenticate(username='admin', password='second-password').is_superuser)"
    )
    assert manage(db_path, "shell", "--verbosity", "0", "--command", check).strip() == "True"
    assert "password reset" in out
    assert query(db_path, "SELECT count(*) FROM auth_user") == [(1,)]


@pytest.fixture
def scheduler_process(db_path: Path, tmp_path: Path) -> Iterator[Scheduler]:
    log_path = tmp_path / "scheduler.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(MANAGE), "runscheduler"],
            env=demo_env(db_path),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process, log_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def wait_for_runs(db_path: Path, scheduler: Scheduler) -> dict[tuple[str, str], Any]:
    """Poll the ledger until the heartbeat succeeded and the failing job failed."""
    process, log_path = scheduler
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, f"runscheduler exited:\n{log_path.read_text()}"
        rows = query(db_path, FINISHED_RUNS_SQL)
        runs = {(job_id, status): (exc, tb, duration) for job_id, status, exc, tb, duration in rows}
        if ("demo-heartbeat", "succeeded") in runs and ("demo-fails", "failed") in runs:
            return runs
        time.sleep(0.25)
    pytest.fail(f"no finished runs within 30 s; scheduler log:\n{log_path.read_text()}")


@pytest.mark.processes
def test_runscheduler_runs_the_demo_jobs_and_stops_on_sigterm(
    db_path: Path, scheduler_process: Scheduler
) -> None:
    # The scheduler is already running: it sees the new jobs at its next poll.
    manage(db_path, "seed_demo", "--start-now")
    process, log_path = scheduler_process

    runs = wait_for_runs(db_path, scheduler_process)
    process.send_signal(signal.SIGTERM)
    returncode = process.wait(timeout=30)

    exception, traceback, _duration = runs["demo-fails", "failed"]
    assert exception == (
        "DemoFailure: This demo job fails on purpose; see its traceback in the admin."
    )
    assert "always_fails" in traceback
    assert runs["demo-heartbeat", "succeeded"][2] is not None
    log = log_path.read_text()
    assert returncode == 0, log
    assert "heartbeat: alive" in log
    assert "Scheduler stopped: received SIGTERM" in log
