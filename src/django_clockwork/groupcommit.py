"""``LedgerWriter``: a run's ``started`` and outcome writes, group-committed off the job thread.

Job threads hand their transitions to one writer thread per executor and database and go
on at once (the job function never waits for its ``running`` write). The writer flushes
every :data:`FLUSH_EVERY` seconds, at once when :data:`BATCH` transitions are waiting, and
when asked (:meth:`LedgerWriter.flush`, :meth:`LedgerWriter.stop`), in ONE transaction with
one statement per transition kind (:mod:`django_clockwork.batchsql`). A run whose
``started`` and outcome are in one flush is written once, from ``scheduled`` straight to
its outcome, with its start time: the same rows as ``started`` then the outcome. Each
statement is conditional on the states the transition leaves, like every ledger write; a
run in another state is left alone and logged. A flush that fails is retried with
:data:`~django_clockwork.ledger.DURABLE_BACKOFF`, then logged and dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connections, transaction

from django_clockwork.batchsql import update_statements
from django_clockwork.ledger import (
    DURABLE_BACKOFF,
    FAILED,
    STARTED,
    SUCCEEDED,
    Key,
    Transition,
    bounded,
    now,
    utc,
)
from django_clockwork.logtext import format_time
from django_clockwork.models import ExecutionStatus, JobExecution
from django_clockwork.reconnect import replace_dead_connections
from django_clockwork.sqlrows import batch

logger = logging.getLogger(__name__)

#: Seconds a transition may wait for its flush.
FLUSH_EVERY = 0.03
#: Transitions waiting that make the writer flush at once.
BATCH = 500
#: ``started`` and an outcome in one flush: ``scheduled`` straight to the outcome.
RAN_SUCCEEDED = Transition("started+succeeded", STARTED.sources, ExecutionStatus.SUCCEEDED)
RAN_FAILED = Transition("started+failed", STARTED.sources, ExecutionStatus.FAILED)


@dataclass
class _Run:
    """What a flush writes for one run: its start, its outcome, or both."""

    started: dict[str, Any] = field(default_factory=dict)
    outcome: Transition | None = None
    fields: dict[str, Any] = field(default_factory=dict)


class LedgerWriter:
    """Group-commits the ``started``, ``succeeded`` and ``failed`` transitions of one database.

    :param database: the database alias of the ledger
    """

    def __init__(self, database: str) -> None:
        self.database = database
        self._lock = threading.Condition(threading.Lock())
        self._queue: list[tuple[Key, Transition, dict[str, Any]]] = []
        self._pending: set[Key] = set()
        self._written = 0  # transitions handed in and written (or given up on)
        self._handed = 0
        self._stopping = False
        self._urgent = False
        self._thread = threading.Thread(
            target=self._work, name=f"clockwork-ledger-{database}", daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        return f"<LedgerWriter database={self.database!r}>"

    # -- what job threads call -------------------------------------------------------------

    def started(self, job_id: str, run_time: datetime, *, hostname: str, pid: int) -> None:
        fields = {"started_at": now(), "hostname": hostname, "pid": pid}
        self._hand(job_id, run_time, STARTED, fields)

    def succeeded(self, job_id: str, run_time: datetime, *, duration: float) -> None:
        self._hand(job_id, run_time, SUCCEEDED, {"finished_at": now(), "duration": duration})

    def failed(
        self,
        job_id: str,
        run_time: datetime,
        *,
        exception: str,
        traceback: str = "",
        duration: float | None = None,
    ) -> None:
        fields = {
            "finished_at": now(),
            "duration": duration,
            "exception": exception,
            "traceback": traceback,
        }
        self._hand(job_id, run_time, FAILED, bounded(fields))

    def pending(self) -> set[Key]:
        """The runs with a transition handed in and not written yet (a copy)."""
        with self._lock:
            return set(self._pending)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every transition handed in before this call is written; True if so."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._handed
            self._urgent = True
            self._lock.notify_all()
            while self._written < target and self._thread.is_alive():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._lock.wait(left)
            return self._written >= target

    def stop(self, timeout: float | None = None) -> bool:
        """Write what is waiting, then end the writer thread; True if all was written."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _hand(self, job_id: str, run_time: datetime, transition: Transition, fields: Any) -> None:
        key = (job_id, utc(run_time))
        with self._lock:
            stopped = self._stopping
            if not stopped:
                self._queue.append((key, transition, fields))
                self._pending.add(key)
                self._handed += 1
                if len(self._queue) in (1, BATCH):
                    self._lock.notify_all()
        if stopped:  # a run that outlived the scheduler's stop writes its own, at once,
            self._thread.join()  # after what was queued before it (its "running")
            self._write([(key, transition, fields)])

    # -- the writer thread -----------------------------------------------------------------

    def _work(self) -> None:
        try:
            while True:
                with self._lock:
                    while not self._queue and not self._stopping:
                        self._lock.wait()
                    self._gather()
                    batch, self._queue = self._queue, []
                    stopping = self._stopping
                if batch:
                    self._write(batch)
                with self._lock:
                    self._written += len(batch)
                    self._pending -= {key for key, _t, _f in batch} - {
                        key for key, _t, _f in self._queue
                    }
                    self._lock.notify_all()
                    if stopping and not self._queue:
                        return
        finally:
            connections.close_all()

    def _gather(self) -> None:
        """Wait (holding the lock's condition) up to FLUSH_EVERY for more transitions,
        unless a batch is full, a flush was asked for, or the writer is stopping."""
        deadline = time.monotonic() + FLUSH_EVERY
        while not (self._stopping or self._urgent or len(self._queue) >= BATCH):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._lock.wait(left)
        self._urgent = False

    def _write(self, batch: list[tuple[Key, Transition, dict[str, Any]]]) -> None:
        statements = _statements(batch)
        for attempt, delay in enumerate((*DURABLE_BACKOFF, None)):
            try:
                self._apply(statements)
                return
            except Exception:
                if delay is None:
                    logger.exception(
                        "Could not record %d run transition(s) after %d attempts; lost: %s",
                        len(batch),
                        attempt + 1,
                        ", ".join(_describe(key, t) for key, t, _f in batch),
                    )
                    return
                logger.warning(
                    "Could not record %d run transition(s); retrying in %ss",
                    len(batch),
                    delay,
                    exc_info=True,
                )
                time.sleep(delay)

    def _apply(self, statements: dict[Transition, list[tuple[Key, dict[str, Any]]]]) -> None:
        replace_dead_connections()  # idle for a while: the server may have ended it
        refused: list[tuple[Transition, list[Key]]] = []
        with transaction.atomic(using=self.database):
            connection = connections[self.database]
            moved = self._moved(connection, statements)
            for transition, rows in statements.items():
                if moved[transition] < len(rows):
                    refused.append((transition, [key for key, _fields in rows]))
        for transition, keys in refused:
            self._log_refused(transition, keys)

    @staticmethod
    def _moved(
        connection: Any, statements: dict[Transition, list[tuple[Key, dict[str, Any]]]]
    ) -> dict[Transition, int]:
        """Run a flush's statements (in one round trip where the database allows); the runs
        each transition moved."""
        planned = {t: update_statements(connection, t, rows) for t, rows in statements.items()}
        results = batch(connection, [one for sql in planned.values() for one in sql])
        moved: dict[Transition, int] = {}
        for transition, sql in planned.items():
            moved[transition] = sum(result.rowcount for result in results[: len(sql)])
            results = results[len(sql) :]
        return moved

    def _log_refused(self, transition: Transition, keys: list[Key]) -> None:
        """Log the runs a transition did not move: in another state, or not in the ledger."""
        runs = JobExecution.objects.using(self.database)
        states = dict(
            ((job_id, run_time), status)
            for job_id, run_time, status in runs.filter(
                job_id__in={k[0] for k in keys}, scheduled_run_time__in={k[1] for k in keys}
            ).values_list("job_id", "scheduled_run_time", "status")
        )
        for key in keys:
            state = states.get(key)
            if state == transition.target:
                continue  # moved by this write (a batch that partly moved)
            logger.warning(
                "Ledger refused %r for job %r at %s: the run is %s; %r only leaves %s",
                transition.name,
                key[0],
                format_time(key[1]),
                state or "not in the ledger",
                transition.name,
                "/".join(sorted(transition.sources)),
            )


