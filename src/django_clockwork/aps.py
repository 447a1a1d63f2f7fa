"""The one boundary to APScheduler 3's internals.

Everything else in django-clockwork talks to APScheduler through its public API or
through this module. Each function here names the private part it relies on, so an
APScheduler release that changes one of them breaks here, in one place, and the
suite (run against the lowest and the newest supported 3.11 release) shows it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from apscheduler.executors.base import BaseExecutor
from apscheduler.job import Job as APJob
from apscheduler.jobstores.base import BaseJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.combining import AndTrigger
from django.db import connections

from django_clockwork.logtext import user

logger = logging.getLogger(__name__)

# -- jobs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ZoneOnly:
    """Stands in for a scheduler where ``Job._modify`` reads only its time zone."""

    timezone: tzinfo


def new_job(timezone: tzinfo, **state: Any) -> APJob:
    """A job that no scheduler owns, validated like ``Job.__init__`` validates it.

    Relies on: ``Job.__init__``/``Job._modify`` reading nothing of the scheduler but
    ``scheduler.timezone`` (to make a naive ``next_run_time`` aware); the job is detached
    afterwards (``Job._scheduler = None``).
    """
    job = APJob(_ZoneOnly(timezone), **state)
    job._scheduler = None
    return job


#: The attributes ``Job.__setstate__`` copies from the state as they are (it also sets
#: ``func_ref`` to ``state["func"]`` and ``func`` to what that names).
_STATE_ATTRIBUTES = (
    "id",
    "trigger",
    "executor",
    "args",
    "kwargs",
    "name",
    "misfire_grace_time",
    "coalesce",
    "max_instances",
    "next_run_time",
)


def restore_job(cls: Any, state: dict[str, Any], store: BaseJobStore, func: Any = None) -> Any:
    """A job of ``cls`` rebuilt from ``state`` and attached to ``store``'s scheduler.

    Relies on: ``Job.__setstate__`` (the pickle protocol APScheduler's own stores use,
    ``state["version"] == 1``) and the private attributes ``Job._scheduler`` and
    ``Job._jobstore_alias`` that ``Job.pause()``, ``modify()``... go through; and
    ``BaseJobStore._scheduler`` / ``_alias``, which ``BaseJobStore.start`` sets.

    With ``func``, the callable ``state["func"]`` names, already resolved by the caller, the
    job gets the attributes ``__setstate__`` sets, without importing the reference again.
    """
    job = cls.__new__(cls)
    if func is None:
        job.__setstate__(state)
    else:
        if state.get("version", 1) != 1:
            raise ValueError(f"Job has version {state['version']}, only 1 can be restored")
        for name in _STATE_ATTRIBUTES:
            setattr(job, name, state[name])
        job.func_ref = state["func"]
        job.func = func
    job._scheduler = store._scheduler
    job._jobstore_alias = store._alias
    return job


def with_changes(job: APJob, **changes: Any) -> None:
    """Change attributes of a job object in place, validated like ``Job.modify`` does.

    Relies on: ``Job._modify`` (``Job.modify`` would route the change through the
    scheduler, which a detached job or a job in the middle of a claim does not have).
    """
    job._modify(**changes)


def jobstore_alias(job: APJob) -> str | None:
    """The alias of the job store a job was loaded from. Relies on ``Job._jobstore_alias``."""
    alias: str | None = getattr(job, "_jobstore_alias", None)
    return alias


class ClaimedJob(APJob):  # type: ignore[misc]
    """A job a claim handed out: the scheduling pass submits the claim's run times.

    Relies on: ``BaseScheduler._process_jobs`` asking ``Job._get_run_times(now)`` for the run
    times to submit (then coalescing them and computing a next fire time whose write-back
    the claim makes a no-op). Left alone, it would list every run time from the job's
    ``next_run_time`` to now, however old; the claim has bounded them already
    (:mod:`~django_clockwork.backlog`). Without a claim, APScheduler's own answer.
    """

    __slots__ = ("_clockwork_claim", "_clockwork_task")

    def _get_run_times(self, now: datetime) -> list[datetime]:
        claim = getattr(self, "_clockwork_claim", None)
        if claim is None:
            times: list[datetime] = super()._get_run_times(now)
            return times
        handed: list[datetime] = claim.handed_out
        return handed


# -- triggers -----------------------------------------------------------------------------------

#: Proposals an ``and`` trigger weighs before it gives up looking for a time its parts share.
AND_TRIGGER_STEPS = 1000


class BoundedAndTrigger(AndTrigger):  # type: ignore[misc]
    """APScheduler's ``AndTrigger`` that always settles or gives up.

    Upstream, once its parts disagree it asks them again with the same previous fire time, so
    every part answers the same and it loops for ever (APScheduler issue #281) - inside a claim
    that holds row locks. This one asks again from the latest proposal (as upstream does for a
    first fire time) and raises ``ValueError`` after :data:`AND_TRIGGER_STEPS` proposals, so a
    combination that never agrees is refused at add time or flagged on its row.

    Relies on: ``BaseTrigger._apply_jitter``, which upstream's ``AndTrigger`` applies.
    """

    __slots__ = ()

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        previous = previous_fire_time
        for _step in range(AND_TRIGGER_STEPS):
            times = [part.get_next_fire_time(previous, now) for part in self.triggers]
            if None in times:
                return None
            if min(times) == max(times):
                settled: datetime = self._apply_jitter(times[0], self.jitter, now)
                return settled
            previous, now = None, max(times)
        raise ValueError(
            f"the parts of this and trigger found no fire time in common within "
            f"{AND_TRIGGER_STEPS} proposals (the last after {now.isoformat()})"
        )


# -- schedulers ---------------------------------------------------------------------------------


def store_scheduler(store: BaseJobStore) -> Any:
    """The scheduler a store was started by (None when started as ``start(None, alias)``).

    Relies on: ``BaseJobStore._scheduler``, set by ``BaseJobStore.start``.
    """
    return store._scheduler


def executor_names(scheduler: Any) -> frozenset[str] | None:
    """The executor aliases a scheduler has, or None when there is no scheduler.

    Relies on: ``BaseScheduler._executors`` (a dict by alias; there is no public getter).
    """
    executors = getattr(scheduler, "_executors", None)
    return None if executors is None else frozenset(executors)


def dispatch_event(scheduler: Any, event: Any) -> None:
    """Send an event to a scheduler's listeners, as its own executors and passes do.

    Relies on: ``BaseScheduler._dispatch_event``.
    """
    if scheduler is not None:
        scheduler._dispatch_event(event)


#: The logger of APScheduler's scheduler (``BaseScheduler._configure``'s default ``_logger``).
SCHEDULER_LOGGER = "apscheduler.scheduler"


class EscapeUserText(logging.Filter):
    """Escapes the arguments of APScheduler's log lines, which print job names and ids as
    they are (``Removed job %s``): a line break in one must not forge a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                arg if isinstance(arg, (int, float)) else user(arg) for arg in record.args
            )
        return True


