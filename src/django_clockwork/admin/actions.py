"""What an operator does to jobs: run now, run now and skip the next run, pause, resume.

Each goes through :mod:`django_clockwork.api` (versions, wake-ups and the ledger stay right),
needs the change permission, and is logged in the admin log with the user. A request only
records what it asked for: the run happens on a scheduler, and appears in the history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from django_clockwork import api
from django_clockwork.exceptions import InvalidJobError, JobNotFoundError
from django_clockwork.models import Job


@dataclass(frozen=True)
class Operation:
    """One operation on one job: its action name, its button and how the log says it."""

    name: str
    label: str
    done: str
    call: Callable[[str, str], object]


def _run_now(job_id: str, user: str) -> object:
    return api.run_now(job_id, requested_by=user)


def _run_now_skip_next(job_id: str, user: str) -> object:
    return api.run_now(job_id, requested_by=user, skip_next=True)


def _pause(job_id: str, user: str) -> object:
    return api.pause_job(job_id)


def _resume(job_id: str, user: str) -> object:
    return api.resume_job(job_id)


OPERATIONS = {
    op.name: op
    for op in (
        Operation("run_now", "Run now", "Asked a scheduler to run it now", _run_now),
        Operation(
            "run_now_skip_next",
            "Run now and skip the next run",
            "Asked a scheduler to run it now, skipping its next scheduled run",
            _run_now_skip_next,
        ),
        Operation("pause", "Pause", "Paused", _pause),
        Operation("resume", "Resume", "Resumed", _resume),
    )
}


def available(job: api.ScheduledJob) -> list[Operation]:
    """The operations that make sense for a job in its state (for its page's buttons)."""
    if job.finished:
        return []
    if job.load_error:
        return [OPERATIONS["pause"]] if job.next_run_time is not None else []
    names = ["run_now", "run_now_skip_next", "pause"] if not job.paused else ["run_now", "resume"]
    return [OPERATIONS[name] for name in names]


def apply(model_admin: Any, request: HttpRequest, name: str, jobs: Iterable[Job]) -> None:
    """Apply operation ``name`` to ``jobs`` through ``api``; say what happened to each."""
    operation = OPERATIONS[name]
    user = request.user.get_username() if request.user.is_authenticated else ""
    done: list[str] = []
    for job in jobs:
        try:
            operation.call(job.id, user)
        except JobNotFoundError:
            refusal = "it has finished or was deleted"
        except InvalidJobError as exc:
            refusal = str(exc)
        else:
            model_admin.log_change(request, job, operation.done)
            done.append(str(job))
            continue
        message = f"{operation.label}: {job} was not changed: {refusal}"
        model_admin.message_user(request, message, messages.ERROR)
    if done:
        note = " The runs appear in the history." if name.startswith("run_now") else ""
        text = f"{operation.done}: {', '.join(done)}.{note}"
        model_admin.message_user(request, text, messages.SUCCESS)


def _action(name: str) -> Callable[..., None]:
    operation = OPERATIONS[name]

    def action(model_admin: Any, request: HttpRequest, queryset: Any) -> None:
        apply(model_admin, request, name, queryset)

    action.__name__ = name
    return admin.action(description=f"{operation.label} (selected jobs)", permissions=["change"])(
        action
    )


run_now = _action("run_now")
run_now_skip_next = _action("run_now_skip_next")
pause = _action("pause")
resume = _action("resume")
