"""Jobs declared next to the code, and their reconciliation with the job table.

::

    # myapp/jobs.py (found automatically in every installed app, like admin.py)
    from django_clockwork import job_function, scheduled_job

    @scheduled_job("cron", hour=3, minute=0, timezone="Europe/Paris", id="nightly-report")
    def nightly_report(): ...

    @job_function  # may be scheduled from the api or the admin; no schedule of its own
    def rebuild_index(full=False): ...

A declaration is checked when its module is imported (a lambda, a nested function or a method,
a duplicate id, a trigger that never fires, arguments JSON cannot hold: each an
``InvalidJobError`` that says so) and registers its function as allowed (see ``allowed``).

:func:`sync` makes the table match the declarations: a declared job missing from the table is
created (``source="code"``); one whose declaration changed is updated (its pause kept); one that
did not change is not written at all, so its next run time and an operator's pause survive every
start; a ``code`` row no longer declared (or whose declaration is switched off) is paused and
marked ``undeclared_at``, never deleted unless ``prune=True``. Jobs added through ``api`` or the
admin are never touched. Every write is a compare-and-set on the row's version, so any number
of schedulers may sync at the same moment. It runs when a scheduler starts and on
``manage.py clockwork sync``; ``CLOCKWORK["DECLARED_JOBS"] = False`` turns it (and the running
of ``code`` rows) off, e.g. on a staging copy of a production database.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from apscheduler.jobstores.base import ConflictingIdError
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from django.db.models import F
from django.utils import timezone

from django_clockwork import allowed, aps, taskframework, tasktargets
from django_clockwork.conf import get_conf
from django_clockwork.describe import describe
from django_clockwork.exceptions import InvalidJobError
from django_clockwork.jobstore import DjangoJobStore
from django_clockwork.logtext import user
from django_clockwork.models import Job, JobSource
from django_clockwork.rows import row_fields
from django_clockwork.serialization import (
    SerializationError,
    check_json_arguments,
    trigger_to_json,
    zone_from_json,
)
from django_clockwork.triggers import build_trigger

logger = logging.getLogger(__name__)

F_ = TypeVar("F_", bound=Callable[..., Any])
#: What ``scheduled_job`` decorates: a function, or a Task (not callable).
Target = TypeVar("Target")

#: The job options a declaration may give, besides its trigger and arguments.
OPTIONS = ("misfire_grace_time", "coalesce", "max_instances", "executor", "long_running_after")


@dataclass(frozen=True)
class Declaration:
    """One job declared in code."""

    id: str
    func: str  # "module:qualname"
    trigger: Any  # as given: an alias ("cron"), None (date) or a trigger instance
    trigger_args: Mapping[str, Any]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    name: str | None
    options: Mapping[str, Any]
    #: Whether it is declared in this environment (a callable is asked at every sync).
    enabled: bool | Callable[[], bool] = True
    where: str = ""  # "module.py:line", for errors
    #: For a declared Task: its path and options (``func`` is then our enqueuer).
    task: str = ""
    task_options: Mapping[str, Any] = field(default_factory=dict)

    def is_enabled(self) -> bool:
        return bool(self.enabled() if callable(self.enabled) else self.enabled)

    def build(self) -> Any:
        """The APScheduler trigger, with the project's time zone where none is given."""
        return build_trigger(self.trigger, dict(self.trigger_args), get_conf().timezone)

    def fingerprint(self) -> str:
        """A hash of the declaration as written (and of the project's time zone and job
        defaults it relies on): equal fingerprints mean nothing to write."""
        conf = get_conf()
        if self.trigger is None or isinstance(self.trigger, str):
            trigger: Any = {"alias": self.trigger, "args": dict(self.trigger_args)}
        else:
            trigger = trigger_to_json(self.trigger)
            if isinstance(self.trigger, (IntervalTrigger, CalendarIntervalTrigger)):
                trigger.pop("start_date", None)  # "now" when built without one
        body = {
            "func": self.func,
            "trigger": trigger,
            "timezone": conf.timezone,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "name": self.name,
            "options": {key: self.options.get(key) for key in OPTIONS},
            **({"task": self.task, "task_options": dict(self.task_options)} if self.task else {}),
            "defaults": [
                conf.job_defaults.misfire_grace_time,
                conf.job_defaults.coalesce,
                conf.job_defaults.max_instances,
            ],
        }
        text = json.dumps(body, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


_declarations: dict[str, Declaration] = {}
_functions: dict[str, Callable[..., Any]] = {}
_tasks: dict[str, Any] = {}


def declarations() -> list[Declaration]:
    """Every job declared so far (the ``jobs`` modules of installed apps are imported at start)."""
    return list(_declarations.values())


def registered_tasks() -> dict[str, Any]:
    """Tasks that jobs may enqueue (declared, or registered with ``@job_function``), by path."""
    return dict(_tasks)


def registered_functions() -> dict[str, Callable[..., Any]]:
    """Functions that may be scheduled (declared or registered), by ``"module:qualname"``."""
    return dict(_functions)


# -- declaring ----------------------------------------------------------------------------------


@overload
def job_function(func: F_) -> F_: ...
@overload
def job_function(func: None = None) -> Callable[[F_], F_]: ...
def job_function(func: Any = None) -> Any:
    """Register a module-level function that jobs may run (from ``api`` or the admin) without
    giving it a schedule; ``@job_function`` or ``@job_function()``. Above ``@task``, it offers
    the Task to the admin's job form."""

    def register(target: F_) -> F_:
        if taskframework.is_task(target):
            register_task(target)
        else:
            register_function(target)
        return target

    return register if func is None else register(func)


def register_function(func: Callable[..., Any]) -> str:
    """The plain form of :func:`job_function`, for a callable defined elsewhere; returns its
    reference."""
    ref = _reference(func)
    allowed.register(func)
    _functions[ref] = func
    return ref


def register_task(task: Any) -> str:
    """Allow jobs to enqueue ``task`` (a Task) and offer it in the admin; returns its path."""
    path = tasktargets.path_of(task)
    allowed.register(tasktargets.function_of(task))
    _tasks[path] = task
    return path


def scheduled_job(
    trigger: Any = None,
    *,
    id: str | None = None,
    name: str | None = None,
    args: Any = (),
    kwargs: Mapping[str, Any] | None = None,
    enabled: bool | Callable[[], bool] = True,
    task_options: Mapping[str, Any] | None = None,
    **trigger_args_and_options: Any,
) -> Callable[[Target], Target]:
    """Declare a job for the decorated function: ``trigger`` and its arguments as
    ``api.add_job`` takes them (``"cron", hour=3``, ``crontab="0 9 * * 1-5"``), job options
    (``misfire_grace_time``, ``coalesce``, ``max_instances``, ``executor``,
    ``long_running_after``), ``id`` (default: the function's reference) and ``enabled`` (a
    bool, or a callable asked at every sync, e.g. ``lambda: settings.SEND_REPORTS``).

    Above ``@task`` (Django's tasks framework) it declares a job that enqueues the Task,
    with ``task_options`` (``backend``, ``queue_name``, ``priority``, ``run_after``)."""

    def declare(func: Target) -> Target:
        declare_job(
            func,
            trigger,
            id=id,
            name=name,
            args=args,
            kwargs=kwargs,
            enabled=enabled,
            task_options=task_options,
            **trigger_args_and_options,
        )
        return func

    return declare


def declare_job(
    func: Callable[..., Any] | Any,  # or a Task, which is not callable
    trigger: Any = None,
    *,
    id: str | None = None,
    name: str | None = None,
    args: Any = (),
    kwargs: Mapping[str, Any] | None = None,
    enabled: bool | Callable[[], bool] = True,
    task_options: Mapping[str, Any] | None = None,
    **trigger_args_and_options: Any,
) -> Declaration:
    """The plain form of :func:`scheduled_job`, for a callable (or a Task) defined elsewhere."""
    task, defined_by = "", func
    if taskframework.is_task(func):
        task, defined_by = register_task(func), tasktargets.function_of(func)
        ref = tasktargets.ENQUEUER
    elif task_options is not None:
        raise InvalidJobError(f"{func!r}: task_options apply to a Task (decorated with @task).")
    else:
        ref = register_function(func)
    options = {
        key: trigger_args_and_options.pop(key) for key in OPTIONS if key in trigger_args_and_options
    }
    declaration = Declaration(
        id=id or task or ref,
        task=task,
        task_options=dict(task_options or {}),
        func=ref,
        trigger=trigger,
        trigger_args=trigger_args_and_options,
        args=tuple(args),
        kwargs=dict(kwargs or {}),
        name=name,
        options=options,
        enabled=enabled,
        where=_where(defined_by),
    )
    _check(declaration)
    existing = _declarations.get(declaration.id)
    if existing is not None and (existing.func, existing.task) != (
        declaration.func,
        declaration.task,
    ):
        raise InvalidJobError(
            f"Two declarations use the job id {declaration.id!r}: {existing.func} "
            f"({existing.where}) and {declaration.func} ({declaration.where}). Give one an id= "
            "of its own."
        )
    _declarations[declaration.id] = declaration
    return declaration


def forget(job_id: str) -> None:
    """Remove a declaration (for tests and for projects that declare dynamically)."""
    _declarations.pop(job_id, None)


def _reference(func: Callable[..., Any]) -> str:
    if not callable(func):
        raise InvalidJobError(f"{func!r} is not callable")
    qualname = getattr(func, "__qualname__", "")
    what = f"{getattr(func, '__module__', '?')}.{qualname}"
    if "<lambda>" in qualname:
        raise InvalidJobError(f"{what}: a lambda has no name a job row can refer to; use def.")
    if "<locals>" in qualname:
        raise InvalidJobError(
            f"{what}: a function defined inside another one cannot be imported by a scheduler; "
            "define it at module level."
        )
    if "." in qualname:
        raise InvalidJobError(
            f"{what}: a method cannot be declared with a decorator (the class is not built yet "
            "when it runs); declare a module-level function, or after the class use "
            "declare_job(Class.method, ...) for a staticmethod or classmethod."
        )
    return allowed.reference_of(func)


def _check(declaration: Declaration) -> None:
    target = declaration.task or declaration.func
    where = f"Job {declaration.id!r} ({target}, {declaration.where})"
    try:
        check_json_arguments(declaration.args, declaration.kwargs)
        if declaration.task:
            tasktargets.check(
                declaration.task, declaration.task_options, declaration.args, declaration.kwargs
            )
    except (SerializationError, InvalidJobError) as exc:
        raise InvalidJobError(f"{where}: {exc}") from None
    try:
        trigger = declaration.build()
    except InvalidJobError as exc:
        raise InvalidJobError(f"{where}: {exc}") from None
    try:
        first = trigger.get_next_fire_time(None, timezone.now())
    except (ValueError, OverflowError) as exc:
        raise InvalidJobError(f"{where}: its trigger has no fire time: {exc}") from None
    if first is None and not isinstance(trigger, DateTrigger) and not _has_end(trigger):
        raise InvalidJobError(
            f"{where}: its trigger never fires ({trigger}); e.g. a day that no month has."
        )


def _has_end(trigger: Any) -> bool:
    return getattr(trigger, "end_date", None) is not None


def _where(func: Callable[..., Any]) -> str:
    code = getattr(func, "__code__", None)
    if code is None:
        return getattr(func, "__module__", "?")
    return f"{code.co_filename}:{code.co_firstlineno}"


# -- reconciling --------------------------------------------------------------------------------


@dataclass
class SyncReport:
    """What a sync did (or, dry, would do), by job id."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    undeclared: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    #: Ids declared in code that a job added through ``api`` or the admin already uses.
    conflicts: list[str] = field(default_factory=list)
    disabled: bool = False

    def lines(self) -> Iterator[str]:
        if self.disabled:
            yield "Declared jobs are off here (CLOCKWORK['DECLARED_JOBS'] is False): nothing done."
            return
        for label, ids in (
            ("created", self.created),
            ("updated", self.updated),
            ("unchanged", self.unchanged),
            ("no longer declared, paused", self.undeclared),
            ("deleted (no longer declared)", self.pruned),
            ("not touched, the id belongs to a job added through api or the admin", self.conflicts),
        ):
            if ids:
                yield f"{len(ids)} {label}: {', '.join(sorted(ids))}"

    @property
    def writes(self) -> int:
        return len(self.created) + len(self.updated) + len(self.undeclared) + len(self.pruned)


def sync(*, dry_run: bool = False, prune: bool = False) -> SyncReport:
    """Make the job table match the declarations (see the module's docstring)."""
    conf = get_conf()
    report = SyncReport()
    if not conf.declared_jobs:
        report.disabled = True
        return report
    rows = Job.objects.using(conf.database)
    declared = {d.id: d for d in _declarations.values() if d.is_enabled()}
    for declaration in declared.values():
        _sync_one(declaration, rows, report, dry_run)
    now = timezone.now()
    leftover = rows.filter(source=JobSource.CODE).exclude(id__in=list(declared))
    for row in leftover.filter(finished_at__isnull=True, undeclared_at__isnull=True):
        if dry_run or leftover.filter(id=row.id, version=row.version).update(
            next_run_time=None, undeclared_at=now, version=F("version") + 1, updated_at=now
        ):
            report.undeclared.append(row.id)
            if not dry_run:
                logger.warning(
                    "Job %r is no longer declared in code: paused and marked (delete it with "
                    "manage.py clockwork sync --prune)",
                    user(row.id),
                )
    if prune:
        for job_id in leftover.filter(undeclared_at__isnull=False).values_list("id", flat=True):
            if dry_run or leftover.filter(id=job_id, undeclared_at__isnull=False).delete()[0]:
                report.pruned.append(job_id)
    return report


def _sync_one(declaration: Declaration, rows: Any, report: SyncReport, dry_run: bool) -> None:
    fingerprint = declaration.fingerprint()
    for _attempt in range(5):
        row = rows.filter(id=declaration.id).first()
        if row is None:
            if dry_run:
                report.created.append(declaration.id)
                return
            try:
                _create(declaration, fingerprint)
            except ConflictingIdError:
                continue  # another scheduler created it this instant: compare with theirs
            report.created.append(declaration.id)
            logger.info(
                "Declared job %r created: %s",
                user(declaration.id),
                describe(trigger_to_json(declaration.build())),
            )
            return
        if row.source != JobSource.CODE:
            report.conflicts.append(declaration.id)
            logger.error(
                "Job id %r is declared in code (%s) but a job added through %s uses it; the "
                "declaration is not applied",
                user(declaration.id),
                declaration.where,
                row.source,
            )
            return
        if row.declaration == fingerprint and row.undeclared_at is None:
            report.unchanged.append(declaration.id)
            return
        if dry_run:
            report.updated.append(declaration.id)
            return
        if _update(declaration, fingerprint, row, rows):
            report.updated.append(declaration.id)
            logger.info(
                "Declared job %r updated: %s",
                user(declaration.id),
                describe(trigger_to_json(declaration.build())),
            )
            return
    raise InvalidJobError(f"Job {declaration.id!r} kept changing while it was being synced")


def _job(declaration: Declaration, next_run_time: Any) -> Any:
    conf = get_conf()
    defaults = conf.job_defaults
    options = declaration.options
    state = {
        "id": declaration.id,
        "func": declaration.func,
        "trigger": declaration.build(),
        "executor": options.get("executor", "default"),
        "args": declaration.args,
        "kwargs": dict(declaration.kwargs),
        "misfire_grace_time": options.get("misfire_grace_time", defaults.misfire_grace_time),
        "coalesce": options.get("coalesce", defaults.coalesce),
        "max_instances": options.get("max_instances", defaults.max_instances),
    }
    if declaration.name is not None or declaration.task:
        state["name"] = declaration.name or declaration.task
    if next_run_time == "first":
        next_run_time = state["trigger"].get_next_fire_time(None, timezone.now())
    state["next_run_time"] = next_run_time
    return aps.new_job(zone_from_json(conf.timezone), **state)


def _create(declaration: Declaration, fingerprint: str) -> None:
    conf = get_conf()
    job = _job(declaration, "first")
    DjangoJobStore(database=conf.database, source=JobSource.CODE).insert(
        job,
        declaration=fingerprint,
        long_running_after=declaration.options.get("long_running_after"),
        task=declaration.task,
        task_options=dict(declaration.task_options),
    )


def _update(declaration: Declaration, fingerprint: str, row: Job, rows: Any) -> bool:
    """Write the new definition under a compare-and-set; False if the row changed meanwhile.

    The next run time: kept when the schedule is the same; an operator's pause is kept; a row
    paused because it was undeclared, or given a new schedule, goes on from its first fire
    time after now.
    """
    job = _job(declaration, None)
    fields = row_fields(job)
    del fields["next_run_time"]
    first = job.trigger.get_next_fire_time(None, timezone.now())
    same_schedule = fields["trigger"] == row.trigger
    finished_at = row.finished_at
    if row.undeclared_at is not None:
        next_run_time = first  # paused by the sync that found it undeclared: declared again
    elif row.next_run_time is None and row.finished_at is None:
        next_run_time = None  # an operator's pause survives a changed declaration
    elif row.finished_at is not None:
        next_run_time = None if same_schedule else first  # a new one-off date runs again
        finished_at = row.finished_at if same_schedule or first is None else None
    else:
        next_run_time = row.next_run_time if same_schedule else first
    updated: int = rows.filter(id=row.id, version=row.version).update(
        **fields,
        next_run_time=next_run_time,
        long_running_after=declaration.options.get("long_running_after"),
        task=declaration.task,
        task_options=dict(declaration.task_options),
        declaration=fingerprint,
        undeclared_at=None,
        finished_at=finished_at,
        load_error="",
        version=F("version") + 1,
        updated_at=timezone.now(),
    )
    return bool(updated)
