"""The demo project (``demo/``, run by ``scripts/demo.sh``) passes its checks, seeds its jobs
idempotently, and its scheduler runs them and records them in the ledger; ``scripts/demo.sh``
itself stops cleanly on Ctrl-C and reports a crash.

Everything runs in subprocesses against a temporary SQLite file (``DEMO_DB_PATH``), so these
tests need no test database.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.process_helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "demo" / "manage.py"
DEMO_SH = ROOT / "scripts" / "demo.sh"
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


# -- scripts/demo.sh as a user runs it -----------------------------------------------------------


@dataclass
class DemoScript:
    """``bash scripts/demo.sh`` in a session of its own, as a terminal runs it."""

    popen: subprocess.Popen[bytes]
    out_path: Path

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def pid(self, label: str) -> int:
        """The pid the banner shows for ``label`` ("Scheduler" or "Web server")."""
        match = re.search(rf"^  {label} pid (\d+)", self.output(), re.M)
        assert match, f"no {label} pid in the banner:\n{self.output()}"
        return int(match.group(1))

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.popen.poll() is None, f"demo.sh exited early:\n{self.output()}"
            assert time.monotonic() < deadline, f"no {text!r} within {timeout}s:\n{self.output()}"
            time.sleep(0.2)

    def ctrl_c(self) -> None:
        """What a terminal does on Ctrl-C: SIGINT to the script's whole process group."""
        os.killpg(self.popen.pid, signal.SIGINT)

    def wait(self) -> int:
        try:
            return self.popen.wait(60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"demo.sh did not exit within 60 s:\n{self.output()}")


def _sigint_as_in_a_terminal() -> None:
    # A shell starts a foreground script with SIGINT at its default, whatever ours is.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _is_demo_process(pid: int) -> bool:
    try:
        return b"demo/manage.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.fixture
def demo_script(tmp_path: Path) -> Iterator[DemoScript]:
    env = {
        **os.environ,
        "DEMO_PYTHON": sys.executable,
        "DEMO_DB_PATH": str(tmp_path / "demo.sqlite3"),
        "DEMO_LOG": str(tmp_path / "scheduler.log"),
        "DEMO_ADMIN_PASSWORD": "demo-test",
        "PORT": str(free_port()),
    }
    out_path = tmp_path / "demo.out"
    with out_path.open("wb") as out:
        popen = subprocess.Popen(
            ["bash", str(DEMO_SH)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_sigint_as_in_a_terminal,
        )
    script = DemoScript(popen, out_path)
    try:
        script.wait_for("demo is running", timeout=120)
        yield script
    finally:
        pids = [int(pid) for pid in re.findall(r"^  \S+(?: \S+)? pid (\d+)", script.output(), re.M)]
        if popen.poll() is None:
            os.killpg(popen.pid, signal.SIGKILL)
            popen.wait(10)
        for pid in pids:  # the scheduler runs in a session of its own
            if _is_demo_process(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.processes
def test_ctrl_c_stops_the_demo_cleanly(demo_script: DemoScript) -> None:
    demo_script.wait_for("heartbeat: alive", timeout=30)  # the job's own log line is shown
    children = [demo_script.pid("Scheduler"), demo_script.pid("Web server")]

    demo_script.ctrl_c()
    code = demo_script.wait()

    out = demo_script.output()
    assert code == 0, out
    for line in (
        "Ctrl-C: stopping the demo.",
        "The web server stopped.",
        "Scheduler stopped: received SIGTERM",
        "The scheduler stopped.",
        "The demo has stopped.",
    ):
        assert line in out
    assert "exited with status" not in out
    assert not [pid for pid in children if _is_demo_process(pid)]


@pytest.mark.processes
@pytest.mark.parametrize(
    ("crashed", "other"), [("Scheduler", "web server"), ("Web server", "scheduler")]
)
def test_a_crash_is_reported_with_its_status(
    demo_script: DemoScript, crashed: str, other: str
) -> None:
    os.kill(demo_script.pid(crashed), signal.SIGKILL)
    code = demo_script.wait()

    out = demo_script.output()
    assert code == 1, out
    assert f"The {crashed.lower()} had exited on its own with status 137." in out
    assert f"The {other} stopped." in out
    assert "The demo stopped with errors (exit status 1)" in out
