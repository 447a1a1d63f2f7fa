"""Claim-and-advance: hand each due run time to exactly one scheduler.

One transaction selects due rows (``FOR UPDATE SKIP LOCKED`` where the database has it,
else SQLite's write lock), computes what APScheduler's scheduling pass will (run times,
coalescing, the next fire time), advances each row (``next_run_time``, ``version + 1``,
``finished_at`` when the trigger is done) under a version compare-and-set, and inserts
one ledger row per run time. The store then hands the jobs to the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

from apscheduler.job import Job as APJob
from django.db import connections, transaction
from django.db.models import Case, DateTimeField, F, Q, Value, When
from django.db.models.functions import Cast

from django_clockwork import aps
from django_clockwork.ledger import Ledger, NewRun
from django_clockwork.logtext import format_times
from django_clockwork.models import Job, SchedulerNode
from django_clockwork.reconnect import drop_broken_connection
from django_clockwork.wakeups import CLAIMING_SETTING

logger = logging.getLogger(__name__)

#: Rows per UPDATE statement when advancing a claimed batch (bounded host parameters).
ADVANCE_CHUNK = 200


@dataclass(frozen=True)
class Claim:
    """What one claim handed to this process: the run times it owns in the ledger."""

    database: str
    run_times: tuple[datetime, ...]
    #: Run times recorded ``skipped``: the job had ``max_instances`` unfinished runs fleet-wide.
    skipped: tuple[datetime, ...] = ()
    #: The job's own long-running threshold in seconds (None: ``LONG_RUNNING_AFTER``).
    long_running_after: float | None = None


@dataclass(frozen=True)
class Plan:
    """One due row, loaded, with the run times the scheduling pass will submit."""

    row: Job
    job: Any
    run_times: list[datetime]
    next_run_time: datetime | None


class ClaimConflictError(Exception):
    """Another scheduler changed a row between our read and our write; retry the pass."""


Loader = Callable[[Job], Any]
Flagger = Callable[[Job, BaseException], None]


class Claimer:
    """Claims due jobs of one database for one node.

    :param load: turns a row into an APScheduler job (raises if it cannot)
    :param flag: records why a row could not be loaded
    :param capacity: how many runs this process can start now (a claim takes no more)
    """

    def __init__(
        self,
        *,
        database: str,
        ledger: Ledger,
        batch_size: int,
        node_timeout: float,
        load: Loader,
        flag: Flagger,
        capacity: Callable[[], int] | None = None,
    ) -> None:
        self.database = database
        self.ledger = ledger
        self.batch_size = batch_size
        self.node_timeout = node_timeout
        self.load = load
        self.flag = flag
        self.capacity = capacity
        #: True while a claim was cut short for want of capacity.
        self.starved = False

    def claim(self, now: datetime) -> list[Any]:
        """Claim what is due at ``now``; returns the jobs with their ``Claim`` attached."""
        connection = connections[self.database]
        drop_broken_connection(self.database)
        if connection.vendor == "sqlite" and not Job.objects.using(self.database).due(now).exists():
            return []  # idle: don't take the write lock every poll (read outside the transaction:
            # SQLite refuses, without waiting, to upgrade a transaction that has read)
        with transaction.atomic(using=self.database):
            if connection.vendor == "sqlite":
                _take_sqlite_write_lock(connection)
            rows = self._select_due(now, connection)
            plans = [plan for row in rows if (plan := self.plan(row, now)) is not None]
            if not plans:
                return []
            if connection.vendor == "postgresql":
                # The claim's own updates wake no other scheduler (see wakeups.TRIGGER_SQL).
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config(%s, 'on', true)", [CLAIMING_SETTING])
            self._advance(plans, now)
            owned, skipped = self.ledger.claimed(self._new_runs(plans))
        jobs = []
        for plan in plans:
            mine = tuple(t for t in plan.run_times if (plan.row.id, t) in owned)
            refused = tuple(t for t in plan.run_times if (plan.row.id, t) in skipped)
            plan.job._clockwork_claim = Claim(
                self.database, mine, refused, long_running_after=plan.row.long_running_after
            )
            jobs.append(plan.job)
        return jobs

    def _select_due(self, now: datetime, connection: Any) -> list[Job]:
        limit = self.batch_size
        if self.capacity is not None:
            limit = min(limit, self.capacity())
        query = Job.objects.using(self.database).due(now).order_by("next_run_time", "id")
        if connection.features.has_select_for_update_skip_locked:
            query = query.select_for_update(skip_locked=True)
        rows = list(query[:limit]) if limit > 0 else []
        self.starved = limit < self.batch_size and len(rows) == limit
        return rows

    def plan(self, row: Job, now: datetime) -> Plan | None:
        """What the scheduling pass will compute for this row: its run times and next fire time.

        Mirrors ``BaseScheduler._process_jobs`` (see ``aps.run_times``); a row that cannot be
        loaded or planned is flagged and left out.
        """
        try:
            job = self.load(row)
            computed = aps.run_times(job, now)
            if job.coalesce:
                computed = computed[-1:]
            # The next fire time comes from the trigger's own (zone-local) form of the last run:
            # from its UTC form, a cron trigger can answer the same instant again in a DST fold.
            next_time = job.trigger.get_next_fire_time(computed[-1], now) if computed else None
            # Compare run times as UTC instants: a zone-local time in a fold or gap never
            # equals or hashes like its UTC form, and the same instant may appear in both.
            run_times = sorted({t.astimezone(dt_timezone.utc) for t in computed})
        except Exception as exc:
            self.flag(row, exc)
            return None
        if not run_times:
            return None
        return Plan(row, job, run_times, next_time)

    def _advance(self, plans: Sequence[Plan], now: datetime) -> None:
        cast = connections[self.database].features.requires_casted_case_in_updates
        for start in range(0, len(plans), ADVANCE_CHUNK):
            chunk = plans[start : start + ADVANCE_CHUNK]
            owned = Q()
            next_times = []
            finished = []
            for plan in chunk:
                owned |= Q(id=plan.row.id, version=plan.row.version)
                value = Value(plan.next_run_time, output_field=DateTimeField())
                next_times.append(
                    When(id=plan.row.id, then=Cast(value, DateTimeField()) if cast else value)
                )
                if plan.next_run_time is None:
                    finished.append(plan.row.id)
            updated = (
                Job.objects.using(self.database)
                .filter(owned)
                .update(
                    next_run_time=Case(*next_times, output_field=DateTimeField()),
                    finished_at=Case(
                        When(id__in=finished, then=Value(now, output_field=DateTimeField())),
                        default=None,
                        output_field=DateTimeField(),
                    ),
                    version=F("version") + 1,
                    updated_at=now,
                )
            )
            if updated != len(chunk):
                raise ClaimConflictError

    def _new_runs(self, plans: Sequence[Plan]) -> list[NewRun]:
        busy = self._at_max_instances(plans)
        return [
            NewRun(
                job_id=plan.row.id,
                scheduled_run_time=run_time,
                job_name=plan.row.name,
                func=plan.row.func,
                skipped_reason=(
                    f"max_instances ({busy[plan.row.id]}) reached: that many runs were "
                    "unfinished on live schedulers; this run was skipped"
                    if plan.row.id in busy
                    else ""
                ),
            )
            for plan in plans
            for run_time in plan.run_times
        ]

    def _at_max_instances(self, plans: Sequence[Plan]) -> dict[str, int]:
        """Jobs whose unfinished runs on live nodes already reach ``max_instances``.

        Runs inside the claim, which holds these jobs' rows, so two schedulers cannot both
        count below the limit for the same job.
        """
        if not self.ledger.node_id:
            return {}
        live = SchedulerNode.objects.using(self.database).live(self.node_timeout).values("id")
        counts = self.ledger.unfinished_counts([plan.row.id for plan in plans], live)
        return {
            plan.row.id: plan.row.max_instances
            for plan in plans
            if counts.get(plan.row.id, 0) >= plan.row.max_instances
        }

    def recover(self, known: set[tuple[str, datetime]], claimed_now: set[str]) -> list[Any]:
        """Hand out again the runs of a claim whose commit succeeded but whose answer was lost.

        A connection that drops during COMMIT leaves this node's ledger rows ``scheduled``
        with nobody to run them (and counting against ``max_instances`` for ever). They are
        this node's ``scheduled`` rows that its executor does not have (``known``).
        """
        orphans: dict[str, list[datetime]] = {}
        for job_id, run_time in self.ledger.scheduled_here(claimed_now):
            if (job_id, run_time) not in known:
                orphans.setdefault(job_id, []).append(run_time)
        jobs = []
        for row in Job.objects.using(self.database).loadable().filter(id__in=orphans):
            try:
                job = self.load(row)
            except Exception as exc:
                self.flag(row, exc)
                continue
            times = tuple(sorted(orphans.pop(row.id)))
            logger.warning(
                "Recovered %d run(s) of job %r claimed by a commit whose answer was lost: %s",
                len(times),
                row.id,
                format_times(times),
            )
            aps.with_changes(job, next_run_time=times[0])  # so the scheduler submits it now
            job._clockwork_claim = Claim(
                self.database, times, long_running_after=row.long_running_after
            )
            jobs.append(job)
        for job_id, lost in orphans.items():  # their job was removed or is broken meanwhile
            self.ledger.abandoned(
                job_id,
                lost,
                reason="Claimed, but its job could not be loaded when the claim was recovered",
            )
        return jobs


def _take_sqlite_write_lock(connection: Any) -> None:
    # A write as the first statement makes SQLite take its write lock now (waiting for
    # other writers up to the busy timeout), so the SELECT below reads settled rows.
    table = connection.ops.quote_name(Job._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET version = version WHERE 1 = 0")


def claimed_job(job: APJob) -> Claim | None:
    """The claim attached to a job handed out by ``get_due_jobs`` (None for other stores)."""
    claim: Claim | None = getattr(job, "_clockwork_claim", None)
    return claim
