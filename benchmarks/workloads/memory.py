"""Memory: the RSS of a scheduler process with N stored jobs, and its peak while listing all.

Each target runs in a fresh process (``python -m benchmarks probe-memory TARGET N``): it
reads its RSS after Django is set up (the baseline), starts the target's scheduler on N
stored jobs (far in the future; MemoryJobStore's are added in that process), waits 2 s
(0.5 s in the smoke run),
reads its RSS again, resets the kernel's peak (``/proc/self/clear_refs``), streams every job
where the target has a streaming form (``api.iter_jobs()`` for ours) and reads the peak
(``VmHWM``), then resets it again, lists every job (``api.get_jobs()`` for ours,
``get_all_jobs()`` for the stores) and reads the peak. Linux only (``/proc``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from apscheduler.triggers.date import DateTrigger

from benchmarks import processes
from benchmarks.harness import BenchmarkError, Context, Measure, log, now, tolerated
from benchmarks.targets import ALL, Spec, Target

RESULT = "RESULT "


def specs(size: int) -> list[Spec]:
    start = now() + timedelta(days=1)
    return [
        Spec(f"mem-{n}", DateTrigger(at := start + timedelta(seconds=n)), at) for n in range(size)
    ]


def status(field: str) -> float:
    """A ``/proc/self/status`` size in MiB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def probe(name: str, size: int) -> int:
    """In a fresh process: print the RSS figures of ``name`` with ``size`` stored jobs."""
    import django

    django.setup()
    from django.conf import settings

    baseline = status("VmRSS")
    cls = next(cls for cls in ALL if cls.name == name)
    target = cls(settings.BACKEND, settings.NAME)
    scheduler = target.scheduler()
    if not target.persistent:
        target.seed(specs(size))
    scheduler.start()
    time.sleep(0.5 if size < 1000 else 2)
    running = status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from now
    stream = target.stream_jobs()
    streamed = None if stream is None else sum(1 for _job in stream)
    stream_peak = None if stream is None else status("VmHWM")
    Path("/proc/self/clear_refs").write_text("5")
    listed = len(target.all_jobs())
    peak = status("VmHWM")
    scheduler.shutdown()
    target.close()
    result = {
        "baseline": baseline,
        "running": running,
        "peak": peak,
        "listed": listed,
        "stream_peak": stream_peak,
        "streamed": streamed,
    }
    print(RESULT + json.dumps(result), flush=True)
    return 0


def measure(target: Target, size: int, figures: dict[str, dict[str, list[float]]]) -> None:
    if target.persistent:
        target.scheduler()
        target.seed(specs(size))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks", "probe-memory", target.name, str(size)],
            cwd=processes.ROOT,
            env=processes.environment(),
            stdout=subprocess.PIPE,
            text=True,
            timeout=600,
        )
    finally:
        if target.persistent:
            target.clear()
    found = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode != 0 or not found:
        raise BenchmarkError(f"memory {target.name}: the probe failed ({done.returncode})")
    result = json.loads(found[-1][len(RESULT) :])
    for how in ("listed", "streamed"):
        if result[how] not in (size, None):
            raise BenchmarkError(f"memory {target.name}: {how} {result[how]} of {size} jobs")
    for key in ("baseline", "running", "peak", "stream_peak"):
        if result[key] is not None:
            figures[key].setdefault(target.name, []).append(result[key])


def run(context: Context) -> list[Measure]:
    from django.db import connection

    size = 500 if context.smoke else 100_000
    figures: dict[str, dict[str, list[float]]] = {
        "baseline": {},
        "running": {},
        "peak": {},
        "stream_peak": {},
    }
    for _ in range(context.repetitions(1)):
        for target in context.targets:
            log(f"  {target.name}: {size:,} jobs")
            connection.close()
            with tolerated(target):
                measure(target, size, figures)
    name = f"memory, {size:,} stored"
    return [
        Measure(name, "RSS MiB before the scheduler", figures["baseline"], False),
        Measure(name, "RSS MiB, scheduler running", figures["running"], False),
        Measure(name, "peak RSS MiB while listing all", figures["peak"], False),
        Measure(name, "peak RSS MiB while streaming all", figures["stream_peak"], False),
    ]
