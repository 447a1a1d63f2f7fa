"""Lateness under a steady load: J interval jobs every second for D seconds.

Every job fires on the same whole-second grid (T0, T0+1 s, ...); a start's lateness is its
wall-clock start minus the grid second it belongs to. p50 and p99 over all starts of a
repetition; a run missing or started twice (which a lateness above 1 s would look like)
fails the workload.
"""

from __future__ import annotations

import math
import statistics
import time
from datetime import timedelta

from apscheduler.triggers.interval import IntervalTrigger

from benchmarks import jobs
from benchmarks.harness import BenchmarkError, Context, Measure, log, now, percentile, tolerated
from benchmarks.targets import Spec, Target


def measure(target: Target, count: int, seconds: int, lead: float) -> tuple[float, float]:
    """p50 and p99 lateness in ms; ``lead``: seconds to the first run time (to start up)."""
    jobs.STARTS.clear()
    first = now().replace(microsecond=0) + timedelta(seconds=lead)
    trigger = IntervalTrigger(
        seconds=1, start_date=first, end_date=first + timedelta(seconds=seconds - 0.5)
    )
    specs = [Spec(f"late-{n}", trigger, first) for n in range(count)]
    scheduler = target.scheduler()
    target.seed(specs)
    try:
        scheduler.start()
        time.sleep(max(0.0, first.timestamp() + seconds + 1 - time.time()))
    finally:
        scheduler.shutdown(wait=True)
        target.clear()
    origin = first.timestamp()
    late: dict[tuple[str, int], float] = {}
    for job_id, started in jobs.STARTS:
        second = math.floor(started - origin)
        if (job_id, second) in late:
            raise BenchmarkError(f"lateness {target.name}: {job_id} twice in second {second}")
        late[job_id, second] = started - origin - second
    if len(late) != count * seconds:
        raise BenchmarkError(f"lateness {target.name}: {len(late)} of {count * seconds} runs")
    values = list(late.values())
    return statistics.median(values) * 1000, percentile(values, 0.99) * 1000


def run(context: Context) -> list[Measure]:
    count, seconds, lead = (5, 1, 1.0) if context.smoke else (100, 30, 3.0)
    p50: dict[str, list[float]] = {}
    p99: dict[str, list[float]] = {}
    for _ in range(context.repetitions(1)):
        for target in context.targets:
            log(f"  {target.name}")
            with tolerated(target):
                median, high = measure(target, count, seconds, lead)
                p50.setdefault(target.name, []).append(median)
                p99.setdefault(target.name, []).append(high)
    name = f"lateness {count} jobs/s x {seconds} s"
    return [
        Measure(name, "p50 ms", p50, higher_is_better=False),
        Measure(name, "p99 ms", p99, higher_is_better=False),
    ]
