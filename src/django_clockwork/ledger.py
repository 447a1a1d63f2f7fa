"""The run ledger: the life cycle of a ``JobExecution`` row, and the only code that writes it.

A run is inserted ``scheduled`` by the claim (or a manual run), then moves through named
transitions, each one conditional write that names the states it may leave::

    claimed / manual run   -> scheduled
    started                scheduled            -> running
    succeeded              running              -> succeeded
    failed                 scheduled | running  -> failed
    missed                 scheduled            -> missed
    skipped                scheduled            -> skipped
    enqueued               scheduled            -> enqueued
    task succeeded         enqueued             -> succeeded
    task failed            enqueued             -> failed
    abandoned              scheduled | running  -> abandoned

``task succeeded`` and ``task failed`` complete an enqueued run with the task's own outcome,
when a worker that has this app installed reports it (the tasks framework's ``task_finished``
signal, see :mod:`~django_clockwork.taskresults`); without one the run stays ``enqueued``.

One write is not a transition: ``warned`` appends a note of the watchdog (long running, or
holding a worker while due runs waited) to the ``warning`` of a run that is ``running``.

A run's ``started``, ``succeeded`` and ``failed`` from the executor are group-committed
(:mod:`django_clockwork.groupcommit`, with the same transitions and the same conditions);
the others are written at once.

A finished run never moves again, and only finished runs are ever deleted (history
pruning, ``retention``). A transition asked of a run in another state changes
nothing: it is refused and logged (with the state the run was in), and the caller is told.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any, NamedTuple

from django.db import connections
from django.db.models import Case, F, Q, TextField, Value, When
from django.db.models.functions import Concat

from django_clockwork.batchsql import (
    can_insert_runs,
    insert_statements,
    inserted_runs,
    plain_insert_statements,
)
from django_clockwork.logtext import format_time
from django_clockwork.models import ExecutionStatus, JobExecution, SchedulerNode, TriggerSource
from django_clockwork.reconnect import drop_broken_connection
from django_clockwork.sqlrows import (
    Converters,
    Result,
    Statement,
    batch,
    converted,
    converters_for,
)
from django_clockwork.storedtext import EXCEPTION_MAX, TRACEBACK_MAX, head, tail

logger = logging.getLogger(__name__)

#: Recorded with every run this process claims.
HOSTNAME = socket.gethostname()

S = ExecutionStatus
Key = tuple[str, datetime]
#: Run times per statement when a write or lookup names many (bounded host parameters).
LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[str]
    target: str


STARTED = Transition("started", frozenset({S.SCHEDULED}), S.RUNNING)
SUCCEEDED = Transition("succeeded", frozenset({S.RUNNING}), S.SUCCEEDED)
FAILED = Transition("failed", frozenset({S.SCHEDULED, S.RUNNING}), S.FAILED)
MISSED = Transition("missed", frozenset({S.SCHEDULED}), S.MISSED)
SKIPPED = Transition("skipped", frozenset({S.SCHEDULED}), S.SKIPPED)
ENQUEUED = Transition("enqueued", frozenset({S.SCHEDULED}), S.ENQUEUED)
ABANDONED = Transition("abandoned", frozenset({S.SCHEDULED, S.RUNNING}), S.ABANDONED)
TASK_SUCCEEDED = Transition("task succeeded", frozenset({S.ENQUEUED}), S.SUCCEEDED)
TASK_FAILED = Transition("task failed", frozenset({S.ENQUEUED}), S.FAILED)

#: Every transition of an existing run, by name.
TRANSITIONS = {
    t.name: t
    for t in (
        STARTED,
        SUCCEEDED,
        FAILED,
        MISSED,
        SKIPPED,
        ENQUEUED,
        ABANDONED,
        TASK_SUCCEEDED,
        TASK_FAILED,
    )
}
#: States a run is still owed an outcome in.
UNFINISHED = frozenset({S.SCHEDULED, S.RUNNING})
#: States a run never leaves: the only runs history pruning may delete.
FINISHED = frozenset(t.target for t in TRANSITIONS.values()) - UNFINISHED

#: Seconds between attempts of a durable write while the database is unreachable (~30 s).
DURABLE_BACKOFF = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


def now() -> datetime:
    return datetime.now(dt_timezone.utc)


class NewRun(NamedTuple):
    """A run time the claim (or a manual request) adds to the ledger."""

    job_id: str
    scheduled_run_time: datetime
    job_name: str
    func: str
    #: Set when the run is refused at once (``max_instances`` reached fleet-wide).
    skipped_reason: str = ""
    trigger_source: str = TriggerSource.SCHEDULE
    #: Set when the row records run times missed before they were claimed (a backlog).
    missed_reason: str = ""
    #: Who asked for a run-now run.
    requested_by: str = ""


class Request(NamedTuple):
    """A run-now request waiting for a scheduler: its ledger row's id and run."""

    id: int
    job_id: str
    scheduled_run_time: datetime


