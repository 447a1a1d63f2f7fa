"""A job object and its row: the column values of a job, and what an object last matched.

Nothing here is pickled: a job's function is stored by a reference that must import back
to the same callable, its trigger and arguments as JSON.
"""

from __future__ import annotations

import weakref
from datetime import datetime
from typing import Any, NamedTuple

from apscheduler.job import Job as APJob
from apscheduler.jobstores.base import TransientJobError

from django_clockwork import allowed
from django_clockwork.models import Job
from django_clockwork.serialization import (
    SerializationError,
    check_json_arguments,
    trigger_to_json,
)


class JobRow(NamedTuple):
    """The columns a job is restored from, as a claim reads them (no model instance: building
    one per due row cost a claim more than reading the row)."""

    id: str
    name: str
    func: str
    task: str
    task_options: Any
    long_running_after: float | None
    trigger: Any
    args: Any
    kwargs: Any
    executor: str
    misfire_grace_time: int | None
    coalesce: bool
    max_instances: int
    next_run_time: datetime | None
    version: int
    load_error: str


#: A job's row as the store restores and flags it: a model instance or a claim's tuple.
StoredRow = Job | JobRow


#: The columns a job is restored from, planned by a claim with, and ``_flag`` reads (a column
#: left out of a query of model instances would cost a query per row when read).
JOB_COLUMNS: tuple[str, ...] = JobRow._fields


class _Seen(weakref.ref):  # type: ignore[type-arg]
    """A weak reference to a job object with the ``next_run_time`` it carried then."""

    __slots__ = ("carried", "key")
    key: int
    carried: datetime | None


class SyncedRunTimes:
    """The ``next_run_time`` each job object carried when it last matched its row.

    Objects are remembered when the store adds, loads or writes them. ``update_job`` writes a
    job's ``next_run_time`` only if the writer changed it since then, so that a copy read
    before a claim advanced the row never restores the old time. Keyed by identity and held
    weakly: APScheduler's ``Job`` compares by id and cannot be hashed, and the store must not
    keep the scheduler's job objects alive. One small object per job (a listing of 100,000
    jobs remembers them all), dropped when the job object is.
    """

    def __init__(self) -> None:
        self._times: dict[int, _Seen] = {}
        self._drop = self._forget  # one callback shared by every reference

    def remember(self, job: APJob) -> None:
        seen = _Seen(job, self._drop)
        seen.key = id(job)
        seen.carried = job.next_run_time
        self._times[seen.key] = seen

    def _forget(self, seen: weakref.ref[APJob]) -> None:
        key = getattr(seen, "key", None)
        if key is not None and self._times.get(key) is seen:
            del self._times[key]

    def changed(self, job: APJob) -> bool | None:
        """Whether the job's ``next_run_time`` changed since it was remembered; None for an
        object this store never saw."""
        now_carried = job.next_run_time
        seen = self._times.get(id(job))
        if seen is None or seen() is not job:
            return None
        return bool(now_carried != seen.carried)


def check_reference(job: APJob) -> None:
    """Refuse a job whose ``func_ref`` is not allowed (``FunctionNotAllowedError``, see
    ``allowed``) or does not import back to its callable.

    APScheduler names a bound method by its class (``"mod:Class.method"``), which imports
    back to the plain function: the instance would be lost. A reference to a method of a
    module-level instance (``"mod:instance.method"``) imports back to an equal bound method
    and is accepted.
    """
    try:
        same = allowed.resolve(job.func_ref) == job.func
    except (LookupError, TypeError):
        same = False
    if not same:
        raise SerializationError(
            f"Job {job.id!r}: {job.func_ref!r} does not import back to the callable given "
            f"({job.func!r}): a bound method of an instance, or a callable instance, cannot be "
            "stored as JSON. Use a module-level function, a staticmethod or a classmethod, or "
            "name a method of a module-level instance as 'module:instance.method'."
        )


def row_fields(job: APJob) -> dict[str, Any]:
    """The column values for an APScheduler job; refuses anything that is not plain JSON."""
    if not job.func_ref:
        raise TransientJobError(job.id)
    check_reference(job)
    try:
        check_json_arguments(job.args, job.kwargs)
    except SerializationError as exc:
        raise SerializationError(f"Job {job.id!r}: {exc}") from None
    return {
        "name": job.name,
        "func": job.func_ref,
        "trigger": trigger_to_json(job.trigger),
        "args": list(job.args),
        "kwargs": dict(job.kwargs),
        "executor": job.executor,
        "misfire_grace_time": job.misfire_grace_time,
        "coalesce": job.coalesce,
        "max_instances": job.max_instances,
        "next_run_time": job.next_run_time,
    }
