"""Lateness under a steady load: J interval jobs every second for D seconds.

Every job fires on the same whole-second grid (T0, T0+1 s, ...); a start's lateness is its
wall-clock start minus the run time it belongs to (see ``lateness``). p50 and p99 over all
starts of a repetition, and the runs that did not start; a run started twice fails it.
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


def measure(target: Target, count: int, seconds: int, lead: float) -> tuple[float, float, float]:
    """p50 and p99 lateness in ms, and runs missing; ``lead``: seconds to the first run time."""
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
    values, missing = lateness(jobs.STARTS, first.timestamp(), count, seconds)
    if missing:
        log(f"  {target.name}: {missing} of {count * seconds} runs did not start")
    return statistics.median(values) * 1000, percentile(values, 0.99) * 1000, float(missing)


def lateness(
    starts: list[tuple[str, float]], origin: float, count: int, seconds: int
) -> tuple[list[float], int]:
    """Every start's lateness in seconds, and how many runs did not start at all.

    A job's runs start one after the other (``max_instances`` 1), so its n-th start belongs
    to run time ``origin + n`` when all its runs started. A job with runs missing (coalesced
    behind a late scheduler) has each start set against the grid second before it. More
    starts than run times is a duplicate: an error.
    """
    by_job: dict[str, list[float]] = {}
    for job_id, started in starts:
        by_job.setdefault(job_id, []).append(started)
    values: list[float] = []
    missing = count * seconds
    for job_id, times in by_job.items():
        if len(times) > seconds:
            raise BenchmarkError(f"lateness: {job_id} started {len(times)} times, not {seconds}")
        missing -= len(times)
        for n, started in enumerate(sorted(times)):
            second = n if len(times) == seconds else math.floor(started - origin)
            values.append(started - origin - second)
    if not values:
        raise BenchmarkError("lateness: no run started")
    return values, missing


def run(context: Context) -> list[Measure]:
    count, seconds, lead = (5, 1, 1.0) if context.smoke else (100, 30, 3.0)
    p50: dict[str, list[float]] = {}
    p99: dict[str, list[float]] = {}
    missing: dict[str, list[float]] = {}
    for _ in range(context.repetitions(1)):
        for target in context.targets:
            log(f"  {target.name}")
            with tolerated(target):
                median, high, missed = measure(target, count, seconds, lead)
                p50.setdefault(target.name, []).append(median)
                p99.setdefault(target.name, []).append(high)
                missing.setdefault(target.name, []).append(missed)
    name = f"lateness {count} jobs/s x {seconds} s"
    return [
        Measure(name, "p50 ms", p50, higher_is_better=False),
        Measure(name, "p99 ms", p99, higher_is_better=False),
        Measure(name, "runs not started", missing, higher_is_better=False),
    ]
