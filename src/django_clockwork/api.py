"""Change jobs from any process (web requests, shells, other services).

These functions write straight to the job table; they never need a running
scheduler (APScheduler 3's own ``add_job`` on a stopped scheduler only queues in
memory). Running schedulers see the change on their next poll.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from apscheduler.job import Job as APJob
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.util import undefined

from django_clockwork.conf import Conf, get_conf
from django_clockwork.jobstore import DjangoJobStore
from django_clockwork.runner import create_scheduler


def _detached() -> tuple[BaseScheduler, DjangoJobStore]:
    """A scheduler that is never started: it lends its defaults and trigger parsing."""
    return _detached_for(get_conf())


@functools.cache
def _detached_for(conf: Conf) -> tuple[BaseScheduler, DjangoJobStore]:
    scheduler = create_scheduler()
    store: DjangoJobStore = scheduler._jobstores["default"]
    store.start(scheduler, "default")
    return scheduler, store


def add_job(
    func: Callable[..., Any] | str,
    trigger: Any = None,
    *,
    args: Iterable[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    id: str | None = None,
    name: str | None = None,
    misfire_grace_time: Any = undefined,
    coalesce: Any = undefined,
    max_instances: Any = undefined,
    next_run_time: Any = undefined,
    executor: str = "default",
    replace_existing: bool = False,
    **trigger_args: Any,
) -> APJob:
    """Add (or with ``replace_existing``, replace) a job; same arguments as APScheduler's.

    Raises ``ConflictingIdError`` if the id exists and ``replace_existing`` is false,
    ``SerializationError`` for arguments JSON cannot hold, and APScheduler's own errors
    (``LookupError``, ``ValueError``, ``TypeError``) for a bad callable or trigger.
    """
    scheduler, store = _detached()
    options = {
        "trigger": scheduler._create_trigger(trigger, trigger_args),
        "executor": executor,
        "func": func,
        "args": tuple(args) if args is not None else (),
        "kwargs": dict(kwargs) if kwargs is not None else {},
        "id": id,
        "name": name,
        "misfire_grace_time": misfire_grace_time,
        "coalesce": coalesce,
        "max_instances": max_instances,
        "next_run_time": next_run_time,
    }
    for key, default in scheduler._job_defaults.items():
        if options[key] is undefined:
            options[key] = default
    job = APJob(scheduler, **{k: v for k, v in options.items() if v is not undefined})
    if not hasattr(job, "next_run_time"):
        now = datetime.now(scheduler.timezone)
        job._modify(next_run_time=job.trigger.get_next_fire_time(None, now))
    try:
        store.add_job(job)
    except ConflictingIdError:
        if not replace_existing:
            raise
        store.update_job(job)
        # The row may have kept its next_run_time (same trigger): answer with what is stored.
        return store.lookup_job(job.id) or job
    return job


def get_job(job_id: str) -> APJob | None:
    """The job with this id, or None (also None for a row flagged as broken)."""
    return _detached()[1].lookup_job(job_id)


def get_jobs() -> list[APJob]:
    """Every loadable job, soonest first, paused jobs last."""
    return _detached()[1].get_all_jobs()


def _change(job_id: str, *, resume: bool = False, **changes: Any) -> APJob:
    scheduler, store = _detached()
    job = store.lookup_job(job_id)
    if job is None:
        raise JobLookupError(job_id)
    if resume:
        changes["next_run_time"] = job.trigger.get_next_fire_time(
            None, datetime.now(scheduler.timezone)
        )
    if "trigger" in changes:
        trigger = scheduler._create_trigger(changes.pop("trigger"), changes.pop("trigger_args"))
        now = datetime.now(scheduler.timezone)
        changes.update(trigger=trigger, next_run_time=trigger.get_next_fire_time(None, now))
    job._modify(**changes)
    store.update_job(job)
    return job


def modify_job(job_id: str, **changes: Any) -> APJob:
    """Change attributes of a job (``args``, ``kwargs``, ``name``, ``max_instances``...)."""
    return _change(job_id, **changes)


def reschedule_job(job_id: str, trigger: Any = "date", **trigger_args: Any) -> APJob:
    """Give a job a new trigger; its next run time is computed from now."""
    return _change(job_id, trigger=trigger, trigger_args=trigger_args)


def pause_job(job_id: str) -> APJob:
    """Stop a job from running until ``resume_job``."""
    return _change(job_id, next_run_time=None)


def resume_job(job_id: str) -> APJob:
    """Resume a paused job from its next fire time after now (missed runs are not replayed)."""
    return _change(job_id, resume=True)


def remove_job(job_id: str) -> None:
    """Delete a job; its history stays in ``JobExecution``."""
    _detached()[1].remove_job(job_id)