def _escape_user_text(log: logging.Logger) -> None:
    if not any(isinstance(existing, EscapeUserText) for existing in log.filters):
        log.addFilter(EscapeUserText())


class _GuardedLoop:
    """Keeps APScheduler's scheduling thread alive whatever a pass raises.

    Relies on: ``BaseScheduler._process_jobs`` (one scheduling pass, returning the seconds
    to wait) and ``BlockingScheduler``/``BackgroundScheduler._main_loop`` (the thread that
    calls it). APScheduler 3 only catches errors of ``get_due_jobs``; one from
    ``update_job``, ``remove_job``, ``get_next_run_time`` or a listener's surroundings
    would end its loop.
    """

    jobstore_retry_interval: float

    def __init__(self, *, runtime: Any, **options: Any) -> None:
        #: The :class:`~django_clockwork.runtime.Runtime` that owns this scheduler.
        self.runtime = runtime
        super().__init__(**options)
        _escape_user_text(logging.getLogger(SCHEDULER_LOGGER))

    def _main_loop(self) -> None:
        try:
            super()._main_loop()  # type: ignore[misc]
        finally:
            connections.close_all()  # this thread's connections; it ends here

    def wakeup(self) -> None:
        """Wake the scheduling loop, unless it is woken already (our executor asks after
        every run of a burst; setting a set event still takes its lock).

        Relies on: ``BlockingScheduler._event`` (None until started), which the loop waits
        on, clears, then runs a pass: a pass starts after any call that finds the event set.
        """
        event = getattr(self, "_event", None)
        if event is not None and not event.is_set():  # None: not started, nothing to wake
            super().wakeup()  # type: ignore[misc]

    def _process_jobs(self) -> float | None:
        try:
            wait: float | None = super()._process_jobs()  # type: ignore[misc]
        except Exception:
            logger.exception(
                "A scheduling pass failed; retrying in %ss", self.jobstore_retry_interval
            )
            return self.jobstore_retry_interval
        return wait


class ClockworkBlockingScheduler(_GuardedLoop, BlockingScheduler):  # type: ignore[misc]
    """APScheduler's BlockingScheduler with a guarded scheduling loop and its runtime."""


class ClockworkBackgroundScheduler(_GuardedLoop, BackgroundScheduler):  # type: ignore[misc]
    """APScheduler's BackgroundScheduler with a guarded scheduling loop and its runtime."""


def scheduler_class(*, blocking: bool) -> type[BaseScheduler]:
    return ClockworkBlockingScheduler if blocking else ClockworkBackgroundScheduler


# -- executors ----------------------------------------------------------------------------------


def take_instance(executor: BaseExecutor, job: APJob) -> bool:
    """Count one more running instance of ``job`` in this executor, unless it has
    ``max_instances`` already; False when refused.

    Relies on: ``BaseExecutor._instances`` (a per-job counter) and ``BaseExecutor._lock``,
    which ``BaseExecutor.submit_job`` uses the same way; ``_run_job_success`` and
    ``_run_job_error`` give the instance back.
    """
    with executor._lock:
        if executor._instances[job.id] >= job.max_instances:
            return False
        executor._instances[job.id] += 1
        return True


def give_back_instance(executor: BaseExecutor, job_id: str) -> None:
    """Undo :func:`take_instance` for a run that was never started."""
    with executor._lock:
        executor._instances[job_id] -= 1
        if executor._instances[job_id] <= 0:
            del executor._instances[job_id]


def report_success(executor: BaseExecutor, job_id: str, events: Sequence[Any]) -> None:
    """Give the instance back and dispatch the run's events to the scheduler's listeners.

    Relies on: ``BaseExecutor._run_job_success`` (the hook APScheduler's own executors call).
    """
    executor._run_job_success(job_id, list(events))


def report_error(executor: BaseExecutor, job_id: str, exc: BaseException) -> None:
    """Give the instance back and log an error that escaped a run.

    Relies on: ``BaseExecutor._run_job_error``.
    """
    executor._run_job_error(job_id, exc, exc.__traceback__)
