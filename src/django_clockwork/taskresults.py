"""Complete enqueued runs from the task framework's signals, in a worker that has this app.

A worker of Django's tasks framework sends ``task_started`` and ``task_finished`` around each
task it runs. Where the worker's project has ``django_clockwork`` installed (the same project
as the schedulers, as with django-tasks-db's ``db_worker``), :func:`connect` makes
``task_finished`` complete the run that enqueued the task: ``enqueued`` becomes ``succeeded``
or ``failed`` with the task's start, finish, duration and error. Elsewhere the run stays
``enqueued`` and its ``task_result_id`` says where to look. A result no run enqueued (a task
enqueued by other code) changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from django_clockwork import taskframework
from django_clockwork.conf import get_conf
from django_clockwork.ledger import Ledger

logger = logging.getLogger(__name__)

_UID = "django_clockwork.taskresults"


def connect() -> None:
    """Listen to ``task_finished`` (nothing happens without a tasks framework)."""
    if taskframework.FRAMEWORK is not None:
        taskframework.signal("task_finished").connect(finished, dispatch_uid=_UID)


def finished(sender: Any, task_result: Any, **kwargs: Any) -> None:
    """The receiver: never raises into the worker (logged instead)."""
    try:
        record(task_result)
    except Exception:
        logger.exception("Could not record the outcome of task result %s", task_result.id)


def record(task_result: Any) -> bool:
    """Complete the enqueued run of this result; True if one moved."""
    status = str(task_result.status)
    if status not in ("SUCCESSFUL", "FAILED"):
        return False
    errors = list(task_result.errors or ())
    last = errors[-1] if errors else None
    moved = Ledger(get_conf().database).task_finished(
        str(task_result.backend),
        str(task_result.id),
        succeeded=status == "SUCCESSFUL",
        started_at=task_result.started_at,
        finished_at=task_result.finished_at,
        exception=f"Task failed: {last.exception_class_path}" if last else "Task failed",
        traceback=last.traceback if last else "",
    )
    return moved == 1
