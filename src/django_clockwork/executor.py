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
import socket
import time
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
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
from django.db import close_old_connections

from django_clockwork.conf import get_conf
from django_clockwork.jobstore import drop_broken_connection
from django_clockwork.models import ExecutionStatus, JobExecution, TriggerSource

logger = logging.getLogger(__name__)

#: Seconds between attempts to record a ledger update while the database is unreachable.
RECORD_BACKOFF = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


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


class ClockworkExecutor(BaseExecutor):  # type: ignore[misc]
    """A thread pool that records every run in ``JobExecution``.

    :param max_workers: threads (default: ``CLOCKWORK['MAX_WORKERS']``)
    """

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__()
        self.max_workers = max_workers or get_conf().max_workers
        self._pool: ThreadPoolExecutor | None = None
        self._futures: set[Future[None]] = set()
        self.in_flight: set[tuple[str, str, datetime]] = set()
        #: (job id, run time) of every run handed to this executor and not finished yet.
        self.submitted: set[tuple[str, datetime]] = set()
        self.node_id = ""  # set by create_scheduler()
        #: Called when a run finishes (create_scheduler() wakes a scheduler that was full).
        self.on_slot_freed: Callable[[], None] | None = None
        self.hostname = socket.gethostname()

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="clockwork-job")

    def shutdown(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait)

    def wait(self, timeout: float | None) -> bool:
        """Wait for running jobs; True if none is left running."""
        _done, pending = wait_futures(set(self._futures), timeout=timeout)
        return not pending

    @property
    def running(self) -> int:
        """Submitted runs not finished yet (executing or waiting for a thread)."""
        return sum(1 for future in set(self._futures) if not future.done())

    def free_slots(self) -> int:
        """Worker threads not taken: how much a claim should take on for this process."""
        return max(self.max_workers - self.running, 0)

    def abandon_in_flight(self, reason: str) -> int:
        """Mark the runs still executing as ``abandoned`` (the process is about to exit)."""
        flights = list(self.in_flight)
        for database, job_id, run_time in flights:
            _record(
                database,
                job_id,
                run_time,
                status=ExecutionStatus.ABANDONED,
                finished_at=_now(),
                exception=reason,
                attempts=1,
            )
        return len(flights)

    def submit_job(self, job: Any, run_times: list[datetime]) -> None:
        claim = getattr(job, "_clockwork_claim", None)
        database = claim.database if claim is not None else get_conf().database
        times = list(claim.run_times) if claim is not None else list(run_times)
        if claim is not None and claim.skipped and not times:
            raise MaxInstancesReachedError(job)  # recorded by the claim; the event still fires
        if not times:
            return
        with self._lock:
            refused = self._instances[job.id] >= job.max_instances
            if not refused:
                self._instances[job.id] += 1
        if refused:
            _record_many(
                database,
                job.id,
                times,
                status=ExecutionStatus.SKIPPED,
                finished_at=_now(),
                exception=f"max_instances ({job.max_instances}) reached; this run was skipped",
            )
            raise MaxInstancesReachedError(job)
        if claim is None:
            _ensure_rows(database, job, times, self.node_id)
        assert self._pool is not None, "This executor has not been started yet"
        self.submitted.update((job.id, t) for t in times)
        try:
            future = self._pool.submit(self._run_all, job, times, database)
        except RuntimeError as exc:  # the pool is shut down: the process is exiting
            self.submitted.difference_update((job.id, t) for t in times)
            with self._lock:
                self._instances[job.id] -= 1
            _record_many(
                database,
                job.id,
                times,
                status=ExecutionStatus.ABANDONED,
                finished_at=_now(),
                exception=f"Claimed while this scheduler was stopping ({exc}); not run",
                attempts=1,
            )
            raise
        self._futures.add(future)
        future.add_done_callback(self._futures.discard)

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:  # pragma: no cover
        raise NotImplementedError("submit_job is overridden")

    def _run_all(self, job: Any, run_times: list[datetime], database: str) -> None:
        try:
            events = [self._run_one(job, run_time, database) for run_time in run_times]
        except BaseException as exc:  # never lose the instance count
            self._run_job_error(job.id, exc, exc.__traceback__)
        else:
            self._run_job_success(job.id, events)
        finally:
            self.submitted.difference_update((job.id, t) for t in run_times)
            close_old_connections()  # honours CONN_MAX_AGE, like the end of a request
            if self.on_slot_freed is not None:
                self.on_slot_freed()

    def _run_one(self, job: Any, run_time: datetime, database: str) -> JobExecutionEvent:
        alias = job._jobstore_alias
        late = _now() - run_time
        if job.misfire_grace_time is not None and late > timedelta(seconds=job.misfire_grace_time):
            logger.warning('Run time of job "%s" was missed by %s', job, late)
            _record(
                database,
                job.id,
                run_time,
                status=ExecutionStatus.MISSED,
                finished_at=_now(),
                exception=f"Started {late} late; misfire_grace_time is {job.misfire_grace_time}s",
            )
            return JobExecutionEvent(EVENT_JOB_MISSED, job.id, alias, run_time)
        close_old_connections()  # like a request: CONN_MAX_AGE and broken connections
        started = _now()
        _record(
            database,
            job.id,
            run_time,
            status=ExecutionStatus.RUNNING,
            started_at=started,
            hostname=self.hostname,
            pid=os.getpid(),
        )
        logger.info('Running job "%s" (scheduled at %s)', job, run_time)
        clock = time.perf_counter()
        token = _current.set(ExecutionContext(job.id, run_time, database))
        flight = (database, job.id, run_time)
        self.in_flight.add(flight)
        try:
            retval = job.func(*job.args, **job.kwargs)
            if inspect.isawaitable(retval):
                retval = asyncio.run(_finish(retval))
        except BaseException as exc:
            logger.exception('Job "%s" raised an exception', job)
            event = JobExecutionEvent(
                EVENT_JOB_ERROR,
                job.id,
                alias,
                run_time,
                exception=exc,
                traceback="".join(traceback.format_tb(exc.__traceback__)),
            )
            outcome = {
                "status": ExecutionStatus.FAILED,
                "exception": f"{type(exc).__name__}: {exc}",
                "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
            }
        else:
            logger.info('Job "%s" executed successfully', job)
            event = JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, alias, run_time, retval=retval)
            outcome = {"status": ExecutionStatus.SUCCEEDED}
        finally:
            self.in_flight.discard(flight)
            _current.reset(token)
        duration = time.perf_counter() - clock
        _record(database, job.id, run_time, finished_at=_now(), duration=duration, **outcome)
        return event


