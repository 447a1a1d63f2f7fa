"""A due burst: N jobs due at one instant; fires/s from the first job's start to the last's.

The jobs are put in the store (bulk) due now with no misfire grace limit, the planner's
statistics are refreshed (``ANALYZE``, as autovacuum would soon after), then the scheduler
starts; every run must start exactly once, or the workload fails.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from apscheduler.triggers.date import DateTrigger

from benchmarks import databases, jobs
from benchmarks.harness import BenchmarkError, Context, Measure, interleaved, now, wait_until
from benchmarks.profiling import all_threads
from benchmarks.targets import Spec, Target


def fire(target: Target, size: int, profile: Path | None = None) -> float:
    """Start ``target`` on ``size`` due jobs; fires/s between the first and the last start.

    With ``profile``, every thread is profiled from the start to the shutdown (slower).
    """
    jobs.STARTS.clear()
    when = now()
    specs = [Spec(f"burst-{n}", DateTrigger(when), when) for n in range(size)]
    scheduler = target.scheduler()
    target.seed(specs)
    databases.analyze()  # as autovacuum would soon after a bulk load: the plans of steady state
    profiling = all_threads(profile) if profile else contextlib.nullcontext()
    try:
        with profiling:
            scheduler.start()
            wait_until(lambda: len(jobs.STARTS) >= size, 60 + size / 20, f"burst {target.name}")
            scheduler.shutdown(wait=True)
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=True)
        target.clear()
    starts = list(jobs.STARTS)
    if len(starts) != size or len({job_id for job_id, _ in starts}) != size:
        raise BenchmarkError(f"burst {target.name}: {len(starts)} starts for {size} jobs")
    times = [t for _, t in starts]
    return (size - 1) / max(max(times) - min(times), 1e-6)


def run(context: Context) -> list[Measure]:
    size = context.burst_size or (50 if context.smoke else 10_000)
    profile = context.out / f"profile-burst-{context.database}.txt" if context.profile else None

    def measure(target: Target) -> float:
        return fire(target, size, profile if target.name == "ours" else None)

    rates = interleaved(context.targets, context.repetitions(1), measure)
    note = "cProfile on for ours" if profile else ""
    return [Measure(f"due burst {size:,}", "fires/s", rates, note=note)]