class ClaimInsert(NamedTuple):
    """A claim's ledger insert as statements, and what reads their results."""

    statements: list[Statement]
    finish: Callable[[Sequence[Result]], Inserted]


class Inserted(NamedTuple):
    """The (job id, UTC run time) pairs a claim inserted, by what becomes of them."""

    run: set[Key]
    skipped: set[Key]
    missed: set[Key]


class Ledger:
    """The ledger of one database, as seen by one node (``node_id``, may be empty)."""

    def __init__(self, database: str, node_id: str = "") -> None:
        self.database = database
        self.node_id = node_id

    def __repr__(self) -> str:
        return f"<Ledger database={self.database!r} node={self.node_id[:8]!r}>"

    def _runs(self) -> Any:
        return JobExecution.objects.using(self.database)

    # -- inserts --------------------------------------------------------------------------

    def claimed(self, runs: Collection[NewRun]) -> Inserted:
        """Insert the run times a claim took; returns the (job id, UTC time) pairs inserted
        to run, those inserted ``skipped`` (a ``skipped_reason``) and ``missed`` (a
        ``missed_reason``).

        Called inside the claim's transaction. A run time already in the ledger is not
        inserted again and in no set (the ``UNIQUE(job_id, scheduled_run_time)`` fence).
        """
        insert = self.claim_statements(runs)
        if insert is not None:  # one statement: inserted unless already there
            drop_broken_connection(self.database)
            return insert.finish(batch(connections[self.database], insert.statements))
        wanted = {(run.job_id, utc(run.scheduled_run_time)): run for run in runs}
        existing = self.existing(wanted)  # looked up, then inserted
        connection = connections[self.database]
        rows = self._new_rows(wanted, wanted.keys() - existing)
        batch(connection, plain_insert_statements(connection, rows))
        return _inserted(wanted, existing)

    def claim_statements(self, runs: Collection[NewRun]) -> ClaimInsert | None:
        """The statements that insert a claim's runs (see :meth:`claimed`), for a caller that
        runs them in a batch with its own; None where the database needs a lookup first."""
        wanted = {(run.job_id, utc(run.scheduled_run_time)): run for run in runs}
        if not wanted:
            return ClaimInsert([], lambda results: Inserted(set(), set(), set()))
        connection = connections[self.database]
        if not can_insert_runs(connection):
            return None
        rows = self._new_rows(wanted, wanted.keys())

        def finish(results: Sequence[Result]) -> Inserted:
            return _inserted(wanted, wanted.keys() - inserted_runs(results))

        return ClaimInsert(insert_statements(connection, rows), finish)

    def manual_run(self, run: NewRun) -> bool:
        """Insert a run asked for by a person or a program (``trigger_source`` run-now/api)."""
        return bool(self.claimed([run])[0])

    # -- run-now requests ------------------------------------------------------------------
    # A request is a ``scheduled`` run-now row with no node: any live scheduler may take it
    # (setting its node, a compare-and-set) inside its claim.

    def pending_requests(self, limit: int) -> list[Request]:
        """Run-now requests no scheduler has taken yet, oldest first (locked, skipping rows
        another scheduler holds, where the database can)."""
        if limit <= 0:
            return []
        connection = connections[self.database]
        (result,) = batch(connection, [self.pending_requests_statement(limit)])
        return self.requests_from(result)

    def pending_requests_statement(self, limit: int) -> Statement:
        """The fixed statement of :meth:`pending_requests` (asked by every claim, in a batch
        with the claim's own), whose result :meth:`requests_from` reads."""
        sql, _converters = _requests_statement(connections[self.database])
        return sql, [str(S.SCHEDULED), "", str(TriggerSource.RUN_NOW), max(limit, 0)]

    def requests_from(self, result: Result) -> list[Request]:
        connection = connections[self.database]
        _sql, converters = _requests_statement(connection)
        return [Request._make(row) for row in converted(result.rows or [], converters, connection)]

    def execution_id(self, job_id: str, run_time: datetime) -> int:
        """The id of the history row of this run."""
        found: int = (
            self._runs()
            .filter(job_id=job_id, scheduled_run_time=utc(run_time))
            .values_list("id", flat=True)
            .get()
        )
        return found

    def requests_waiting(self) -> bool:
        """Whether a run-now request waits for a scheduler."""
        waiting: bool = (
            self._runs()
            .filter(status=S.SCHEDULED, node_id="", trigger_source=TriggerSource.RUN_NOW)
            .exists()
        )
        return waiting

    def take_request(self, request_id: int) -> bool:
        """Make this node the owner of a pending request; False if another took it."""
        taken: int = (
            self._runs()
            .filter(id=request_id, status=S.SCHEDULED, node_id="")
            .update(node_id=self.node_id, claimed_at=now(), **self._claimer())
        )
        return taken == 1

    def expire_requests(self, older_than: datetime) -> int:
        """Record requests that waited since before ``older_than`` for a scheduler ``missed``."""
        return self._update(
            MISSED,
            Q(node_id="", trigger_source=TriggerSource.RUN_NOW, scheduled_run_time__lt=older_than),
            {
                "finished_at": now(),
                "exception": "Run-now request expired: no scheduler took it within RUN_NOW_EXPIRY",
            },
        )

    def ensure_scheduled(self, runs: Iterable[NewRun]) -> None:
        """Make sure these runs have a row (runs of jobs that came from another job store)."""
        self.claimed(list(runs))

    def _fields(self, run: NewRun, claimer: dict[str, Any] | None = None) -> dict[str, Any]:
        """The columns of the ledger row of a new run that are not their defaults."""
        fields: dict[str, Any] = {}
        if run.missed_reason:
            fields = {"status": S.MISSED, "finished_at": now(), "exception": run.missed_reason}
        elif run.skipped_reason:
            fields = {
                "status": S.SKIPPED,
                "finished_at": now(),
                "exception": run.skipped_reason,
            }
        return {
            "job_id": run.job_id,
            "job_name": run.job_name,
            "func": run.func,
            "scheduled_run_time": utc(run.scheduled_run_time),
            "trigger_source": run.trigger_source,
            "requested_by": run.requested_by,
            "node_id": self.node_id,
            **(self._claimer() if claimer is None else claimer),
            **bounded(fields),
        }

    def _new_rows(self, wanted: dict[Key, NewRun], keys: Collection[Key]) -> list[dict[str, Any]]:
        """Every column of the ledger rows of these runs, in key order: one claim, one
        ``claimed_at``."""
        at, claimer = now(), self._claimer()
        return [self._values(wanted[key], at, claimer) for key in sorted(keys)]

    def _values(self, run: NewRun, claimed_at: datetime, claimer: dict[str, Any]) -> dict[str, Any]:
        """Every column of the ledger row of a new run (ORM-free: a model instance per run
        cost more than the row's insert)."""
        return {**_column_defaults(), "claimed_at": claimed_at, **self._fields(run, claimer)}

    def _claimer(self) -> dict[str, Any]:
        """The host and pid of the process that claims a run, recorded with the claim: the
        run executes in that process, and a crash before its ``running`` write is flushed
        still leaves the row naming it (the reaper's ``abandoned`` tells whose run it was)."""
        if not self.node_id:
            return {}
        return {"hostname": HOSTNAME, "pid": os.getpid()}

    def existing(self, keys: Collection[Key]) -> set[Key]:
        """Which of these (job id, run time) pairs have a ledger row already.

        One query per :data:`LOOKUP_CHUNK` pairs, so that no statement exceeds a database's
        limit on host parameters however many pairs a claim takes.
        """
        found: set[Key] = set()
        ordered = sorted(set(keys))
        for start in range(0, len(ordered), LOOKUP_CHUNK):
            chunk = ordered[start : start + LOOKUP_CHUNK]
            found.update(
                self._runs()
                .filter(
                    job_id__in={job_id for job_id, _ in chunk},
                    scheduled_run_time__in={t for _, t in chunk},
                )
                .values_list("job_id", "scheduled_run_time")
            )
        return found & set(keys)

    # -- transitions ----------------------------------------------------------------------

    def started(self, job_id: str, run_time: datetime, *, hostname: str, pid: int) -> bool:
        return (
            self._move(STARTED, job_id, [run_time], started_at=now(), hostname=hostname, pid=pid)
            == 1
        )

    def succeeded(self, job_id: str, run_time: datetime, *, duration: float) -> bool:
        return self._move(SUCCEEDED, job_id, [run_time], finished_at=now(), duration=duration) == 1

    def failed(
        self,
        job_id: str,
        run_time: datetime,
        *,
        exception: str,
        traceback: str = "",
        duration: float | None = None,
        durable: bool = True,
    ) -> bool:
        fields: dict[str, Any] = {"exception": exception, "traceback": traceback}
        if duration is not None:
            fields["duration"] = duration
        moved = self._move(FAILED, job_id, [run_time], durable=durable, finished_at=now(), **fields)
        return moved == 1

    def missed(self, job_id: str, run_times: Collection[datetime], *, reason: str) -> int:
        return self._move(MISSED, job_id, run_times, finished_at=now(), exception=reason)

    def skipped(self, job_id: str, run_times: Collection[datetime], *, reason: str) -> int:
        return self._move(SKIPPED, job_id, run_times, finished_at=now(), exception=reason)

    def enqueued(
        self,
        job_id: str,
        run_time: datetime,
        *,
        note: str = "",
        backend: str = "",
        result_id: str = "",
        durable: bool = True,
    ) -> bool:
        """The run was handed to a task backend (``backend``) as result ``result_id``.

        Inside the claim's transaction (``durable=False``) it is one attempt: a retry cannot
        help a transaction that failed.
        """
        fields = {
            "started_at": now(),
            "exception": note,
            "task_backend": backend,
            "task_result_id": result_id,
            "hostname": HOSTNAME,
            "pid": os.getpid(),
        }
        return self._move(ENQUEUED, job_id, [run_time], durable=durable, **fields) == 1

    def task_finished(
        self,
        backend: str,
        result_id: str,
        *,
        succeeded: bool,
        started_at: datetime | None,
        finished_at: datetime | None,
        exception: str = "",
        traceback: str = "",
    ) -> int:
        """Complete the enqueued run whose task result this is (``task succeeded`` or
        ``task failed``) with the task's times; returns how many runs moved (0 or 1, and 0
        without a word for a result no run enqueued)."""
        run = (
            self._runs()
            .filter(task_backend=backend, task_result_id=result_id)
            .values_list("job_id", "scheduled_run_time")
            .first()
        )
        if run is None:
            return 0  # a task no job enqueued
        transition = TASK_SUCCEEDED if succeeded else TASK_FAILED
        fields: dict[str, Any] = {"finished_at": finished_at or now()}
        if started_at is not None:
            fields["started_at"] = started_at
            fields["duration"] = (fields["finished_at"] - started_at).total_seconds()
        if not succeeded:
            fields.update(exception=exception, traceback=traceback)
        # One attempt: this runs in a worker's signal, which must not stall on an outage.
        return self._move(transition, run[0], [run[1]], durable=False, **fields)

    def abandoned(
        self, job_id: str, run_times: Collection[datetime], *, reason: str, durable: bool = True
    ) -> int:
        fields = {"finished_at": now(), "exception": reason}
        return self._move(ABANDONED, job_id, run_times, durable=durable, **fields)

    def warned(self, job_id: str, run_time: datetime, note: str) -> bool:
        """Append ``note`` (one line) to the ``warning`` of this run if it is ``running``.

        One attempt, no retries: the caller (the watchdog) has logged the note already and
        must not stall on a database outage. False if the run is no longer running.
        """
        drop_broken_connection(self.database)
        line = note.replace("\n", " ")
        updated: int = (
            self._runs()
            .filter(job_id=job_id, scheduled_run_time=utc(run_time), status=S.RUNNING)
            .update(
                warning=Case(
                    When(warning="", then=Value(line, output_field=TextField())),
                    default=Concat(F("warning"), Value("\n" + line), output_field=TextField()),
                    output_field=TextField(),
                )
            )
        )
        return updated == 1

    def abandon_node(self, node_id: str, reason: str) -> int:
        """Every unfinished run of a dead node (the reaper, inside its own transaction)."""
        return self._update(
            ABANDONED,
            Q(node_id=node_id),
            {"finished_at": now(), "exception": reason},
        )

    def _move(
        self,
        transition: Transition,
        job_id: str,
        run_times: Collection[datetime],
        *,
        durable: bool = True,
        **fields: Any,
    ) -> int:
        """Apply ``transition`` to these runs of one job; returns how many moved."""
        total = 0
        attempts = len(DURABLE_BACKOFF) + 1 if durable else 1
        for times in _chunks(sorted({utc(t) for t in run_times}), LOOKUP_CHUNK):
            where = Q(job_id=job_id, scheduled_run_time__in=times)
            write = functools.partial(self._update, transition, where, fields)
            moved = _persist(write, transition, job_id, attempts)
            if moved is not None and moved < len(times):
                self._log_refused(transition, job_id, times, moved)
            total += moved or 0
        return total

    def _update(self, transition: Transition, where: Q, fields: dict[str, Any]) -> int:
        drop_broken_connection(self.database)
        updated: int = (
            self._runs()
            .filter(where, status__in=transition.sources)
            .update(status=transition.target, **bounded(fields))
        )
        return updated

    def _log_refused(
        self, transition: Transition, job_id: str, times: list[datetime], moved: int
    ) -> None:
        """Log the runs a transition did not move: in another state, or not in the ledger."""
        states = dict(
            self._runs()
            .filter(job_id=job_id, scheduled_run_time__in=times)
            .values_list("scheduled_run_time", "status")
        )
        for run_time in times:
            state = states.get(run_time)
            if state == transition.target and moved:
                continue  # moved by this write (a run of a batch that partly moved)
            logger.warning(
                "Ledger refused %r for job %r at %s: the run is %s; %r only leaves %s",
                transition.name,
                job_id,
                format_time(run_time),
                state or "not in the ledger",
                transition.name,
                "/".join(sorted(transition.sources)),
            )

    # -- pruning ----------------------------------------------------------------------------

    def finished_runs(self) -> Any:
        """Runs in a state they never leave: what history pruning may delete."""
        return self._runs().filter(status__in=FINISHED)

    def delete_finished(self, ids: Collection[int]) -> int:
        """Delete these runs (one statement; the caller bounds ``ids``), unfinished ones never."""
        deleted: int = self.finished_runs().filter(id__in=ids).delete()[0]
        return deleted

    # -- reads ----------------------------------------------------------------------------

    def unfinished_counts(self, node_timeout: float) -> dict[str, int]:
        """Unfinished runs per job, counting only runs claimed by nodes that heartbeat within
        ``node_timeout`` seconds (by the database clock); jobs with none are left out."""
        connection = connections[self.database]
        (result,) = batch(connection, [self.unfinished_statement(node_timeout)])
        return self.counts_from(result)

    def unfinished_statement(self, node_timeout: float) -> Statement:
        """The fixed statement of :meth:`unfinished_counts` (asked by every claim, in a batch
        after the statement that locks the claim's rows, so that it reads what was committed
        by then), whose result :meth:`counts_from` reads. It reads only the runs in flight on
        live nodes (their threads' and claims' worth), through the ``(node_id, status)``
        index, whatever the size of the history."""
        connection = connections[self.database]
        live_sql, live_params = _live_nodes_sql(self.database, node_timeout)
        quote = connection.ops.quote_name
        job, status, node = (quote(n) for n in ("job_id", "status", "node_id"))  # the columns
        sql = (
            f"SELECT {job}, COUNT(*) FROM {quote(JobExecution._meta.db_table)} "
            f"WHERE {node} IN ({live_sql}) AND {status} IN (%s, %s) GROUP BY {job}"
        )
        return sql, [*live_params, *sorted(UNFINISHED)]

    @staticmethod
    def counts_from(result: Result) -> dict[str, int]:
        return {job_id: int(count) for job_id, count in result.rows or ()}

    def scheduled_here(self, exclude_jobs: Collection[str]) -> list[Key]:
        """This node's runs still ``scheduled`` (claimed, not started), but for these jobs."""
        return list(
            self._runs()
            .filter(node_id=self.node_id, status=S.SCHEDULED)
            .exclude(job_id__in=exclude_jobs)
            .values_list("job_id", "scheduled_run_time")
        )