async def _finish(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _now() -> datetime:
    return datetime.now(dt_timezone.utc)


def _ensure_rows(database: str, job: Any, run_times: list[datetime], node_id: str) -> None:
    """Ledger rows for a job that did not come from a claim (another job store)."""
    for run_time in run_times:
        JobExecution.objects.using(database).get_or_create(
            job_id=job.id,
            scheduled_run_time=run_time,
            defaults={
                "job_name": job.name,
                "func": job.func_ref or "",
                "trigger_source": TriggerSource.SCHEDULE,
                "node_id": node_id,
            },
        )


def _record(database: str, job_id: str, run_time: datetime, **fields: Any) -> None:
    _record_many(database, job_id, [run_time], **fields)


def _record_many(
    database: str,
    job_id: str,
    run_times: list[datetime],
    attempts: int = len(RECORD_BACKOFF) + 1,
    **fields: Any,
) -> None:
    """Update ledger rows, retrying while the database is unreachable; never raises."""
    for attempt, delay in enumerate((*RECORD_BACKOFF[: attempts - 1], None)):
        try:
            drop_broken_connection(database)
            JobExecution.objects.using(database).filter(
                job_id=job_id, scheduled_run_time__in=run_times
            ).update(**fields)
            return
        except Exception:
            if delay is None:
                logger.exception(
                    "Could not record %s for job %r at %s after %d attempts",
                    fields.get("status"),
                    job_id,
                    run_times,
                    attempt + 1,
                )
                return
            logger.warning(
                "Could not record %s for job %r; retrying in %ss",
                fields.get("status"),
                job_id,
                delay,
                exc_info=True,
            )
            time.sleep(delay)
