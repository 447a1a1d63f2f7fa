"""Scheduler processes (``manage.py runscheduler`` of the benchmark project) and probes.

Children inherit this process's environment: the benchmark's settings and database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY = "Scheduler started"


def environment(**extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", **extra}


def start_schedulers(count: int, logs: Path, **extra: str) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` ``runscheduler`` processes and wait until each says it started."""
    logs.mkdir(parents=True, exist_ok=True)
    processes, paths = [], []
    for n in range(count):
        path = logs / f"scheduler-{n}.log"
        with path.open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "django", "runscheduler", "-v", "1"],
                    cwd=ROOT,
                    env=environment(**extra),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        paths.append(path)
    deadline = time.monotonic() + 60
    for process, path in zip(processes, paths, strict=True):
        while READY not in path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                stop(processes)
                raise RuntimeError(f"a scheduler did not start:\n{path.read_text()}")
            time.sleep(0.05)
    return processes


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM (a graceful stop), then wait; SIGKILL only one that does not stop in 60 s."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
