"""Change jobs from any process (web requests, shells, other services).

These functions write straight to the job table and never need a running scheduler
(APScheduler 3's own ``add_job`` on a stopped scheduler only queues in memory). Running
schedulers see a change at their next poll, at once on PostgreSQL. They answer with
:class:`ScheduledJob`, a plain snapshot of the stored row.

Exceptions (all documented in the README): :class:`~django_clockwork.exceptions.InvalidJobError`
(a ``ValueError``) for input that cannot be stored, ``SerializationError`` (a ``ValueError``)
for arguments JSON cannot hold, :class:`~django_clockwork.exceptions.JobExistsError` and
:class:`~django_clockwork.exceptions.JobNotFoundError` (APScheduler's ``ConflictingIdError``
and ``JobLookupError``), :class:`~django_clockwork.exceptions.ConcurrentChangeError`, and
Django's database errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from apscheduler.job import Job as APJob
from apscheduler.jobstores.base import ConflictingIdError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from django_clockwork import allowed, aps, inputs, tasktargets, wakeups
from django_clockwork.conf import get_conf
from django_clockwork.describe import describe
from django_clockwork.exceptions import (
    ConcurrentChangeError,
    InvalidJobError,
    JobExistsError,
    JobNotFoundError,
)
from django_clockwork.jobstore import DjangoJobStore
from django_clockwork.jsoncolumn import UndecodableJSONError, decoded, undecodable_columns
from django_clockwork.ledger import Ledger, NewRun
from django_clockwork.models import Job, JobSource, TriggerSource
from django_clockwork.rows import row_fields
from django_clockwork.serialization import SerializationError, trigger_from_json, zone_from_json
from django_clockwork.storedtext import head
from django_clockwork.triggers import build_trigger

#: Attempts of a versioned write before :class:`ConcurrentChangeError`.
WRITE_ATTEMPTS = 5


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


UNSET: Any = _Unset()


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    """A job as stored: a snapshot of its row, with no methods that reach the database."""

    id: str
    name: str
    #: The callable, as ``"package.module:qualname"`` (for a task job, our enqueuer).
    func: str
    #: The trigger in its documented JSON form.
    trigger: dict[str, Any]
    #: APScheduler's description of the trigger (``str(trigger)``: ``interval[0:15:00]``,
    #: ``cron[year='*', ..., hour='7', minute='30', second='0']``), or why the stored
    #: trigger cannot be read.
    trigger_description: str
    #: The trigger in words, e.g. "At 09:00, Monday through Friday (Europe/Paris)" or
    #: "Every 10 minutes" (see :mod:`~django_clockwork.describe`).
    description: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    executor: str
    misfire_grace_time: int | None
    coalesce: bool
    max_instances: int
    #: Seconds a run may execute before it is logged and noted as long running; None means
    #: ``CLOCKWORK['LONG_RUNNING_AFTER']``.
    long_running_after: float | None
    #: Aware UTC; None when paused or finished.
    next_run_time: datetime | None
    paused: bool
    finished: bool
    #: A job declared in code whose declaration is gone: the last sync paused it.
    undeclared: bool
    #: ``"api"``, ``"admin"`` or ``"code"``.
    source: str
    #: Why a scheduler cannot load the row (empty when it can).
    load_error: str
    version: int
    #: For a job whose target is a Task: its path ``"package.module.task_name"`` (else "").
    task: str = ""
    #: The Task's options (``backend``, ``queue_name``, ``priority``, ``run_after``).
    task_options: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        """What the job runs, as people read it: the task path, or the function reference."""
        return self.task or self.func

    @classmethod
    def from_row(cls, row: Job) -> ScheduledJob:
        undecodable = undecodable_columns(trigger=row.trigger, args=row.args, kwargs=row.kwargs)
        try:
            description = str(trigger_from_json(decoded(row.trigger, "trigger")))
            words = describe(row.trigger)
        except SerializationError as exc:
            description = words = f"invalid trigger: {exc}"
        except UndecodableJSONError:
            description = words = "invalid trigger: the stored JSON cannot be decoded"
        return cls(
            id=row.id,
            name=row.name,
            func=row.func,
            trigger=row.trigger if isinstance(row.trigger, dict) else {},
            trigger_description=description,
            description=words,
            args=tuple(row.args) if isinstance(row.args, list) else (),
            kwargs=dict(row.kwargs) if isinstance(row.kwargs, dict) else {},
            executor=row.executor,
            misfire_grace_time=row.misfire_grace_time,
            coalesce=row.coalesce,
            max_instances=row.max_instances,
            long_running_after=row.long_running_after,
            next_run_time=row.next_run_time,
            paused=row.is_paused,
            finished=row.finished_at is not None,
            undeclared=row.undeclared_at is not None,
            source=row.source,
            load_error=row.load_error or undecodable,
            version=row.version,
            task=row.task,
            task_options=dict(row.task_options) if isinstance(row.task_options, dict) else {},
        )


def _rows() -> Any:
    return Job.objects.using(get_conf().database)


def add_job(
    func: Callable[..., Any] | str | None = None,
    trigger: Any = None,
    *,
    task: Any = None,
    task_options: Mapping[str, Any] | None = None,
    args: Iterable[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    id: str | None = None,
    name: str | None = None,
    misfire_grace_time: int | None = UNSET,
    coalesce: bool = UNSET,
    max_instances: int = UNSET,
    next_run_time: datetime | None = UNSET,
    executor: str = "default",
    replace_existing: bool = False,
    long_running_after: float | None = None,
    source: str = JobSource.API,
    **trigger_args: Any,
) -> ScheduledJob:
    """Add (or with ``replace_existing``, replace) a job; the arguments are APScheduler's,
    and ``long_running_after``: seconds a run may execute before it is logged and noted as
    long running (None: ``CLOCKWORK['LONG_RUNNING_AFTER']``); ``source``: who adds it, ``"api"``
    or ``"admin"`` (the admin's form says ``"admin"``), kept in the row.

    ``func`` is a module-level callable or its reference ``"package.module:qualname"``; or
    instead ``task``, a Task of Django's tasks framework or its path
    (``"myapp.tasks.send_digest"``), enqueued with ``task_options`` (``backend``,
    ``queue_name``, ``priority``, ``run_after`` in seconds) each time the job fires;
    ``trigger`` an alias (``"date"``, ``"interval"``, ``"cron"``, ``"calendarinterval"``)
    with ``trigger_args``, or a trigger instance. ``next_run_time=None`` adds it paused.
    """
    conf = get_conf()
    if source not in (JobSource.API, JobSource.ADMIN):
        raise InvalidJobError(f"source must be 'api' or 'admin', not {source!r}")
    job_id = uuid.uuid4().hex if id is None else inputs.check_id(id)
    columns: dict[str, Any] = {
        "long_running_after": inputs.check_long_running_after(long_running_after)
    }
    args, kwargs = inputs.check_args(args), inputs.check_kwargs(kwargs)
    columns.update(_target_columns(func, task, task_options, args, kwargs))
    built = build_trigger(trigger, trigger_args, conf.timezone)
    defaults = conf.job_defaults
    state = {
        "id": job_id,
        "func": tasktargets.ENQUEUER if columns["task"] else inputs.func_ref(func),
        "trigger": built,
        "executor": executor,
        "args": args,
        "kwargs": kwargs,
        "name": name,
        "misfire_grace_time": _given(misfire_grace_time, defaults.misfire_grace_time),
        "coalesce": _given(coalesce, defaults.coalesce),
        "max_instances": _given(max_instances, defaults.max_instances),
        "next_run_time": _given(next_run_time, _first_fire_time(built)),
    }
    if name is None and columns["task"]:
        state["name"] = columns["task"]  # not our enqueuer's name
    elif name is None:
        del state["name"]  # APScheduler names the job after its function
    job = _new_job(state)
    store = DjangoJobStore(database=conf.database, source=source)
    try:
        row = store.insert(job, **columns)  # one statement
    except ConflictingIdError:
        if not replace_existing:
            raise JobExistsError(job_id) from None
        with transaction.atomic(using=store.database):
            _retrying(lambda: store.update_job(job))
            _rows().filter(id=job_id).update(**columns)  # ours: not in row_fields
        return _get(job_id)
    return ScheduledJob.from_row(row)  # what was written: no need to read it back


def _target_columns(
    func: Any, task: Any, task_options: Mapping[str, Any] | None, args: Any, kwargs: Any
) -> dict[str, Any]:
    """The ``task`` and ``task_options`` columns: empty for a function job."""
    if task is None:
        if func is None:
            raise InvalidJobError("add_job needs a func (a callable) or a task (a Task).")
        if task_options is not None:
            raise InvalidJobError("task_options apply to a task job; pass task=, not func=.")
        return {"task": "", "task_options": {}}
    if func is not None:
        raise InvalidJobError("Give add_job either func or task, not both.")
    target = tasktargets.check(task, task_options, args, kwargs)
    return {"task": target.path, "task_options": dict(target.options)}


def get_job(job_id: str) -> ScheduledJob | None:
    """The job with this id, or None (also for a finished one-off job)."""
    row = _rows().active().filter(id=job_id).first()
    return None if row is None else ScheduledJob.from_row(row)


def get_jobs() -> list[ScheduledJob]:
    """Every job that has not finished, soonest first, paused jobs last, broken ones included.

    A list holds every job at once; :func:`iter_jobs` streams them."""
    return list(iter_jobs())


def iter_jobs(*, chunk_size: int = 1000) -> Iterator[ScheduledJob]:
    """The jobs of :func:`get_jobs`, in the same order, one at a time: rows are read
    ``chunk_size`` at a time (``QuerySet.iterator``), so memory stays flat whatever the
    number of jobs. Consume it promptly: it holds a database cursor until exhausted. As with
    ``QuerySet.iterator()`` on SQLite, changing jobs while iterating may show a changed row
    twice or not at all there; collect the ids first if you change jobs as you go."""
    rows = (
        _rows()
        .active()
        .defer("created_at", "updated_at", "declaration")
        .order_by(F("next_run_time").asc(nulls_last=True), "id")
    )
    for row in rows.iterator(chunk_size=chunk_size):
        yield ScheduledJob.from_row(row)


def modify_job(job_id: str, **changes: Any) -> ScheduledJob:
    """Change a job's ``func`` (or ``task`` and ``task_options``), ``args``, ``kwargs``,
    ``name``, ``executor``, ``misfire_grace_time``, ``coalesce``, ``max_instances``,
    ``next_run_time`` or ``long_running_after``. A task job's arguments and options are
    checked against its backend again."""
    unknown = set(changes) - _MODIFIABLE
    if unknown:
        raise InvalidJobError(
            f"modify_job cannot change {sorted(unknown)}; it changes {sorted(_MODIFIABLE)} "
            "(use reschedule_job for the trigger)."
        )
    if "func" in changes:
        changes["func"] = inputs.func_ref(changes["func"])
    if "args" in changes:
        changes["args"] = inputs.check_args(changes["args"])
    if "kwargs" in changes:
        changes["kwargs"] = inputs.check_kwargs(changes["kwargs"])
    columns = {
        key: inputs.check_long_running_after(changes.pop(key))
        for key in ("long_running_after",)
        if key in changes
    }
    columns.update(_changed_target(job_id, changes))
    return _write(job_id, lambda row: changes, columns)


def _changed_target(job_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """The task columns ``changes`` imply (popping ``task`` and ``task_options``), after
    checking the task job they make; and ``func`` set to our enqueuer for a task job."""
    task, options = changes.pop("task", UNSET), changes.pop("task_options", UNSET)
    if task is not UNSET and task is not None and "func" in changes:
        raise InvalidJobError("Give modify_job either func or task, not both.")
    if "func" in changes or task is None:
        if "func" not in changes:
            raise InvalidJobError("A job needs a target: to drop its task, give it a func.")
        if options not in (UNSET, None, {}):
            raise InvalidJobError("task_options apply to a task job; pass task=, not func=.")
        return {"task": "", "task_options": {}}
    current = _get(job_id)
    if task is UNSET and not current.task:
        if options is not UNSET:
            raise InvalidJobError(f"Job {job_id!r} runs a function: task_options do not apply.")
        return {}
    if task is UNSET:
        task = current.task
    if options is UNSET:
        options = current.task_options if task == current.task else {}
    args = changes.get("args", current.args)
    kwargs = changes.get("kwargs", current.kwargs)
    target = tasktargets.check(task, options, args, kwargs)
    changes["func"] = tasktargets.ENQUEUER
    return {"task": target.path, "task_options": dict(target.options)}


def reschedule_job(job_id: str, trigger: Any = None, **trigger_args: Any) -> ScheduledJob:
    """Give a job a new trigger (as ``add_job`` takes it: an alias with its arguments, a trigger
    instance, or ``crontab="..."``); its next run time is computed from now."""
    built = build_trigger(trigger, trigger_args, get_conf().timezone)
    return _write(job_id, lambda row: {"trigger": built, "next_run_time": _first_fire_time(built)})


def pause_job(job_id: str) -> ScheduledJob:
    """Stop a job from running until ``resume_job``."""
    return _write(job_id, lambda row: {"next_run_time": None})


def resume_job(job_id: str) -> ScheduledJob:
    """Resume a paused job from its next fire time after now (missed runs are not replayed)."""
    return _write(job_id, lambda row: {"next_run_time": _first_fire_time(_trigger_of(row))})


@dataclass(frozen=True)
class RunRequest:
    """A run asked for with :func:`run_now`: its history row is pending until a scheduler
    takes it (``JobExecution.objects.get(id=execution_id)``)."""

    job_id: str
    #: The run's ``scheduled_run_time`` (when it was asked for), aware UTC.
    requested_at: datetime
    execution_id: int
    #: The run skipped by ``skip_next=True`` (None when nothing was skipped).
    skipped_run_time: datetime | None = None


def run_now(job_id: str, *, requested_by: str | None = None, skip_next: bool = False) -> RunRequest:
    """Ask a scheduler (never this process) to run the job once, now, paused or not.

    The request is a history row (``trigger_source`` ``run-now``, ``requested_by``) that the
    first scheduler to poll takes: within ``POLL_INTERVAL``, at once on PostgreSQL. The job's
    next scheduled run is unchanged, unless ``skip_next=True``, which skips exactly that run
    (recorded ``skipped``). ``max_instances`` holds across the fleet (a refused request is
    recorded ``skipped``); a request no scheduler takes within ``RUN_NOW_EXPIRY`` is recorded
    ``missed``. Inside ``transaction.atomic()`` nothing happens unless the transaction commits.
    """
    database = get_conf().database
    with transaction.atomic(using=database):
        row = _rows().active().select_for_update().filter(id=job_id).first()
        if row is None:
            raise JobNotFoundError(job_id)
        if row.load_error:
            raise InvalidJobError(
                f"Job {job_id!r} cannot be loaded by a scheduler, so it cannot run: "
                f"{row.load_error}"
            )
        ledger = Ledger(database)
        skipped_at = _skip_next(row, requested_by, ledger) if skip_next else None
        requested_at = timezone.now()
        for _attempt in range(WRITE_ATTEMPTS):
            run = NewRun(
                job_id=row.id,
                scheduled_run_time=requested_at,
                job_name=row.name,
                func=row.task or row.func,
                trigger_source=TriggerSource.RUN_NOW,
                requested_by=head(requested_by or "", 150),
            )
            if ledger.manual_run(run):
                break
            requested_at += timedelta(microseconds=1)  # another request at the same instant
        else:  # pragma: no cover - needs WRITE_ATTEMPTS requests within microseconds
            raise ConcurrentChangeError(f"Could not record a run-now request for {job_id!r}")
        execution = ledger.execution_id(row.id, requested_at)
        wakeups.notify(database)
    return RunRequest(row.id, requested_at, execution, skipped_at)


def _skip_next(row: Job, requested_by: str | None, ledger: Ledger) -> datetime | None:
    """Move the job past its next scheduled run, recorded ``skipped``; None if paused."""
    if row.next_run_time is None:
        return None
    skipped = row.next_run_time
    trigger = _trigger_of(row)
    following = trigger.get_next_fire_time(skipped, skipped)
    _rows().filter(id=row.id, version=row.version).update(
        next_run_time=following,
        finished_at=None if following is not None else timezone.now(),
        version=F("version") + 1,
        updated_at=timezone.now(),
    )
    who = f" by {requested_by}" if requested_by else ""
    ledger.claimed(
        [
            NewRun(
                job_id=row.id,
                scheduled_run_time=skipped,
                job_name=row.name,
                func=row.task or row.func,
                skipped_reason=f"Skipped: run now with skip_next=True{who}",
                requested_by=head(requested_by or "", 150),
            )
        ]
    )
    return skipped


def remove_job(job_id: str) -> None:
    """Delete a job, finished one-off jobs too; its history stays in ``JobExecution``."""
    deleted, _ = _rows().filter(id=job_id).delete()
    if not deleted:
        raise JobNotFoundError(job_id)


# -- writing ---------------------------------------------------------------------------------

_MODIFIABLE = frozenset(
    {
        "func",
        "args",
        "kwargs",
        "name",
        "executor",
        "misfire_grace_time",
        "coalesce",
        "max_instances",
        "next_run_time",
        "long_running_after",
        "task",
        "task_options",
    }
)


def _write(
    job_id: str, change: Callable[[Job], dict[str, Any]], columns: Mapping[str, Any] | None = None
) -> ScheduledJob:
    """Apply ``change`` (and ``columns``, our own options) to the stored row under its
    version; retried if another writer won."""
    for _attempt in range(WRITE_ATTEMPTS):
        row = _rows().active().filter(id=job_id).first()
        if row is None:
            raise JobNotFoundError(job_id)
        changes = change(row)
        job = _new_job({**_state_of(row, replaced=changes.keys()), **changes})
        fields = _fields(job)
        updated = (
            _rows()
            .active()
            .filter(id=job_id, version=row.version)
            .update(
                **fields,
                **(columns or {}),
                version=F("version") + 1,
                load_error="",
                updated_at=timezone.now(),
            )
        )
        if updated:
            return _get(job_id)
    raise ConcurrentChangeError(
        f"Job {job_id!r} changed {WRITE_ATTEMPTS} times while it was being written; "
        "nothing was written. Try again."
    )


def _retrying(write: Callable[[], None]) -> None:
    from django_clockwork.claim import ClaimConflictError

    try:
        write()
    except ClaimConflictError as exc:
        raise ConcurrentChangeError(str(exc)) from None


def _get(job_id: str) -> ScheduledJob:
    job = get_job(job_id)
    if job is None:  # removed by another process in between
        raise JobNotFoundError(job_id)
    return job


def _state_of(row: Job, *, replaced: Collection[str] = ()) -> dict[str, Any]:
    """The row as ``Job`` arguments, but for the ``replaced`` ones (so that a trigger or
    arguments that cannot be read can be replaced; kept ones must be readable)."""
    state = {
        "id": row.id,
        "func": row.func,
        "executor": row.executor,
        "args": () if "args" in replaced else _json_of(row, "args", list, tuple),
        "kwargs": {} if "kwargs" in replaced else _json_of(row, "kwargs", dict, dict),
        "name": row.name or row.func,
        "misfire_grace_time": row.misfire_grace_time,
        "coalesce": row.coalesce,
        "max_instances": row.max_instances,
        "next_run_time": row.next_run_time,
    }
    if "trigger" not in replaced:
        state["trigger"] = _trigger_of(row)
    return state


def _json_of(row: Job, column: str, kind: type, make: Callable[[Any], Any]) -> Any:
    """A stored argument column as ``Job`` takes it (empty if it is not a ``kind``)."""
    try:
        value = decoded(getattr(row, column), column)
    except UndecodableJSONError as exc:
        raise InvalidJobError(f"Job {row.id!r}: {exc}") from exc
    return make(value) if isinstance(value, kind) else make(())


def _trigger_of(row: Job) -> Any:
    try:
        return trigger_from_json(decoded(row.trigger, "trigger"))
    except (SerializationError, UndecodableJSONError) as exc:
        raise InvalidJobError(
            f"Job {row.id!r} has an invalid stored trigger ({exc}); give it a new one with "
            "reschedule_job."
        ) from exc


@contextmanager
def _refused_as_invalid(job_id: Any) -> Iterator[None]:
    """APScheduler's own refusals (``TypeError``, ``ValueError``, ``LookupError``) as
    ``InvalidJobError``; ``SerializationError`` and our own refusals stay what they are."""
    try:
        yield
    except (SerializationError, InvalidJobError):
        raise
    except (TypeError, ValueError, LookupError) as exc:
        raise InvalidJobError(f"Job {job_id!r}: {exc}") from exc


def _new_job(state: dict[str, Any]) -> APJob:
    """An APScheduler job from ``state``, validated by APScheduler's own rules.

    A stored reference is checked before APScheduler imports it (a row edited by hand).
    """
    if isinstance(state.get("func"), str):
        allowed.check_text(state["func"])
    with _refused_as_invalid(state.get("id")):
        return aps.new_job(zone_from_json(get_conf().timezone), **state)


def _fields(job: APJob) -> dict[str, Any]:
    with _refused_as_invalid(job.id):
        return row_fields(job)


def _given(value: Any, default: Any) -> Any:
    return default if value is UNSET else value


def _first_fire_time(trigger: Any) -> datetime | None:
    try:
        fire_time: datetime | None = trigger.get_next_fire_time(None, timezone.now())
    except (ValueError, OverflowError) as exc:  # e.g. an and trigger whose parts never agree
        raise InvalidJobError(f"Trigger {trigger!r} has no next fire time: {exc}") from exc
    return fire_time
