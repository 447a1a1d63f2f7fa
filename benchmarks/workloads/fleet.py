"""Fleet scaling: the due burst with 1, 2 and 4 ``runscheduler`` processes on one database.

The processes start first and wait; then N jobs due in a few seconds (:data:`LEAD`, more for
many jobs) are inserted in one transaction and the planner's statistics refreshed.
fires/s runs from the first ``started_at`` in the ledger to the last. Duplicates are checked
twice: the ledger must hold exactly one row per job (its UNIQUE key is the first fence), and
the hits file the job function appends to must hold exactly one line per job.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from apscheduler.triggers.date import DateTrigger

from benchmarks import databases, processes
from benchmarks.harness import BenchmarkError, Context, Measure, log, now, wait_until
from benchmarks.targets import Spec, Target

#: Seconds from the start of seeding to the burst's due time, at least.
LEAD = 3.0
#: And per job seeded (in one transaction, then ANALYZE): 10,000 jobs took more than 3 s on a
#: slower machine of the same kind, so the schedulers claimed before the statistics were fresh.
LEAD_PER_JOB = 0.0008


def burst(context: Context, target: Target, count: int, size: int) -> float:
    from django.db import connection, transaction
    from django.db.models import Count, Max, Min

    from django_clockwork.models import JobExecution

    hits = context.out / "logs" / f"fleet-{count}.hits"
    hits.parent.mkdir(parents=True, exist_ok=True)
    hits.write_text("")
    connection.close()
    schedulers = processes.start_schedulers(
        count, context.out / "logs" / f"fleet-{count}", CLOCKWORK_BENCH_HITS=str(hits)
    )
    try:
        # Due LEAD seconds from now, inserted in one transaction, then the planner's
        # statistics refreshed (as autovacuum would soon after a bulk load): every scheduler
        # meets the whole burst at one instant, in steady state.
        lead = max(LEAD, size * LEAD_PER_JOB)
        when = now() + timedelta(seconds=lead)
        target.scheduler()  # builds the jobs; never started
        with transaction.atomic():
            target.seed(
                [
                    Spec(f"fleet-{n}", DateTrigger(when), when, "benchmarks.jobs:hit_file")
                    for n in range(size)
                ]
            )
        databases.analyze()
        if now() >= when - timedelta(seconds=0.5):
            log(f"  fleet of {count}: seeding took longer than {lead:g}s; the burst met it")
        started = JobExecution.objects.filter(started_at__isnull=False)
        wait_until(lambda: started.count() >= size, 60 + size / 10, f"fleet of {count}")
        wait_until(lambda: lines(hits) >= size, 30, f"fleet of {count}: hits")
        time.sleep(1)  # a duplicate would show now
        span = started.aggregate(first=Min("started_at"), last=Max("started_at"))
        rows = JobExecution.objects.count()
        twice = JobExecution.objects.values("job_id").annotate(n=Count("id")).filter(n__gt=1)
        duplicated = twice.count()
        hit_ids = [line.split("\t")[0] for line in hits.read_text().splitlines()]
    finally:
        processes.stop(schedulers)
        target.clear()
    if rows != size or duplicated:
        raise BenchmarkError(
            f"fleet of {count}: {rows} ledger rows for {size} jobs, {duplicated} jobs twice"
        )
    if len(hit_ids) != size or len(set(hit_ids)) != size:
        raise BenchmarkError(f"fleet of {count}: {len(hit_ids)} hits for {size} jobs")
    seconds = (span["last"] - span["first"]).total_seconds()
    log(f"  {count} process(es): {size} runs, 0 duplicates (ledger rows and hits)")
    return (size - 1) / max(seconds, 1e-6)


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n")


def run(context: Context) -> list[Measure]:
    size, counts = (30, (1, 2)) if context.smoke else (10_000, (1, 2, 4))
    size = context.burst_size or size
    ours = context.target("ours")
    values: dict[str, list[float]] = {f"{c} process{'es' if c > 1 else ''}": [] for c in counts}
    for _ in range(context.repetitions(1)):
        for count, name in zip(counts, values, strict=True):
            values[name].append(burst(context, ours, count, size))
    return [
        Measure(f"fleet burst {size:,}: {name}", "fires/s", {"ours": rates})
        for name, rates in values.items()
    ]
