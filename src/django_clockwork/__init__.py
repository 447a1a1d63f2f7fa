"""django-clockwork: APScheduler for Django, safe for any number of schedulers.

The public API is importable from here; it is loaded lazily so that this
package can sit in ``INSTALLED_APPS`` before the app registry is ready.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

__all__ = [
    "ClockworkExecutor",
    "DjangoJobStore",
    "ExecutionContext",
    "SerializationError",
    "create_scheduler",
    "current_execution",
    "declare_job",
    "job_function",
    "register_function",
    "scheduled_job",
]

_HOMES = {
    "ClockworkExecutor": "django_clockwork.executor",
    "ExecutionContext": "django_clockwork.executor",
    "current_execution": "django_clockwork.executor",
    "DjangoJobStore": "django_clockwork.jobstore",
    "SerializationError": "django_clockwork.serialization",
    "create_scheduler": "django_clockwork.runtime",
    "declare_job": "django_clockwork.declarations",
    "job_function": "django_clockwork.declarations",
    "register_function": "django_clockwork.declarations",
    "scheduled_job": "django_clockwork.declarations",
}

if TYPE_CHECKING:
    from django_clockwork.declarations import (
        declare_job,
        job_function,
        register_function,
        scheduled_job,
    )
    from django_clockwork.executor import ClockworkExecutor, ExecutionContext, current_execution
    from django_clockwork.jobstore import DjangoJobStore
    from django_clockwork.runtime import create_scheduler
    from django_clockwork.serialization import SerializationError


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'django_clockwork' has no attribute {name!r}")
