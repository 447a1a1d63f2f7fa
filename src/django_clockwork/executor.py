"""``ClockworkExecutor``: runs claimed run times and keeps the ledger.

Each ledger row goes ``scheduled -> running -> succeeded | failed``, or straight to
``missed`` (later than ``misfire_grace_time``) or ``skipped`` (``max_instances``
reached). APScheduler's events are still dispatched, so listeners keep working.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import os
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.base import BaseExecutor, MaxInstancesReachedError
from django.db import connections

from django_clockwork import aps, taskresults, tasktargets
from django_clockwork.claim import claimed_job
from django_clockwork.conf import get_conf
from django_clockwork.groupcommit import LedgerWriter
from django_clockwork.ledger import HOSTNAME, Ledger, NewRun
from django_clockwork.logtext import Lazy, format_job, format_time, user
from django_clockwork.reconnect import end_transactions, replace_dead_connections
from django_clockwork.tasktargets import TaskTarget
from django_clockwork.workers import WorkerThreads

logger = logging.getLogger(__name__)

#: Seconds ahead a claim may fill the worker threads' queue, at the pace of recent runs.
LOOKAHEAD = 0.05
#: The most runs per worker thread a claim takes beyond the free threads.
LOOKAHEAD_RUNS = 100
#: Weight of the latest run in the moving average of run times (``pace``).
PACE_WEIGHT = 0.2


@dataclass(frozen=True)
class ExecutionContext:
    """The run in progress, as seen from inside a job: ``current_execution()``."""

    job_id: str
    scheduled_run_time: datetime
    database: str


_current: contextvars.ContextVar[ExecutionContext | None] = contextvars.ContextVar(
    "clockwork_execution", default=None
)


def current_execution() -> ExecutionContext | None:
    """The run the calling job function is executing for, or None outside a job."""
    return _current.get()


@dataclass(frozen=True)
class Flight:
    """A run executing now, as the watchdog sees it."""

    database: str
    job_id: str
    run_time: datetime
    #: The job, as log lines name it (``str()`` of it: formatted when shown).
    job: object
    #: ``time.monotonic()`` when the job's function was called.
    started: float
    #: The job's own long-running threshold in seconds (None: ``LONG_RUNNING_AFTER``).
    long_running_after: float | None

    @property
    def key(self) -> tuple[str, str, datetime]:
        return (self.database, self.job_id, self.run_time)


class ClockworkExecutor(BaseExecutor):  # type: ignore[misc]
    """A thread pool that records every run in ``JobExecution`` through the ledger.

    :param max_workers: threads (default: ``CLOCKWORK['MAX_WORKERS']``)
    :param node_id: the scheduler node whose runs these are
    :param on_slot_freed: called when a run finishes (the runtime wakes a scheduler that
        left due jobs for want of a free thread)
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        node_id: str = "",
        on_slot_freed: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.max_workers = max_workers or get_conf().max_workers
        self.node_id = node_id
        self.on_slot_freed = on_slot_freed
        self.hostname = HOSTNAME  # the host the claim recorded, the same at start
        self._pool: WorkerThreads | None = None
        #: Runs handed to the threads and not finished (executing, queued or timed).
        self._outstanding = 0
        self._outstanding_changed = threading.Condition(threading.Lock())
        self._ledgers: dict[str, Ledger] = {}
        self._pace: float | None = None
        self._writers: dict[str, LedgerWriter] = {}
        self._writers_lock = threading.Lock()
        #: Every run executing now, by (database, job id, run time).
        self.in_flight: dict[tuple[str, str, datetime], Flight] = {}
        #: (job id, run time) of every run handed to this executor and not finished yet.
        self.submitted: set[tuple[str, datetime]] = set()

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        self._pool = WorkerThreads(
            self.max_workers, name="clockwork-job", on_exit=connections.close_all
        )

    def shutdown(self, wait: bool = True) -> None:
        """Stop the job threads (with ``wait``, after their runs) and write every outcome
        recorded so far; a run that ends later writes its own."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait)
        with self._writers_lock:
            writers = list(self._writers.values())
        for writer in writers:
            writer.stop()

    def wait(self, timeout: float | None) -> bool:
        """Wait for running jobs and their ledger writes; True if none is left running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._outstanding_changed:
            idle = self._outstanding_changed.wait_for(lambda: not self._outstanding, timeout)
        self.flush(None if deadline is None else max(deadline - time.monotonic(), 0.0))
        return idle

    def flush(self, timeout: float | None = None) -> bool:
        """Write the ledger transitions handed in so far; True if all were written."""
        with self._writers_lock:
            writers = list(self._writers.values())
        return all([writer.flush(timeout) for writer in writers])

    @property
    def running(self) -> int:
        """Submitted runs not finished yet (executing, waiting for a thread or for their
        time): a count, O(1) (it is asked after every run)."""
        return self._outstanding

    def free_slots(self) -> int:
        """Worker threads not taken by a submitted run."""
        return max(self.max_workers - self.running, 0)

    def claim_capacity(self) -> int:
        """How many runs a claim may take on for this process: the free threads, plus the
        runs the threads are expected to start within :data:`LOOKAHEAD` seconds, at most
        :data:`LOOKAHEAD_RUNS` per thread, less the runs already waiting for a thread.

        The expectation comes from how long recent runs took (:meth:`pace`): quick jobs let a
        claim take more than the free threads (fewer, larger claims in a burst); jobs that
        run for a second or more add nothing, so a claimed run never waits behind them
        while another scheduler may have a free thread.
        """
        ahead = 0
        pace = self.pace()
        if pace is not None:
            ahead = min(
                int(self.max_workers * LOOKAHEAD / max(pace, 1e-6)),
                self.max_workers * LOOKAHEAD_RUNS,
            )
        return max(self.max_workers + ahead - self.running, 0)

    def wants_runs(self) -> bool:
        """Whether a claim now would be worth it: a thread is idle, or half of what a claim
        may take has room (see :meth:`claim_capacity`), so that the queue still holds work
        for the threads while the claim's round trips take place, and claims stay large."""
        if self.free_slots() > 0:
            return True
        room = self.claim_capacity()
        return room >= max(self.max_workers, (room + self.running) // 2)

    def pace(self) -> float | None:
        """Seconds a recent run took in its thread (a moving average; None before any)."""
        return self._pace

    def _timed(self, seconds: float) -> None:
        """Fold one run's time in its thread (job function and ledger hand-off) into the pace."""
        pace = self._pace
        self._pace = seconds if pace is None else pace + PACE_WEIGHT * (seconds - pace)

    def flights(self) -> list[Flight]:
        """The runs executing now (a copy, safe to read from another thread)."""
        return list(self.in_flight.values())

    def submitted_runs(self) -> set[tuple[str, datetime]]:
        """The runs handed to this executor whose ledger row may still say ``scheduled``:
        not finished, or their writes still queued (a copy, safe from another thread)."""
        runs = set(self.submitted)  # first: a run joins the writer's before it leaves these
        with self._writers_lock:
            writers = list(self._writers.values())
        for writer in writers:
            runs |= writer.pending()
        return runs

    def ledger(self, database: str) -> Ledger:
        if database not in self._ledgers:
            self._ledgers[database] = Ledger(database, self.node_id)
        return self._ledgers[database]

    def writer(self, database: str) -> LedgerWriter:
        """The group-committing writer of runs' starts and outcomes on this database."""
        with self._writers_lock:
            if database not in self._writers:
                self._writers[database] = LedgerWriter(database)
            return self._writers[database]

    def abandon_in_flight(self, reason: str) -> int:
        """Mark the runs still executing as ``abandoned`` (the process is about to exit)."""
        self.flush(timeout=5)  # their "running" first, and the outcomes already known
        flights = list(self.in_flight)
        for database, job_id, run_time in flights:
            self.ledger(database).abandoned(job_id, [run_time], reason=reason, durable=False)
        return len(flights)

    def submit_job(self, job: Any, run_times: list[datetime]) -> None:
        claim = claimed_job(job)
        database = claim.database if claim is not None else get_conf().database
        ledger = self.ledger(database)
        times = list(claim.run_times) if claim is not None else list(run_times)
        if claim is not None and claim.skipped and not times:
            raise MaxInstancesReachedError(job)  # recorded by the claim; the event still fires
        if not times:
            return
        if not aps.take_instance(self, job):
            if claim is None:
                ledger.ensure_scheduled(_new_runs(job, times))
            ledger.skipped(
                job.id,
                times,
                reason=f"max_instances ({job.max_instances}) reached; this run was skipped",
            )
            raise MaxInstancesReachedError(job)
        if claim is None:
            ledger.ensure_scheduled(_new_runs(job, times))
        assert self._pool is not None, "This executor has not been started yet"
        self.submitted.update((job.id, t) for t in times)
        self._count_outstanding(+1)
        try:
            early = (min(times) - _now()).total_seconds()  # claimed ahead (CLAIM_AHEAD)
            self._pool.post_at(
                time.monotonic() + early if early > 0 else None,
                self._run_all,
                job,
                times,
                ledger,
                self.writer(database),
            )
        except RuntimeError as exc:  # the pool is shut down: the process is exiting
            self._count_outstanding(-1)
            self.submitted.difference_update((job.id, t) for t in times)
            aps.give_back_instance(self, job.id)
            ledger.abandoned(
                job.id,
                times,
                reason=f"Claimed while this scheduler was stopping ({exc}); not run",
                durable=False,
            )
            raise

    def _count_outstanding(self, change: int) -> None:
        with self._outstanding_changed:
            self._outstanding += change
            if not self._outstanding:
                self._outstanding_changed.notify_all()

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:  # pragma: no cover
        raise NotImplementedError("submit_job is overridden")

    def _run_all(
        self, job: Any, run_times: list[datetime], ledger: Ledger, writer: LedgerWriter
    ) -> None:
        claim = claimed_job(job)
        threshold = claim.long_running_after if claim is not None else None
        target = claim.task if claim is not None else None
        events = []
        try:
            for run_time in run_times:
                clock = time.monotonic()
                try:
                    if target is not None:
                        events.append(self._enqueue_one(job, run_time, ledger, target))
                    else:
                        events.append(self._run_one(job, run_time, ledger, writer, threshold))
                except Exception as exc:  # before or around the job, never from it
                    events.append(self._could_not_run(job, run_time, writer, exc))
                self._timed(time.monotonic() - clock)
        except BaseException as exc:  # never lose the instance count
            aps.report_error(self, job.id, exc)
        else:
            aps.report_success(self, job.id, events)
        finally:
            try:
                self.submitted.difference_update((job.id, t) for t in run_times)
                end_transactions()
            finally:
                self._count_outstanding(-1)  # whatever happened: wait() must not hang on it
                if self.on_slot_freed is not None:
                    self.on_slot_freed()

    def _could_not_run(
        self, job: Any, run_time: datetime, writer: LedgerWriter, exc: Exception
    ) -> JobExecutionEvent:
        """Record a run that failed outside the job's function (a bad option, a broken
        database answer): ``failed`` with the error, never left ``scheduled``."""
        logger.exception('Job "%s" could not be run', format_job(job))
        writer.failed(
            job.id,
            run_time,
            exception=f"Could not run the job: {type(exc).__name__}: {exc}",
            traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        )
        return JobExecutionEvent(
            EVENT_JOB_ERROR, job.id, aps.jobstore_alias(job), run_time, exception=exc
        )

    def _due(self, job: Any, run_time: datetime, ledger: Ledger) -> bool:
        """False (and the run recorded ``missed``) when it is later than the grace time."""
        if job.misfire_grace_time is None:
            return True
        late = _now() - run_time
        if late <= timedelta(seconds=job.misfire_grace_time):
            return True
        logger.warning(
            'Run time of job "%s" (scheduled at %s) was missed by %s',
            format_job(job),
            format_time(run_time),
            late,
        )
        ledger.missed(
            job.id,
            [run_time],
            reason=f"Started {late} late; misfire_grace_time is {job.misfire_grace_time}s",
        )
        return False

    def _missed(self, job: Any, run_time: datetime) -> JobExecutionEvent:
        return JobExecutionEvent(EVENT_JOB_MISSED, job.id, aps.jobstore_alias(job), run_time)

    def _enqueue_one(
        self, job: Any, run_time: datetime, ledger: Ledger, target: TaskTarget
    ) -> JobExecutionEvent:
        """Hand the run to the job's task backend: ``enqueued`` with the result id, or
        ``failed`` with the backend's error and traceback."""
        alias = aps.jobstore_alias(job)
        if not self._due(job, run_time, ledger):
            return self._missed(job, run_time)
        replace_dead_connections()
        try:
            done = tasktargets.enqueue(target, job.args, job.kwargs, run_time)
        except Exception as exc:
            summary = f"Could not enqueue task {target.path}: {type(exc).__name__}: {exc}"
            logger.exception('Job "%s": %s', format_job(job), user(summary))
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            ledger.failed(job.id, run_time, exception=summary, traceback=text)
            return JobExecutionEvent(
                EVENT_JOB_ERROR, job.id, alias, run_time, exception=exc, traceback=text
            )
        finally:
            end_transactions()
        ledger.enqueued(job.id, run_time, backend=done.backend, result_id=done.result_id)
        if getattr(done.result, "is_finished", False):  # run at once (the immediate backend)
            taskresults.record(done.result)
        logger.info(
            'Job "%s": task %s enqueued on backend %r (result %s)',
            format_job(job),
            target.path,
            done.backend,
            done.result_id,
        )
        return JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, alias, run_time, retval=done)

    def _run_one(
        self,
        job: Any,
        run_time: datetime,
        ledger: Ledger,
        writer: LedgerWriter,
        threshold: float | None,
    ) -> JobExecutionEvent:
        alias = aps.jobstore_alias(job)
        if not self._due(job, run_time, ledger):
            return self._missed(job, run_time)
        replace_dead_connections()  # kept from run to run, whatever CONN_MAX_AGE says
        writer.started(job.id, run_time, hostname=self.hostname, pid=os.getpid())
        shown = Lazy(format_job, job)  # formatted only if a log line or the watchdog shows it
        logger.info('Running job "%s" (scheduled at %s)', shown, Lazy(format_time, run_time))
        clock = time.monotonic()
        token = _current.set(ExecutionContext(job.id, run_time, ledger.database))
        flight = Flight(ledger.database, job.id, run_time, shown, clock, threshold)
        self.in_flight[flight.key] = flight
        try:
            retval = job.func(*job.args, **job.kwargs)
            if inspect.isawaitable(retval):
                retval = asyncio.run(_finish(retval))
        except BaseException as exc:
            duration = time.monotonic() - clock
            summary = f"{type(exc).__name__}: {exc}"
            logger.exception('Job "%s" raised an exception: %s', shown, user(summary))
            writer.failed(
                job.id,
                run_time,
                exception=summary,
                traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
                duration=duration,
            )
            return JobExecutionEvent(
                EVENT_JOB_ERROR,
                job.id,
                alias,
                run_time,
                exception=exc,
                traceback="".join(traceback.format_tb(exc.__traceback__)),
            )
        finally:
            self.in_flight.pop(flight.key, None)
            _current.reset(token)
            end_transactions()  # the outcome is never written inside the job's transaction
        writer.succeeded(job.id, run_time, duration=time.monotonic() - clock)
        logger.info('Job "%s" executed successfully', shown)
        return JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, alias, run_time, retval=retval)


async def _finish(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _now() -> datetime:
    return datetime.now(dt_timezone.utc)


def _new_runs(job: Any, run_times: list[datetime]) -> list[NewRun]:
    """Ledger rows for a job that did not come from a claim (another job store)."""
    return [
        NewRun(job_id=job.id, scheduled_run_time=t, job_name=job.name, func=job.func_ref or "")
        for t in run_times
    ]