def _persist(write: Any, transition: Transition, job_id: str, attempts: int) -> int | None:
    """Run a ledger write, retrying while the database is unreachable.

    With one attempt (inside a caller's transaction) errors propagate; durable writes
    never raise: after the last attempt the failure is logged and None returned.
    """
    if attempts == 1:
        result: int = write()
        return result
    for attempt, delay in enumerate((*DURABLE_BACKOFF[: attempts - 1], None)):
        try:
            result = write()
            return result
        except Exception:
            if delay is None:
                logger.exception(
                    "Could not record %r for job %r after %d attempts",
                    transition.name,
                    job_id,
                    attempt + 1,
                )
                return None
            logger.warning(
                "Could not record %r for job %r; retrying in %ss",
                transition.name,
                job_id,
                delay,
                exc_info=True,
            )
            time.sleep(delay)
    return None  # pragma: no cover


def _key(run: NewRun) -> Key:
    return run.job_id, utc(run.scheduled_run_time)


def _chunks(items: list[datetime], size: int) -> Iterator[list[datetime]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def bounded(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with ``exception`` and ``traceback`` cut to what the columns keep."""
    if not fields:
        return {}
    bounded = dict(fields)
    if "exception" in bounded:
        bounded["exception"] = head(bounded["exception"], EXCEPTION_MAX)
    if "traceback" in bounded:
        bounded["traceback"] = tail(bounded["traceback"], TRACEBACK_MAX)
    return bounded


def utc(value: datetime) -> datetime:
    return value.astimezone(dt_timezone.utc)


@functools.cache
def _column_defaults() -> dict[str, Any]:
    """Each ledger column's default, by field name (every concrete field but ``id``)."""
    return {
        field.name: field.get_default()
        for field in JobExecution._meta.concrete_fields
        if not field.primary_key
    }


@functools.cache
def _live_nodes_sql(database: str, node_timeout: float) -> tuple[str, tuple[Any, ...]]:
    """The SQL of ``SchedulerNode.objects.live(node_timeout).values("id")`` and its
    parameters (the database's clock is read when the statement runs)."""
    query = SchedulerNode.objects.using(database).live(node_timeout).values("id").query
    sql, params = query.get_compiler(using=database).as_sql()
    return sql, tuple(params)


_requests_statements: dict[tuple[str, str], tuple[str, Converters]] = {}


def _requests_statement(connection: Any) -> tuple[str, Converters]:
    """The SQL of :meth:`Ledger.pending_requests` on this connection, and its converters."""
    key = (connection.alias, connection.vendor)
    if key not in _requests_statements:
        quote = connection.ops.quote_name
        columns = ", ".join(quote(name) for name in Request._fields)  # names are the columns
        sql = (
            f"SELECT {columns} FROM {quote(JobExecution._meta.db_table)} "
            f"WHERE {quote('status')} = %s AND {quote('node_id')} = %s "
            f"AND {quote('trigger_source')} = %s "
            f"ORDER BY {quote('scheduled_run_time')}, {quote('id')} LIMIT %s"
        )
        if connection.features.has_select_for_update_skip_locked:
            sql += " FOR UPDATE SKIP LOCKED"
        converters = converters_for(connection, JobExecution, Request._fields)
        _requests_statements[key] = (sql, converters)
    return _requests_statements[key]


def _inserted(wanted: dict[Key, NewRun], existing: set[Key]) -> Inserted:
    """What a claim's insert did: runs already in the ledger are logged and in no set."""
    if existing:
        logger.warning(
            "Not running %d run time(s) already in the ledger: %s",
            len(existing),
            ", ".join(f"{job_id!r} at {format_time(t)}" for job_id, t in sorted(existing)),
        )
    new = [wanted[key] for key in sorted(wanted.keys() - existing)]
    missed = {_key(run) for run in new if run.missed_reason}
    skipped = {_key(run) for run in new if run.skipped_reason} - missed
    return Inserted({_key(run) for run in new} - skipped - missed, skipped, missed)
