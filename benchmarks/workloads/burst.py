"""A due burst: N jobs due at one instant; fires/s from the first job's start to the last's.

The jobs are put in the store (bulk) due now with no misfire grace limit, the planner's
statistics are refreshed (``ANALYZE``, as autovacuum would soon after), then the scheduler
starts; every run must start exactly once, or the workload fails.

Between the first start and the last, the process's CPU time is noted too: per run (all
threads: the scheduler's, the job threads', ours' ledger writer) and as a share of one core.
Python runs one thread at a time, so a share near 100 % means the process is bound by its
own CPU; a lower one, that its threads were all waiting (for the database) part of the time.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import NamedTuple

from apscheduler.triggers.date import DateTrigger

from benchmarks import databases, jobs
from benchmarks.harness import BenchmarkError, Context, Measure, interleaved, now, wait_until
from benchmarks.profiling import all_threads
from benchmarks.targets import Spec, Target


class Burst(NamedTuple):
    #: Runs started per second, from the first start to the last.
    rate: float
    #: The process's CPU time per run in that span, in microseconds (NaN if not noted).
    cpu_per_run: float
    #: The process's CPU time in that span over its length, in % of one core (or NaN).
    core_share: float


def fire(target: Target, size: int, profile: Path | None = None) -> Burst:
    """Start ``target`` on ``size`` due jobs; fires/s between the first and the last start,
    and the process's CPU time in that span.

    With ``profile``, every thread is profiled from the start to the shutdown (slower).
    """
    jobs.STARTS.clear()
    jobs.CPU_MARKS.clear()
    jobs.EXPECTED = size
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
    span = max(max(times) - min(times), 1e-6)
    marks = list(jobs.CPU_MARKS)
    jobs.EXPECTED = 0
    cpu = marks[-1] - marks[0] if len(marks) >= 2 and size > 1 else math.nan
    return Burst((size - 1) / span, cpu / (size - 1) * 1e6, cpu / span * 100)


def run(context: Context) -> list[Measure]:
    size = context.burst_size or (50 if context.smoke else 10_000)
    profile = context.out / f"profile-burst-{context.database}.txt" if context.profile else None

    bursts: dict[str, list[Burst]] = {t.name: [] for t in context.targets}

    def measure(target: Target) -> float:
        burst = fire(target, size, profile if target.name == "ours" else None)
        bursts[target.name].append(burst)
        return burst.rate

    rates = interleaved(context.targets, context.repetitions(1), measure)
    note = "cProfile on for ours" if profile else ""

    def each(field: str) -> dict[str, list[float]]:
        return {
            name: [value for b in runs if not math.isnan(value := getattr(b, field))]
            for name, runs in bursts.items()
        }

    workload = f"due burst {size:,}"
    return [
        Measure(workload, "fires/s", rates, note=note),
        Measure(workload, "process CPU per run, us", each("cpu_per_run"), higher_is_better=False),
        Measure(
            workload,
            "process CPU while firing, % of one core",
            each("core_share"),
            higher_is_better=None,
        ),
    ]