def _statements(
    batch: list[tuple[Key, Transition, dict[str, Any]]],
) -> dict[Transition, list[tuple[Key, dict[str, Any]]]]:
    """The rows of each statement of a flush, ``started`` first; a run started and finished
    in this batch becomes one row of ``started+succeeded`` or ``started+failed``."""
    runs: dict[Key, _Run] = {}
    for key, transition, fields in batch:
        run = runs.setdefault(key, _Run())
        if transition is STARTED:
            run.started = fields
        else:
            run.outcome, run.fields = transition, fields
    statements: dict[Transition, list[tuple[Key, dict[str, Any]]]] = {}
    for key, run in runs.items():
        if run.outcome is None:
            transition, fields = STARTED, run.started
        elif not run.started:
            transition, fields = run.outcome, run.fields
        else:
            transition = RAN_SUCCEEDED if run.outcome is SUCCEEDED else RAN_FAILED
            fields = {**run.started, **run.fields}
        statements.setdefault(transition, []).append((key, fields))
    order = (STARTED, RAN_SUCCEEDED, RAN_FAILED, SUCCEEDED, FAILED)
    return {t: statements[t] for t in order if t in statements}


def _describe(key: Key, transition: Transition) -> str:
    return f"{transition.name} of {key[0]!r} at {format_time(key[1])}"
