"""Adding jobs with no scheduler running: jobs/s, and SQL statements per add.

Each target adds N one-off jobs (far in the future) one by one, the way its users add them:
``store.add_job()`` for the stores, ``django_clockwork.api.add_job()`` for ours.
"""

from __future__ import annotations

import time
from datetime import timedelta

from apscheduler.triggers.date import DateTrigger

from benchmarks.harness import BenchmarkError, Context, Measure, interleaved, now
from benchmarks.targets import Spec, Target


def add(target: Target, size: int, statements: dict[str, list[float]]) -> float:
    """Add ``size`` jobs to ``target`` one by one; jobs/s (statements per add into the dict)."""
    when = now() + timedelta(days=30)
    specs = [Spec(f"add-{n}", DateTrigger(when), when) for n in range(size)]
    target.scheduler()
    try:
        with target.counting() as sent:
            started = time.perf_counter()
            for spec in specs:
                target.add(spec)
            elapsed = time.perf_counter() - started
        stored = len(target.all_jobs())
        if stored != size:
            raise BenchmarkError(f"add {size}, {target.name}: {stored} jobs stored")
        statements.setdefault(target.name, []).append(len(sent) / size)
    finally:
        target.clear()
    return size / elapsed


def run(context: Context) -> list[Measure]:
    measures = []
    for size in (20,) if context.smoke else (1_000, 10_000):
        statements: dict[str, list[float]] = {}
        reps = context.repetitions(3 if size < 10_000 else 1)
        rate = interleaved(context.targets, reps, lambda t, n=size, s=statements: add(t, n, s))
        measures.append(Measure(f"add {size:,}", "jobs/s", rate))
        measures.append(
            Measure(f"add {size:,}", "statements per add", statements, higher_is_better=False)
        )
    return measures
