"""The one boundary to Django's tasks framework, chosen once, at import time.

Django 6.0 and later ship it as ``django.tasks``; on Django 5.2 the ``django-tasks`` package
backports it as ``django_tasks``. Both have the same public API (``Task``, ``task_backends``,
``TaskResult``, the ``task_started`` / ``task_finished`` signals), so everything else in this
package goes through the names below and never imports either framework itself. Without
either, :data:`FRAMEWORK` is None and :func:`require` says what to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


def _first_importable(*names: str) -> ModuleType | None:
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


#: ``django.tasks`` (Django 6+) or ``django_tasks`` (the backport), or None.
FRAMEWORK = _first_importable("django.tasks", "django_tasks")
#: The framework's package name, as its modules are named ("django.tasks" or "django_tasks").
NAME = FRAMEWORK.__name__ if FRAMEWORK is not None else ""


class TasksUnavailableError(ImportError):
    """Neither ``django.tasks`` nor the ``django-tasks`` backport can be imported."""

    def __str__(self) -> str:
        return (
            "A job whose target is a Task needs Django's tasks framework: Django 6.0 or later "
            "(django.tasks), or on Django 5.2 the django-tasks package (pip install "
            "django-tasks, and add 'django_tasks' to INSTALLED_APPS)."
        )


def require() -> ModuleType:
    """The framework's package, or :class:`TasksUnavailableError`."""
    if FRAMEWORK is None:
        raise TasksUnavailableError()
    return FRAMEWORK


def submodule(name: str) -> ModuleType:
    """A module of the framework: ``"base"``, ``"exceptions"``, ``"signals"``."""
    return importlib.import_module(f"{require().__name__}.{name}")


def task_class() -> type[Any]:
    """The framework's ``Task`` dataclass."""
    cls: type[Any] = submodule("base").Task
    return cls


def is_task(obj: Any) -> bool:
    """Whether ``obj`` is a ``Task`` (False when there is no framework)."""
    return FRAMEWORK is not None and isinstance(obj, task_class())


def backend(alias: str) -> Any:
    """The task backend configured as ``alias`` in ``settings.TASKS``; ``LookupError`` if
    there is none (the framework's own error is an ``ImproperlyConfigured``)."""
    backends = require().task_backends
    if alias not in backends.settings:
        raise LookupError(
            f"no task backend {alias!r} in settings.TASKS (it has {sorted(backends.settings)})"
        )
    return backends[alias]


def invalid_task_error() -> type[Exception]:
    """The framework's ``InvalidTask`` (Django) or ``InvalidTaskError`` (the backport)."""
    exceptions = submodule("exceptions")
    cls: type[Exception] = getattr(exceptions, "InvalidTask", None) or exceptions.InvalidTaskError
    return cls


def normalize_json(value: Any) -> Any:
    """Arguments as the framework stores them (tuples become lists; ``TypeError`` /
    ``ValueError`` for what JSON cannot hold)."""
    try:
        normalize: Any = importlib.import_module("django.utils.json").normalize_json
    except (ImportError, AttributeError):  # Django 5.2: the backport has its own
        normalize = submodule("utils").normalize_json
    return normalize(value)


def default_priority() -> int:
    value: int = submodule("base").DEFAULT_TASK_PRIORITY
    return value


def priority_range() -> tuple[int, int]:
    base = submodule("base")
    return (base.TASK_MIN_PRIORITY, base.TASK_MAX_PRIORITY)


def signal(name: str) -> Any:
    """``task_started`` or ``task_finished`` of the framework."""
    return getattr(submodule("signals"), name)
