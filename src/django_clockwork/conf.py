"""The ``CLOCKWORK`` settings dict, parsed into one typed, frozen object.

This is the only module that reads ``django.conf.settings``. Nothing is read at
import time: :func:`get_conf` parses on first use and is reset when a test
changes a setting (``setting_changed``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from django_clockwork.settingsrules import Problem

#: Every key of ``settings.CLOCKWORK`` with its default. The README's settings
#: table is checked against this dict by ``tests/test_docs.py``.
DEFAULTS: dict[str, Any] = {
    "DATABASE": "default",
    "POLL_INTERVAL": 1.0,
    "CLAIM_BATCH_SIZE": 500,
    "CLAIM_AHEAD": 0.2,
    "MAX_WORKERS": 10,
    "TIMEZONE": None,
    "JOB_DEFAULTS": {"misfire_grace_time": 60, "coalesce": True, "max_instances": 1},
    "RETRY_INTERVAL": 5.0,
    "SHUTDOWN_TIMEOUT": 30.0,
    "LISTENERS": [],
    "HEARTBEAT_INTERVAL": 2.0,
    "NODE_TIMEOUT": 10.0,
    "NODE_RETENTION": 86400.0,
    "NODE_LOCKS": True,
    "DECLARED_JOBS": True,
    "RUN_NOW_EXPIRY": 600.0,
    "ALLOWED_FUNCTIONS": [],
    "HISTORY_MAX_AGE": 2592000.0,
    "HISTORY_MAX_PER_JOB": 10000,
    "FINISHED_JOB_RETENTION": 604800.0,
    "PRUNE_INTERVAL": 600.0,
    "LONG_RUNNING_AFTER": 600.0,
    "NO_FREE_WORKER_AFTER": 60.0,
}

JOB_DEFAULT_KEYS = frozenset(DEFAULTS["JOB_DEFAULTS"])


@dataclass(frozen=True)
class JobDefaults:
    misfire_grace_time: int | None = 60
    coalesce: bool = True
    max_instances: int = 1


@dataclass(frozen=True)
class Conf:
    """The parsed settings. Field docs are the README's settings table."""

    database: str = "default"
    poll_interval: float = 1.0
    claim_batch_size: int = 500
    claim_ahead: float = 0.2
    max_workers: int = 10
    timezone: str = "UTC"
    job_defaults: JobDefaults = field(default_factory=JobDefaults)
    retry_interval: float = 5.0
    shutdown_timeout: float = 30.0
    listeners: tuple[str, ...] = ()
    heartbeat_interval: float = 2.0
    node_timeout: float = 10.0
    node_retention: float = 86400.0
    #: Each node holds a session lock (PostgreSQL, MySQL/MariaDB) so peers see its death at once.
    node_locks: bool = True
    declared_jobs: bool = True
    run_now_expiry: float = 600.0
    #: Module prefixes and exact ``"module:qualname"`` references jobs may run besides the
    #: project's installed apps; ``"*"`` allows every module.
    allowed_functions: tuple[str, ...] = ()
    history_max_age: float | None = 2592000.0
    history_max_per_job: int | None = 10000
    finished_job_retention: float | None = 604800.0
    prune_interval: float = 600.0
    #: Seconds a run may execute before it is logged and noted as long running (None: never).
    long_running_after: float | None = 600.0
    #: Seconds with no free worker thread, while due runs wait, before that is logged (None: never).
    no_free_worker_after: float | None = 60.0

    def listener_callables(self) -> list[Callable[..., Any]]:
        return [import_string(path) for path in self.listeners]


def _raw() -> Any:
    return getattr(settings, "CLOCKWORK", {})


def find_problems(raw: Any = None) -> list[Problem]:
    """Every problem with ``raw`` (default: ``settings.CLOCKWORK``), all in one round."""
    from django_clockwork.settingsrules import find_problems as problems_in

    return problems_in(
        _raw() if raw is None else raw,
        databases=list(settings.DATABASES),
        use_tz=bool(getattr(settings, "USE_TZ", False)),
    )


@functools.cache
def get_conf() -> Conf:
    """The parsed settings; raises ImproperlyConfigured naming every problem if invalid."""
    raw = _raw()
    problems = find_problems(raw)
    if problems:
        raise ImproperlyConfigured(
            " ".join(f"{problem.msg} {problem.hint} ({problem.id})" for problem in problems)
        )
    merged = {**DEFAULTS, **raw}
    return Conf(
        database=merged["DATABASE"],
        poll_interval=float(merged["POLL_INTERVAL"]),
        claim_batch_size=merged["CLAIM_BATCH_SIZE"],
        claim_ahead=float(merged["CLAIM_AHEAD"]),
        max_workers=merged["MAX_WORKERS"],
        timezone=merged["TIMEZONE"] or settings.TIME_ZONE or "UTC",
        job_defaults=JobDefaults(**{**DEFAULTS["JOB_DEFAULTS"], **merged["JOB_DEFAULTS"]}),
        retry_interval=float(merged["RETRY_INTERVAL"]),
        shutdown_timeout=float(merged["SHUTDOWN_TIMEOUT"]),
        listeners=tuple(merged["LISTENERS"]),
        heartbeat_interval=float(merged["HEARTBEAT_INTERVAL"]),
        node_timeout=float(merged["NODE_TIMEOUT"]),
        node_retention=float(merged["NODE_RETENTION"]),
        node_locks=merged["NODE_LOCKS"],
        declared_jobs=merged["DECLARED_JOBS"],
        run_now_expiry=merged["RUN_NOW_EXPIRY"],
        allowed_functions=tuple(merged["ALLOWED_FUNCTIONS"]),
        history_max_age=_optional_float(merged["HISTORY_MAX_AGE"]),
        history_max_per_job=merged["HISTORY_MAX_PER_JOB"],
        finished_job_retention=_optional_float(merged["FINISHED_JOB_RETENTION"]),
        prune_interval=float(merged["PRUNE_INTERVAL"]),
        long_running_after=_optional_float(merged["LONG_RUNNING_AFTER"]),
        no_free_worker_after=_optional_float(merged["NO_FREE_WORKER_AFTER"]),
    )


def _optional_float(value: float | None) -> float | None:
    return None if value is None else float(value)


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting in {"CLOCKWORK", "USE_TZ", "TIME_ZONE", "DATABASES"}:
        get_conf.cache_clear()
