"""Claim-and-advance: hand each due run time to exactly one scheduler.

One transaction selects due rows (``FOR UPDATE SKIP LOCKED`` where the database has it,
else SQLite's write lock), computes what APScheduler's scheduling pass will (run times,
coalescing, the next fire time), advances each row (``next_run_time``, ``version + 1``,
``finished_at`` when the trigger is done) under a version compare-and-set, and inserts
one ledger row per run time. The store then hands the jobs to the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from traceback import format_exception
from typing import Any, NamedTuple

from apscheduler.job import Job as APJob
from django.db import DataError, connections, transaction

from django_clockwork import aps
from django_clockwork.backlog import Missed, walk
from django_clockwork.batchsql import pg_array
from django_clockwork.conf import get_conf
from django_clockwork.ledger import Key, Ledger, NewRun, Request
from django_clockwork.logtext import format_times, user
from django_clockwork.models import Job, JobSource
from django_clockwork.reconnect import drop_broken_connection
from django_clockwork.rows import JOB_COLUMNS, JobRow, StoredRow
from django_clockwork.sqlrows import (
    Converters,
    Result,
    Statement,
    batch,
    can_batch,
    converted,
    converters_for,
)
from django_clockwork.tasktargets import TaskTarget, enqueue, enqueues_in, task_of
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
    #: Run times older than the grace time, recorded by this claim as one ``missed`` row.
    backlog: Missed | None = None
    #: The job's own long-running threshold in seconds (None: ``LONG_RUNNING_AFTER``).
    long_running_after: float | None = None
    #: The job's Task, for a job that enqueues one instead of calling a function.
    task: TaskTarget | None = None

    @property
    def handed_out(self) -> list[datetime]:
        """The run times the scheduling pass submits: run, or refused for ``max_instances``."""
        return sorted(self.run_times + self.skipped)


class Plan(NamedTuple):
    """One due row, loaded, with the run times the scheduling pass will submit."""

    row: StoredRow
    job: Any
    run_times: list[datetime]
    next_run_time: datetime | None
    missed: Missed | None = None


class ClaimConflictError(Exception):
    """Another scheduler changed a row between our read and our write; retry the pass."""


Loader = Callable[[StoredRow], Any]
Flagger = Callable[[StoredRow, BaseException], None]


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
        #: True while the last claim took all it could (its capacity or the batch size): more
        #: rows may be due at once.
        self.full = False
        #: Jobs the last claim left for their due time: their first run time, by job id.
        self.deferred: dict[str, datetime] = {}

    def claim(self, now: datetime, ahead: timedelta = timedelta(0)) -> list[Any]:
        """Claim what is due by ``now + ahead``; returns the jobs with their ``Claim``.

        A job due by ``now`` is planned at ``now`` (its run times up to now, coalesced or
        missed as APScheduler would); a job due later within ``ahead`` gets its next run
        time only, claimed ahead of it (the executor starts it at that time).

        A job whose runs would all be claimed ahead of their time while it already has
        ``max_instances`` unfinished runs is left for its due time (:attr:`deferred`), when
        the runs it waits for may have ended: claiming ahead never skips a run that claiming
        on time would have run.
        """
        real_now, now = now, now + ahead
        self.deferred = {}
        if self._limit() <= 0:  # no room: a claim could take nothing, not even a request
            self.starved = self.full = True
            return []
        connection = connections[self.database]
        drop_broken_connection(self.database)
        prepared: dict[tuple[str, int], Plan | None] = {}
        if connection.vendor == "sqlite":
            # SQLite has one write lock for the whole database: load and plan the due rows
            # before taking it (importing a job's module may take seconds), and read outside
            # the transaction (SQLite refuses, without waiting, to upgrade a transaction that
            # has read). An idle poll ends here, without taking the lock.
            prepared = {
                (r.id, r.version): self.plan(r, _planned_at(r, real_now))
                for r in self._select_due(now)
            }
            if not prepared and not (self.ledger.node_id and self.ledger.requests_waiting()):
                return []
        with transaction.atomic(using=self.database):
            if connection.vendor == "sqlite":
                _take_sqlite_write_lock(connection)
            rows, pending, counts = self._read(now)
            plans = []
            for row in rows:
                # A row unchanged since it was planned keeps its plan; others are planned now.
                key = (row.id, row.version)
                plan = (
                    prepared[key] if key in prepared else self.plan(row, _planned_at(row, real_now))
                )
                if plan is not None:
                    plans.append(plan)
            busy = self._at_max_instances(plans, counts)
            if ahead:
                plans = self._defer_busy(plans, busy, real_now)
            requested = self._take_requests(now, plans, pending, counts)
            if not plans and not requested:
                return []
            owned: set[tuple[str, datetime]] = set()
            skipped: set[tuple[str, datetime]] = set()
            recorded: set[tuple[str, datetime]] = set()
            if plans:
                owned, skipped, recorded = self._write(plans, busy, now)
                owned -= self._enqueue_in_claim(plans, owned, real_now)
        jobs = []
        for plan in plans:
            mine = tuple(t for t in plan.run_times if (plan.row.id, t) in owned)
            _job, asked = requested.pop(plan.row.id, (None, []))
            refused = tuple(t for t in plan.run_times if (plan.row.id, t) in skipped)
            plan.job._clockwork_claim = Claim(
                self.database,
                tuple(sorted(mine + tuple(asked))),
                refused,
                backlog=self._report_missed(plan, recorded),
                long_running_after=plan.row.long_running_after,
                task=task_of(plan.job),
            )
            jobs.append(plan.job)
        for job, asked in requested.values():  # run now, and not due in this claim
            job._clockwork_claim = Claim(self.database, tuple(sorted(asked)), task=task_of(job))
            jobs.append(job)
        return jobs

    def _enqueues_in_claim(self, plans: Sequence[Plan]) -> bool:
        """Whether a plan's runs are enqueued inside the claim's transaction (see below)."""
        return any(self._in_claim_targets(plans))

    def _in_claim_targets(self, plans: Sequence[Plan]) -> Iterator[tuple[Plan, TaskTarget]]:
        """The plans of task jobs whose backend writes to this database, with their task."""
        for plan in plans:
            target = task_of(plan.job)
            if target is not None and enqueues_in(target, self.database):
                yield plan, target

    def _enqueue_in_claim(
        self, plans: Sequence[Plan], owned: set[tuple[str, datetime]], now: datetime
    ) -> set[tuple[str, datetime]]:
        """Enqueue, inside the claim's transaction, the owned runs of task jobs whose backend
        writes to this database (django-tasks-db): the task row commits with the claim or not
        at all, so a run time is enqueued exactly once, whoever dies when. A run claimed ahead
        of its time is enqueued to run no earlier than it. Returns the runs handled here
        (``enqueued``, or ``failed`` with the backend's error); the executor gets the others."""
        handled: set[tuple[str, datetime]] = set()
        for plan, target in self._in_claim_targets(plans):
            for run_time in plan.run_times:
                key = (plan.row.id, run_time)
                if key in owned:
                    self._enqueue_one(plan, target, run_time, now)
                    handled.add(key)
        return handled

    def _enqueue_one(
        self, plan: Plan, target: TaskTarget, run_time: datetime, now: datetime
    ) -> None:
        job, ahead = plan.job, run_time if run_time > now else None
        try:
            with transaction.atomic(using=self.database):  # a savepoint: a refusal undoes itself
                done = enqueue(target, job.args, job.kwargs, run_time, ahead)
        except Exception as exc:
            summary = f"Could not enqueue task {target.path}: {type(exc).__name__}: {exc}"
            logger.exception("Job %r: %s", plan.row.id, user(summary))
            text = "".join(format_exception(type(exc), exc, exc.__traceback__))
            self.ledger.failed(
                plan.row.id, run_time, exception=summary, traceback=text, durable=False
            )
            return
        self.ledger.enqueued(
            plan.row.id, run_time, backend=done.backend, result_id=done.result_id, durable=False
        )

    def _take_requests(
        self,
        now: datetime,
        plans: Sequence[Plan],
        pending: Sequence[Request],
        counts: dict[str, int],
    ) -> dict[str, tuple[Any, list[datetime]]]:
        """Take pending run-now requests (``api.run_now``), within this claim's capacity.

        Only a scheduler node takes them (never the process that asked). A request older than
        ``RUN_NOW_EXPIRY`` is recorded ``missed``; one whose job has ``max_instances``
        unfinished runs on live schedulers is recorded ``skipped``; one whose job was removed,
        finished or cannot be loaded is recorded ``skipped`` with the reason.
        """
        if not self.ledger.node_id:
            return {}
        room = self._limit() - sum(len(p.run_times) for p in plans)
        pending = list(pending[: max(room, 0)])  # read (and locked) with the due rows
        if not pending:
            return {}
        cutoff = now - timedelta(seconds=get_conf().run_now_expiry)
        if pending[0].scheduled_run_time < cutoff:  # oldest first: some have expired
            self.ledger.expire_requests(cutoff)
            pending = [r for r in pending if r.scheduled_run_time >= cutoff]
        planned = {plan.row.id: plan for plan in plans}
        rows = {
            row.id: row
            for row in Job.objects.using(self.database)
            .active()
            .filter(id__in={r.job_id for r in pending} - planned.keys())
        }
        taken: dict[str, tuple[Any, list[datetime]]] = {}
        for request in pending:
            job_id, run_time = request.job_id, request.scheduled_run_time
            plan = planned.get(job_id)
            row = plan.row if plan is not None else rows.get(job_id)
            if row is None or row.load_error:
                why = "it was removed or finished" if row is None else "it cannot be loaded"
                self.ledger.skipped(job_id, [run_time], reason=f"Run-now request skipped: {why}")
                continue
            busy = counts.get(job_id, 0) + len(taken.get(job_id, (None, []))[1])
            busy += len(plan.run_times) if plan is not None else 0
            if busy >= row.max_instances:
                self.ledger.skipped(
                    job_id,
                    [run_time],
                    reason=f"max_instances ({row.max_instances}) reached: that many runs were "
                    "unfinished on live schedulers; this run-now request was skipped",
                )
                continue
            try:
                job = plan.job if plan is not None else self.load(row)
            except Exception as exc:
                self.flag(row, exc)
                self.ledger.skipped(
                    job_id, [run_time], reason=f"Run-now request skipped: {type(exc).__name__}"
                )
                continue
            if self.ledger.take_request(request.id):
                taken.setdefault(job_id, (job, []))[1].append(run_time)
        return taken

    def _report_missed(self, plan: Plan, recorded: set[tuple[str, datetime]]) -> Missed | None:
        """Log the one line a backlog older than the grace time gets (if this claim recorded it)."""
        if plan.missed is None or (plan.row.id, _utc(plan.missed.first)) not in recorded:
            return None
        logger.warning("Job %r: %s", plan.row.id, user(plan.missed.describe()))
        return plan.missed

    def _limit(self) -> int:
        """How many runs this claim may take: the batch size, or less room."""
        if self.capacity is None:
            return self.batch_size
        return min(self.batch_size, self.capacity())

    def _select_due(self, now: datetime) -> list[JobRow]:
        limit = self._limit()
        rows = select_due(self.database, now, limit) if limit > 0 else []
        self._took(limit, len(rows))
        return rows

    def _took(self, limit: int, rows: int) -> None:
        self.full = rows == limit
        self.starved = limit < self.batch_size and self.full

    def plan(self, row: StoredRow, now: datetime) -> Plan | None:
        """What this claim takes for the row: its run times and next fire time.

        Takes what ``BaseScheduler._process_jobs`` would (the run times up to now, coalesced
        when the job coalesces), bounded per job and claim (see :mod:`~.backlog`); a row that
        cannot be loaded or planned is flagged and left out.
        """
        try:
            job = self.load(row)
            taken = walk(job, now)
        except Exception as exc:
            self.flag(row, exc)
            return None
        if not taken.run_times and taken.missed is None:
            return None
        return Plan(row, job, taken.run_times, taken.next_run_time, taken.missed)

    def _read(self, now: datetime) -> tuple[list[JobRow], list[Request], dict[str, int]]:
        """The claim's first round trip: the due rows (within this process's room) and the
        pending run-now requests, locked, then (for a node) the unfinished runs per job on
        live nodes, read after the locks were taken, so that two schedulers cannot both count
        below ``max_instances`` for one job; on PostgreSQL with the setting that keeps the
        claim's own writes from waking other schedulers (wakeups.TRIGGER_SQL)."""
        connection = connections[self.database]
        limit = self._limit()
        statements: list[Statement] = []
        if connection.vendor == "postgresql":
            statements.append(("SELECT set_config(%s, 'on', true)", [CLAIMING_SETTING]))
        due_at = requests_at = None
        if limit > 0:
            due_at = len(statements)
            statements.append(due_statement(connection, now, limit))
        counts_at = None
        if self.ledger.node_id and limit > 0:
            requests_at = len(statements)
            statements.append(self.ledger.pending_requests_statement(limit))
            counts_at = len(statements)
            statements.append(self.ledger.unfinished_statement(self.node_timeout))
        results = batch(connection, statements)
        rows = [] if due_at is None else due_rows(connection, results[due_at])
        self._took(limit, len(rows))
        pending = [] if requests_at is None else self.ledger.requests_from(results[requests_at])
        counts = {} if counts_at is None else self.ledger.counts_from(results[counts_at])
        return rows, pending, counts

    def _write(
        self, plans: Sequence[Plan], busy: dict[str, int], now: datetime
    ) -> tuple[set[Key], set[Key], set[Key]]:
        """The claim's writes, in one round trip where the database allows: each row's new
        ``next_run_time`` (``finished_at`` when the trigger is done) and ``version + 1``, if
        its version is still the one read (fixed SQL: building it with the ORM, a ``CASE``
        branch per row, was most of a claim's time), and the ledger's rows of the runs.
        Returns the runs inserted to run, ``skipped`` and ``missed``."""
        connection = connections[self.database]
        rows = [(plan.row.id, plan.row.version, plan.next_run_time) for plan in plans]
        advance = advance_statements(connection, rows, now)
        runs = self._new_runs(plans, busy)
        insert = self.ledger.claim_statements(runs)
        if (
            insert is not None
            and insert.statements
            and len(advance) == 1
            and can_batch(connection)
            and not connection.savepoint_ids  # the claim's transaction is the outermost
            and not self._enqueues_in_claim(plans)
        ):
            # The last of the claim's work: one round trip that also commits (a COMMIT of
            # its own was one more wait for the server and for the GIL in every claim);
            # the atomic block's own commit then finds nothing to do.
            first = guarded_advance(advance[0], insert.statements[0], len(plans))
            try:
                results = batch(connection, [first, *insert.statements[1:], ("COMMIT", [])])
            except DataError as exc:
                if getattr(exc.__cause__, "sqlstate", None) == DIVISION_BY_ZERO:
                    raise ClaimConflictError from exc  # the guard: not every row advanced
                raise
            return insert.finish(results[: len(insert.statements)])
        results = batch(connection, [*advance, *(insert.statements if insert else [])])
        if advanced(connection, results[: len(advance)]) != len(plans):
            raise ClaimConflictError
        if insert is None:  # the ledger looks its runs up first (MySQL/MariaDB)
            return self.ledger.claimed(runs)
        return insert.finish(results[len(advance) :])

    def _defer_busy(self, plans: list[Plan], busy: dict[str, int], now: datetime) -> list[Plan]:
        """The plans to claim now: without those of busy jobs whose runs are not due yet
        (remembered in :attr:`deferred`)."""
        kept = []
        for plan in plans:
            if plan.row.id in busy and plan.missed is None and min(plan.run_times) > now:
                self.deferred[plan.row.id] = min(plan.run_times)
            else:
                kept.append(plan)
        return kept

    def _new_runs(self, plans: Sequence[Plan], busy: dict[str, int]) -> list[NewRun]:
        backlog = [
            NewRun(
                job_id=plan.row.id,
                scheduled_run_time=plan.missed.first,
                job_name=plan.row.name,
                func=plan.row.task or plan.row.func,
                missed_reason=plan.missed.describe(),
            )
            for plan in plans
            if plan.missed is not None
        ]
        return backlog + [
            NewRun(
                job_id=plan.row.id,
                scheduled_run_time=run_time,
                job_name=plan.row.name,
                func=plan.row.task or plan.row.func,
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

    def _at_max_instances(self, plans: Sequence[Plan], counts: dict[str, int]) -> dict[str, int]:
        """Jobs whose unfinished runs on live nodes already reach ``max_instances`` (counted
        inside the claim, after it locked these jobs' rows: see :meth:`_read`)."""
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


def advance_statements(
    connection: Any, rows: Sequence[tuple[str, int, datetime | None]], now: datetime
) -> list[Statement]:
    """The statements that advance ``(id, version read, next_run_time)`` rows (see
    :meth:`Claimer._write`); :func:`advanced` reads how many matched their version from
    their results. PostgreSQL joins arrays (one statement), MySQL/MariaDB a derived table of
    ``UNION ALL`` rows, SQLite a ``VALUES`` common table expression (one statement per
    :data:`ADVANCE_CHUNK` rows, each followed by ``SELECT changes()``: Python's sqlite3
    reports no rowcount for a statement that starts with ``WITH``)."""
    if connection.vendor != "postgresql" and len(rows) > ADVANCE_CHUNK:
        return [
            statement
            for start in range(0, len(rows), ADVANCE_CHUNK)
            for statement in advance_statements(
                connection, rows[start : start + ADVANCE_CHUNK], now
            )
        ]
    quote = connection.ops.quote_name
    table = quote(Job._meta.db_table)
    ops = connection.ops

    def stored(value: datetime | None) -> Any:
        return None if value is None else ops.adapt_datetimefield_value(value)

    ids = [row[0] for row in rows]
    versions = [row[1] for row in rows]
    times = [stored(row[2]) for row in rows]
    at = stored(now)
    if connection.vendor == "postgresql":
        sql = (
            f"UPDATE {table} AS j SET next_run_time = v.next_run_time, "
            "finished_at = CASE WHEN v.next_run_time IS NULL THEN %s::timestamptz END, "
            "version = j.version + 1, updated_at = %s "
            "FROM unnest(%s::text[], %s::bigint[], %s::timestamptz[]) "
            "AS v(id, version, next_run_time) WHERE j.id = v.id AND j.version = v.version "
            # The ids again, for the primary key's index: joined to the arrays alone, the
            # planner hashed every row of the table (a sequential scan per claim).
            "AND j.id = ANY(%s::text[])"
        )
        ids_array = pg_array(ids)
        params: list[Any] = [at, at, ids_array, pg_array(versions), pg_array(times), ids_array]
    elif connection.vendor == "mysql":
        one = "SELECT %s AS id, %s AS version, CAST(%s AS DATETIME(6)) AS next_run_time"
        derived = " UNION ALL ".join([one] * len(rows))
        sql = (
            f"UPDATE {table} AS j FORCE INDEX (PRIMARY) JOIN ({derived}) AS v "
            "ON j.id = v.id AND j.version = v.version "
            "SET j.next_run_time = v.next_run_time, "
            "j.finished_at = CASE WHEN v.next_run_time IS NULL THEN %s END, "
            "j.version = j.version + 1, j.updated_at = %s "
            # The ids again, and the primary key forced: a multi-table UPDATE locks every row
            # it reads, and on a small table InnoDB reads them all, rows another claim holds
            # included (two claims deadlocked so in the reliability tests on MariaDB).
            f"WHERE j.id IN ({', '.join(['%s'] * len(rows))})"
        )
    else:
        values = ", ".join(["(%s, %s, %s)"] * len(rows))
        sql = (
            f"WITH v(id, version, next_run_time) AS (VALUES {values}) "
            f"UPDATE {table} SET "
            f"next_run_time = (SELECT v.next_run_time FROM v WHERE v.id = {table}.id), "
            f"finished_at = CASE WHEN (SELECT v.next_run_time FROM v WHERE v.id = {table}.id) "
            "IS NULL THEN %s END, "
            "version = version + 1, updated_at = %s "
            "WHERE (id, version) IN (SELECT id, version FROM v)"
        )
    if connection.vendor != "postgresql":  # one (id, version, time) per row, then the times
        params = [value for row in zip(ids, versions, times, strict=True) for value in row]
        params += [at, at]
        if connection.vendor == "mysql":
            params += ids
    if connection.vendor == "sqlite":
        return [(sql, params), ("SELECT changes()", [])]
    return [(sql, params)]


#: The SQLSTATE of a division by zero: :func:`guarded_advance`'s guard.
DIVISION_BY_ZERO = "22012"


def guarded_advance(advance: Statement, insert: Statement, count: int) -> Statement:
    """PostgreSQL: a claim's advance (:func:`advance_statements`) and its first ledger insert
    (``batchsql.insert_statements``) as one statement, which fails with a division by zero,
    rolling both back, unless the advance moved all ``count`` rows (their version compared):
    the check :func:`advanced` makes after the fact, made before anything can commit."""
    advance_sql, advance_params = advance
    insert_sql, insert_params = insert
    if not (
        insert_sql.startswith("INSERT INTO ")
        and insert_sql.count(" FROM unnest(") == 1
        and insert_sql.count(" ON CONFLICT ") == 1
    ):
        raise ValueError(f"not a ledger insert from arrays: {insert_sql[:80]!r}")
    guarded_insert = insert_sql.replace(" FROM unnest(", " FROM claim_guard, unnest(").replace(
        " ON CONFLICT ", " WHERE claim_guard.ok = 1 ON CONFLICT "
    )
    sql = (
        f"WITH advanced AS ({advance_sql} RETURNING j.id), "
        "claim_guard AS (SELECT 1 / (COUNT(*) = %s)::int AS ok FROM advanced) "
        f"{guarded_insert}"
    )
    return sql, [*advance_params, count, *insert_params]


def advanced(connection: Any, results: Sequence[Result]) -> int:
    """How many rows the statements of :func:`advance_statements` advanced."""
    if connection.vendor == "sqlite":
        return sum(int(result.rows[0][0]) for result in results if result.rows)
    return sum(result.rowcount for result in results)


def select_due(database: str, now: datetime, limit: int) -> list[JobRow]:
    """Up to ``limit`` rows due by ``now`` that schedulers may run, soonest first, locked
    (``FOR UPDATE SKIP LOCKED`` where the database has it): one fixed statement, each column
    converted as the ORM converts it, without a model instance per row."""
    connection = connections[database]
    (result,) = batch(connection, [due_statement(connection, now, limit)])
    return due_rows(connection, result)


def due_statement(connection: Any, now: datetime, limit: int) -> Statement:
    """The statement of :func:`select_due`, for a batch; :func:`due_rows` reads its result."""
    due = _due_statement(connection, get_conf().declared_jobs)
    field = Job._meta.get_field("next_run_time")
    return due.sql, [*due.params, field.get_db_prep_value(now, connection), limit]


def due_rows(connection: Any, result: Result) -> list[JobRow]:
    due = _due_statement(connection, get_conf().declared_jobs)
    return [JobRow._make(row) for row in converted(result.rows or [], due.converters, connection)]


@dataclass(frozen=True)
class _DueStatement:
    sql: str
    #: The parameters before ``now`` and the limit.
    params: tuple[Any, ...]
    converters: Converters


_due_statements: dict[tuple[str, str, bool], _DueStatement] = {}


def _due_statement(connection: Any, declared_jobs: bool) -> _DueStatement:
    key = (connection.alias, connection.vendor, declared_jobs)
    if key in _due_statements:
        return _due_statements[key]
    quote = connection.ops.quote_name
    meta = Job._meta
    names = (*JOB_COLUMNS, "finished_at", "source")
    column = {name: quote(meta.get_field(name).column) for name in names}  # type: ignore[union-attr]
    where = [f"{column['finished_at']} IS NULL", f"{column['load_error']} = %s"]
    params: list[Any] = [""]
    if not declared_jobs:  # JobQuerySet.runnable: this process runs no job declared in code
        where.append(f"{column['source']} <> %s")
        params.append(JobSource.CODE)
    where.append(f"{column['next_run_time']} <= %s")
    sql = (
        f"SELECT {', '.join(column[name] for name in JOB_COLUMNS)} "
        f"FROM {quote(meta.db_table)} WHERE {' AND '.join(where)} "
        f"ORDER BY {column['next_run_time']}, {column['id']} LIMIT %s"
    )
    if connection.features.has_select_for_update_skip_locked:
        sql += " FOR UPDATE SKIP LOCKED"
    # The trigger column stays text: jobstore.stored_trigger builds each distinct one once.
    converters = converters_for(connection, Job, JOB_COLUMNS, raw={"trigger"})
    statement = _DueStatement(sql, tuple(params), converters)
    _due_statements[key] = statement
    return statement


def _take_sqlite_write_lock(connection: Any) -> None:
    # A write as the first statement makes SQLite take its write lock now (waiting for
    # other writers up to the busy timeout), so the SELECT below reads settled rows.
    table = connection.ops.quote_name(Job._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET version = version WHERE 1 = 0")


def _planned_at(row: StoredRow, now: datetime) -> datetime:
    """The moment a row is planned at: now if it is due, else its own next run time (a
    claim ahead takes exactly that run time)."""
    due = row.next_run_time
    return now if due is None or due <= now else due


def _utc(value: datetime) -> datetime:
    return value.astimezone(dt_timezone.utc)


def claimed_job(job: APJob) -> Claim | None:
    """The claim attached to a job handed out by ``get_due_jobs`` (None for other stores)."""
    claim: Claim | None = getattr(job, "_clockwork_claim", None)
    return claim
