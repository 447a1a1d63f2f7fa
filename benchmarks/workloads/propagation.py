"""Propagation: from ``api.add_job()`` returning in this process to the run starting in a
``runscheduler`` process (ours only: the other stores have no cross-process wake-up).

Before each add it waits a random 0..POLL_INTERVAL seconds, so that every phase of the
scheduler's poll is sampled; the start is the ``started_at`` the scheduler wrote in the
ledger (both clocks are this machine's). On PostgreSQL a NOTIFY wakes the scheduler at once;
elsewhere it sees the job at its next poll (expected median about POLL_INTERVAL / 2).
Values are per add, not per repetition; the first adds (3, smoke 1) warm up and are not counted.
"""

from __future__ import annotations

import random
import time

from benchmarks import processes
from benchmarks.harness import BenchmarkError, Context, Measure, log


def run(context: Context) -> list[Measure]:
    from django.db import connection

    from django_clockwork.conf import get_conf

    runs, warm_up = (3, 1) if context.smoke else (50, 3)
    poll = get_conf().poll_interval
    ours = context.target("ours")
    connection.close()
    schedulers = processes.start_schedulers(1, context.out / "logs" / "propagation")
    try:
        delays = [latency(f"prop-{n}", poll) for n in range(runs + warm_up)][warm_up:]
    finally:
        processes.stop(schedulers)
        ours.clear()
    log(f"  {runs} adds, POLL_INTERVAL {poll}s")
    return [
        Measure(
            "propagation: add -> start in another process",
            "ms",
            {"ours": [d * 1000 for d in delays]},
            higher_is_better=False,
            note=f"over {runs} adds",
        )
    ]


def latency(job_id: str, poll: float) -> float:
    from django.utils import timezone

    from django_clockwork import api
    from django_clockwork.models import JobExecution

    time.sleep(random.uniform(0, poll))
    api.add_job("benchmarks.jobs:hit", "date", args=[job_id], id=job_id, run_date=timezone.now())
    returned = timezone.now()
    deadline = time.monotonic() + 10 + 2 * poll
    while True:
        started = (
            JobExecution.objects.filter(job_id=job_id, started_at__isnull=False)
            .values_list("started_at", flat=True)
            .first()
        )
        if started is not None:
            return (started - returned).total_seconds()
        if time.monotonic() > deadline:
            raise BenchmarkError(f"propagation: {job_id} did not start within the deadline")
        time.sleep(0.005)
