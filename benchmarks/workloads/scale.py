"""Store scale: one scheduling pass with 10 jobs due among N stored; ms per pass, and plans.

For each N every store gets N jobs (N - 10 due far ahead, 10 due now); a pass is what
APScheduler's ``_process_jobs`` asks of a store, through the public API: ``get_due_jobs(now)``,
write each due job back with its next run time, then ``get_next_run_time()``. Between passes
the 10 jobs are made due again (not timed). The planner's statistics are refreshed after
seeding (``ANALYZE``, as autovacuum would do soon after a bulk load). The statements of each
store's first pass are saved with the database's plan for each of them that reads the jobs table
(``<out>/plans/<database>-<target>-<N>.txt``).
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from benchmarks import databases
from benchmarks.harness import BenchmarkError, Context, Measure, log, now, tolerated
from benchmarks.targets import Spec, Target

DUE = 10
STORES = ("sqlalchemy", "store", "django-apscheduler")


def specs(size: int) -> list[Spec]:
    start = now()
    later = [
        Spec(f"scale-{n}", DateTrigger(at := start + timedelta(days=1, seconds=n)), at)
        for n in range(size - DUE)
    ]
    hourly = IntervalTrigger(hours=1, start_date=start - timedelta(minutes=30))
    due = [Spec(f"due-{n}", hourly, start - timedelta(seconds=1)) for n in range(DUE)]
    return later + due


def make_due(target: Target) -> None:
    when = now() - timedelta(seconds=1)
    if target.name == "store":
        from django_clockwork.models import Job

        Job.objects.filter(id__startswith="due-").update(next_run_time=when)
        return
    for n in range(DUE):
        job = target.store.lookup_job(f"due-{n}")
        job.next_run_time = when
        target.store.update_job(job)


def scheduling_pass(store: Any) -> int:
    current = now()
    due = store.get_due_jobs(current)
    for job in due:
        following = job.trigger.get_next_fire_time(job.next_run_time, current)
        while following is not None and following <= current:
            following = job.trigger.get_next_fire_time(following, current)
        if following is None:
            store.remove_job(job.id)
        else:
            job.next_run_time = following
            store.update_job(job)
    store.get_next_run_time()
    return len(due)


def timed_pass(target: Target, plans: Path | None) -> float:
    make_due(target)
    with target.counting() as sent:
        started = time.perf_counter()
        count = scheduling_pass(target.store)
        elapsed = time.perf_counter() - started
    if count != DUE:
        raise BenchmarkError(f"scale {target.name}: a pass found {count} due jobs, not {DUE}")
    if plans is not None:
        plans.write_text(explain(target, sent))
    return elapsed * 1000


def explain(target: Target, statements: list[tuple[str, Any]]) -> str:
    """Each statement of the pass, and the plan of those that read the jobs table."""
    parts = []
    for statement, params in unbatched(statements):
        parts.append(f"{statement}\n  -- parameters: {params!r}")
        if statement.lstrip().upper().startswith("SELECT") and "next_run_time" in statement:
            parts.append(plan(target, statement, params))
        parts.append("")
    return "\n".join(parts)


def unbatched(statements: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Each statement of a batch sent in one round trip (``sqlrows.batch`` joins them with
    ``";\\n"``), with its own parameters (as many as its ``%s``)."""
    split = []
    for text, params in statements:
        if ";\n" not in text or params is None:
            split.append((text, params))
            continue
        values = list(params)
        for part in text.split(";\n"):
            count = part.count("%s")
            split.append((part, values[:count]))
            values = values[count:]
    return split


def plan(target: Target, statement: str, params: Any) -> str:
    """The database's plan for one statement (EXPLAIN; EXPLAIN QUERY PLAN on SQLite)."""
    prefix = "EXPLAIN QUERY PLAN " if target.database == "sqlite" else "EXPLAIN "
    if target.name == "sqlalchemy":
        with target.engine.connect() as connection:  # type: ignore[attr-defined]
            rows = connection.exec_driver_sql(prefix + statement, params).fetchall()
    else:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(prefix + statement, params)
            rows = cursor.fetchall()
    return "\n".join("  PLAN " + " | ".join(str(v) for v in row) for row in rows)


def run(context: Context) -> list[Measure]:
    sizes = [100, 1_000] if context.smoke else [1_000, 10_000, 100_000]
    if context.million:
        sizes.append(1_000_000)
    targets = context.only(*STORES)
    plans = context.out / "plans"
    plans.mkdir(parents=True, exist_ok=True)
    measures = []
    for size in sizes:
        values: dict[str, list[float]] = {t.name: [] for t in targets}
        log(f"  seeding {size:,} jobs into each store")
        for target in targets:
            scheduler = target.scheduler()
            target.seed(specs(size))
            target.store.start(scheduler, "default")
        databases.analyze()  # the plans of a table in steady state, not of a fresh bulk load
        try:
            for rep in range(context.samples(10, smoke=2)):
                for target in targets:
                    path = plans / f"{context.database}-{target.name}-{size}.txt"
                    with tolerated(target):
                        values[target.name].append(timed_pass(target, path if rep == 0 else None))
        finally:
            for target in targets:
                target.clear()
        measures.append(
            Measure(f"pass, {DUE} due of {size:,}", "ms", values, higher_is_better=False)
        )
    return measures
