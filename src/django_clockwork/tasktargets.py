"""Jobs whose target is a Task of Django's tasks framework: checked, stored, enqueued.

A job row names a task by the framework's own path (``Task.module_path``,
``"myapp.tasks.send_digest"``) in ``Job.task``, with ``Job.task_options`` (``backend``,
``queue_name``, ``priority``, ``run_after``: seconds after the run time). A Task is not
callable, so the row's ``func`` names :func:`enqueue_task`, a function of ours the scheduler
never calls for such a row: when the job fires it enqueues the task on its backend instead
(:func:`enqueue`) and the ledger records ``enqueued`` with the backend and the result id.

A task path is data, like a ``func``: it is checked by ``allowed`` before its module is
imported, and what it names must be a ``Task`` defined where the path says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django_clockwork import allowed, taskframework
from django_clockwork.exceptions import FunctionNotAllowedError, InvalidJobError

#: The options a task target may have.
OPTIONS = ("backend", "queue_name", "priority", "run_after")


def enqueue_task(*args: Any, **kwargs: Any) -> None:
    """What the ``func`` of a task job names: the scheduler enqueues the job's task in its
    place (see the module's docstring), so calling this is a mistake."""
    raise RuntimeError(
        "enqueue_task stands for a job's Task in its row; only a ClockworkExecutor runs such "
        "a job (it enqueues the task named by the row's 'task' column)."
    )


#: ``func`` of every task job.
ENQUEUER = f"{enqueue_task.__module__}:{enqueue_task.__qualname__}"


@dataclass(frozen=True)
class TaskTarget:
    """A job's task: its path and the options it is enqueued with."""

    path: str
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def backend_alias(self) -> str:
        alias: str = self.options.get("backend") or self.task().backend
        return alias

    def task(self) -> Any:
        return resolve(self.path)

    def configured(self, run_time: datetime | None = None, earliest: datetime | None = None) -> Any:
        """The Task with this target's options (``run_after`` from ``run_time``, and not
        before ``earliest``: a run enqueued ahead of its time)."""
        changes = {
            key: self.options[key]
            for key in ("backend", "queue_name", "priority")
            if self.options.get(key) is not None
        }
        delay = self.options.get("run_after")
        if delay is not None:
            changes["run_after"] = (run_time or _now()) + timedelta(seconds=delay)
        if earliest is not None and changes.get("run_after", earliest) <= earliest:
            changes["run_after"] = earliest
        return self.task().using(**changes)

    @classmethod
    def of_row(cls, task: str, options: Any) -> TaskTarget | None:
        """The target a job row stores, or None for a job that runs a function."""
        if not task:
            return None
        return cls(task, dict(options) if isinstance(options, Mapping) else {})


def task_of(job: Any) -> TaskTarget | None:
    """The target the job store attached to a job it loaded from a task job's row."""
    target: TaskTarget | None = getattr(job, "_clockwork_task", None)
    return target


def reference(path: str) -> str:
    """``"module.name"`` (a task path) as an ``allowed`` reference ``"module:name"``."""
    module, dot, name = path.rpartition(".")
    if not dot or not module or not name or ":" in path:
        raise InvalidJobError(
            f"Task path {path!r}: expected the task's module path, 'package.module.task_name'."
        )
    return f"{module}:{name}"


def resolve(path: str) -> Any:
    """The Task ``path`` names, checked as text before its module is imported; raises
    ``FunctionNotAllowedError``, ``LookupError``, ``TypeError`` (not a Task) or
    ``TasksUnavailableError``."""
    taskframework.require()
    ref = reference(path)
    allowed.check_text(ref)
    module_name, _, name = ref.partition(":")
    try:
        obj = allowed.import_attribute(module_name, name)
    except AttributeError:
        raise LookupError(f"module {module_name!r} has no {name!r}") from None
    if not taskframework.is_task(obj):
        raise TypeError(
            f"{path!r} names {obj!r}, which is not a Task (decorate the function with @task)"
        )
    func = obj.func
    defined = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', '?')}"
    if defined != path:
        raise FunctionNotAllowedError(
            f"The task path {path!r} is not allowed: it names a Task of {defined!r}, which is "
            "defined elsewhere. Name the task where it is defined."
        )
    return obj


def path_of(task: Any) -> str:
    """The path of a Task object (refused if it is not one)."""
    if not taskframework.is_task(task):
        raise InvalidJobError(f"{task!r} is not a Task of Django's tasks framework.")
    return f"{task.func.__module__}.{task.func.__qualname__}"


def function_of(task: Any) -> Callable[..., Any]:
    """The function a Task wraps."""
    func: Callable[..., Any] = task.func
    return func


def check(task: Any, options: Mapping[str, Any] | None, args: Any, kwargs: Any) -> TaskTarget:
    """A target from what a caller gives (a Task or its path, ``task_options``, the job's
    arguments), refused with an ``InvalidJobError`` that names the problem."""
    try:
        taskframework.require()
    except taskframework.TasksUnavailableError as exc:
        raise InvalidJobError(str(exc)) from None
    path = task if isinstance(task, str) else path_of(task)
    options = dict(options or {})
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise InvalidJobError(f"task_options {unknown} are unknown; a task job takes {OPTIONS}.")
    target = TaskTarget(path, options)
    try:
        found = target.task()
    except (FunctionNotAllowedError, InvalidJobError):
        raise
    except LookupError as exc:
        raise InvalidJobError(f"Task path {path!r} does not import: {exc}.") from None
    except TypeError as exc:
        raise InvalidJobError(f"Task path {exc}.") from None
    _check_options(path, found, options)
    _check_arguments(path, args, kwargs)
    return target


def _check_options(path: str, found: Any, options: dict[str, Any]) -> None:
    alias = options.get("backend") or found.backend
    if not isinstance(alias, str):
        raise InvalidJobError(f"task_options['backend'] must be a backend alias, not {alias!r}.")
    try:
        backend = taskframework.backend(alias)
    except LookupError as exc:
        raise InvalidJobError(f"Task {path!r}: {exc}.") from None
    queue = options.get("queue_name", found.queue_name)
    if backend.queues and queue not in backend.queues:
        raise InvalidJobError(
            f"Task {path!r}: queue {queue!r} is not one of backend {alias!r}'s queues "
            f"({sorted(backend.queues)})."
        )
    priority = options.get("priority")
    if priority is not None:
        low, high = taskframework.priority_range()
        if (
            not isinstance(priority, int)
            or isinstance(priority, bool)
            or not low <= priority <= high
        ):
            raise InvalidJobError(
                f"Task {path!r}: priority must be a whole number from {low} to {high}, not "
                f"{priority!r}."
            )
        if priority != taskframework.default_priority() and not backend.supports_priority:
            raise InvalidJobError(
                f"Task {path!r}: backend {alias!r} does not support priorities "
                f"({type(backend).__name__}.supports_priority is False)."
            )
    delay = options.get("run_after")
    if delay is not None:
        if not isinstance(delay, (int, float)) or isinstance(delay, bool) or delay < 0:
            raise InvalidJobError(
                f"Task {path!r}: run_after must be a number of seconds >= 0 after the run "
                f"time, not {delay!r}."
            )
        if not backend.supports_defer:
            raise InvalidJobError(
                f"Task {path!r}: backend {alias!r} cannot defer a task "
                f"({type(backend).__name__}.supports_defer is False); drop run_after."
            )
    try:
        backend.validate_task(TaskTarget(path, options).configured())
    except taskframework.invalid_task_error() as exc:
        raise InvalidJobError(f"Task {path!r} on backend {alias!r}: {exc}") from None


def _check_arguments(path: str, args: Any, kwargs: Any) -> None:
    """The arguments must survive the framework's JSON unchanged (a tuple is a list)."""
    plain = {"args": list(args or ()), "kwargs": dict(kwargs or {})}
    try:
        normalized = taskframework.normalize_json(plain)
    except (TypeError, ValueError) as exc:
        raise InvalidJobError(
            f"Task {path!r}: its arguments must be JSON the task backend accepts: {exc}."
        ) from None
    if normalized != plain:
        raise InvalidJobError(
            f"Task {path!r}: its arguments would reach the task changed ({plain!r} becomes "
            f"{normalized!r}); pass JSON values (str keys, lists, numbers, strings, None)."
        )


@dataclass(frozen=True)
class Enqueued:
    """What enqueueing a run handed to a backend."""

    backend: str
    result_id: str
    #: The framework's ``TaskResult`` (finished already where the backend runs it at once).
    result: Any = None


def enqueue(
    target: TaskTarget,
    args: Any,
    kwargs: Any,
    run_time: datetime,
    earliest: datetime | None = None,
) -> Enqueued:
    """Enqueue the target's task with the job's arguments; the backend's errors propagate."""
    task = target.configured(run_time, earliest)
    result = task.enqueue(*args, **kwargs)
    return Enqueued(backend=str(result.backend), result_id=str(result.id), result=result)


def enqueues_in(target: TaskTarget, database: str) -> bool:
    """Whether enqueueing the target writes to ``database`` and nothing else: its backend is
    django-tasks-db's ``DatabaseBackend`` and its results table is routed to ``database``.
    Such an enqueue can run inside the claim's transaction (exactly once per run time)."""
    try:
        backend = taskframework.backend(target.backend_alias)
    except (LookupError, ImportError):
        return False
    database_backend = _database_backend_class()
    if database_backend is None or not isinstance(backend, database_backend):
        return False
    from django.apps import apps
    from django.db import router

    if not apps.is_installed("django_tasks_db"):
        return False
    from django_tasks_db.models import DBTaskResult

    return bool(router.db_for_write(DBTaskResult) == database)


def _database_backend_class() -> type[Any] | None:
    try:
        from django_tasks_db import DatabaseBackend
    except (ImportError, ValueError):  # ValueError: on Django 5.2 without the backport
        return None
    found: type[Any] = DatabaseBackend
    return found


def _now() -> datetime:
    from django.utils import timezone

    return timezone.now()
