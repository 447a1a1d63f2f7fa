"""Start real ``runscheduler`` processes on the test database, and always stop them.

Each process runs ``tests/manage.py runscheduler`` from the repository root with the
environment of the test plus ``CLOCKWORK_TEST_DB_NAME`` (the database the test uses, so
that the process sees the rows the test commits) and ``CLOCKWORK_HITS`` (where
``tests.jobs.record_hit`` appends). Its output goes to log files under ``tmp_path``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: Logged by APScheduler once the scheduler's main loop is about to run.
READY = "Scheduler started"


def wait_until(condition: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout}s waiting for {what}")
        time.sleep(step)


@dataclass
class SchedulerProcess:
    """One ``runscheduler`` process and its log."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    started: float = field(default_factory=time.monotonic)
    exited: float | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if not self.alive():
                raise AssertionError(
                    f"{self.name} exited with {self.popen.returncode} before it was ready:\n"
                    + self.log()
                )
            return READY in self.log()

        wait_until(ready, timeout, f"{self.name} to log {READY!r}")

    def signal(self, signum: int = signal.SIGTERM) -> None:
        """Send a signal to this process (by its own pid only)."""
        if self.alive():
            os.kill(self.popen.pid, signum)

    def wait(self, timeout: float) -> int:
        """Wait for the exit; returns the exit code, fails (process left running) on timeout."""
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} (pid {self.pid}) did not exit within {timeout}s:\n{self.log()}"
            ) from None
        if self.exited is None:
            self.exited = time.monotonic()
        return code

    def kill(self) -> None:
        """SIGKILL if still running, and reap."""
        if self.popen.poll() is None:
            self.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(10)


class Schedulers:
    """Starts scheduler processes sharing the test database; ``close()`` kills what is left."""

    def __init__(self, tmp_path: Path, database_name: str) -> None:
        self.tmp_path = tmp_path
        self.hits_path = tmp_path / "hits.tsv"
        self.env = {
            **os.environ,
            "CLOCKWORK_TEST_DB_NAME": str(database_name),
            "CLOCKWORK_HITS": str(self.hits_path),
            "PYTHONUNBUFFERED": "1",
        }
        self.processes: list[SchedulerProcess] = []

    def start(self, *args: str, verbosity: int = 1) -> SchedulerProcess:
        return self.start_command("scheduler", "runscheduler", "-v", str(verbosity), *args)

    def start_command(self, kind: str, *argv: str) -> SchedulerProcess:
        """Start ``manage.py <argv>`` (a scheduler, or e.g. django-tasks-db's ``db_worker``)
        with the same environment; killed at ``close()`` like the schedulers."""
        name = f"{kind}-{len(self.processes) + 1}"
        log_path = self.tmp_path / f"{name}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                [sys.executable, "tests/manage.py", *argv],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        process = SchedulerProcess(name, popen, log_path)
        self.processes.append(process)
        return process

    def start_many(self, count: int, *args: str, timeout: float = 30.0) -> list[SchedulerProcess]:
        """Start ``count`` processes at once and wait until each is ready."""
        started = [self.start(*args) for _ in range(count)]
        for process in started:
            process.wait_ready(timeout)
        return started

    def hits(self) -> list[tuple[str, str, int]]:
        """``(job id, scheduled timestamp, pid)`` for every run recorded by ``record_hit``."""
        if not self.hits_path.exists():
            return []
        hits = []
        for line in self.hits_path.read_text().splitlines():
            job_id, timestamp, pid = line.split("\t")
            hits.append((job_id, timestamp, int(pid)))
        return hits

    def logs(self) -> str:
        return "\n".join(
            f"===== {p.name} (pid {p.pid}, exit {p.popen.returncode}) =====\n{p.log()}"
            for p in self.processes
        )

    def close(self) -> None:
        for process in self.processes:
            process.kill()


def ledger_key(job_id: str, scheduled: Any) -> tuple[str, str]:
    """The ``(job id, timestamp)`` form ``record_hit`` writes, for a ledger row."""
    return job_id, f"{scheduled.timestamp():.6f}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentiles(values: list[float], unit: float = 1000.0, suffix: str = "ms") -> str:
    """``n, p50, p95, max`` of ``values`` (seconds, shown in ``suffix`` after * ``unit``)."""
    if not values:
        return "n=0"
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * unit

    return (
        f"n={len(ordered)} p50={at(0.5):.0f}{suffix} p95={at(0.95):.0f}{suffix} "
        f"max={ordered[-1] * unit:.0f}{suffix}"
    )


def duplicate_hits(hits: list[tuple[str, str, int]]) -> dict[tuple[str, str], list[int]]:
    """Run times that ``record_hit`` recorded more than once, with the pids that ran them."""
    ran: dict[tuple[str, str], list[int]] = {}
    for job_id, timestamp, pid in hits:
        ran.setdefault((job_id, timestamp), []).append(pid)
    return {key: pids for key, pids in ran.items() if len(pids) > 1}


def log_excerpt(text: str, tail: int = 80, max_problems: int = 60) -> str:
    """A long log cut down for a failure report: its WARNING/ERROR lines, then its tail."""
    lines = text.splitlines()
    problems = [
        line for line in lines if " WARNING " in line or " ERROR " in line or "Traceback" in line
    ]
    parts = []
    if problems:
        parts.append(f"--- {len(problems)} warning/error line(s), first {max_problems}:")
        parts.extend(problems[:max_problems])
    parts.append(f"--- last {tail} of {len(lines)} line(s):")
    parts.extend(lines[-tail:])
    return "\n".join(parts)
