"""The ``CLOCKWORK`` settings dict, parsed into one typed, frozen object.

This is the only module that reads ``django.conf.settings``. Nothing is read at
import time: :func:`get_conf` parses on first use and is reset when a test
changes a setting (``setting_changed``).
"""

from __future__ import annotations

import difflib
import functools
import math
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

#: Every key of ``settings.CLOCKWORK`` with its default. The README's settings
#: table is checked against this dict by ``tests/test_docs.py``.
DEFAULTS: dict[str, Any] = {
    "DATABASE": "default",
    "POLL_INTERVAL": 1.0,
    "CLAIM_BATCH_SIZE": 500,
    "MAX_WORKERS": 10,
    "TIMEZONE": None,
    "JOB_DEFAULTS": {"misfire_grace_time": 60, "coalesce": True, "max_instances": 1},
    "RETRY_INTERVAL": 5.0,
    "SHUTDOWN_TIMEOUT": 30.0,
    "LISTENERS": [],
    "HEARTBEAT_INTERVAL": 2.0,
    "NODE_TIMEOUT": 10.0,
    "NODE_RETENTION": 86400.0,
    "ALLOWED_FUNCTIONS": [],
    "HISTORY_MAX_AGE": 2592000.0,
    "HISTORY_MAX_PER_JOB": 10000,
    "FINISHED_JOB_RETENTION": 604800.0,
    "PRUNE_INTERVAL": 600.0,
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
    max_workers: int = 10
    timezone: str = "UTC"
    job_defaults: JobDefaults = field(default_factory=JobDefaults)
    retry_interval: float = 5.0
    shutdown_timeout: float = 30.0
    listeners: tuple[str, ...] = ()
    heartbeat_interval: float = 2.0
    node_timeout: float = 10.0
    node_retention: float = 86400.0
    #: Module prefixes and exact ``"module:qualname"`` references jobs may run besides the
    #: project's installed apps; ``"*"`` allows every module.
    allowed_functions: tuple[str, ...] = ()
    history_max_age: float | None = 2592000.0
    history_max_per_job: int | None = 10000
    finished_job_retention: float | None = 604800.0
    prune_interval: float = 600.0

    def listener_callables(self) -> list[Callable[..., Any]]:
        return [import_string(path) for path in self.listeners]


@dataclass(frozen=True)
class Problem:
    """One misconfiguration, reported by a system check with ``id``."""

    id: str
    msg: str
    hint: str


def _positive_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _optional(valid: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or valid(value)


_VALIDATORS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "DATABASE": (lambda v: isinstance(v, str) and bool(v), "a database alias (str)"),
    "POLL_INTERVAL": (_positive_number, "a number of seconds > 0"),
    "CLAIM_BATCH_SIZE": (_positive_int, "an integer > 0"),
    "MAX_WORKERS": (_positive_int, "an integer > 0"),
    "TIMEZONE": (lambda v: v is None or isinstance(v, str), "a time zone name or None"),
    "JOB_DEFAULTS": (lambda v: isinstance(v, Mapping), "a dict"),
    "RETRY_INTERVAL": (_positive_number, "a number of seconds > 0"),
    "SHUTDOWN_TIMEOUT": (
        lambda v: _positive_number(v) or v == 0,
        "a number of seconds >= 0",
    ),
    "LISTENERS": (
        lambda v: isinstance(v, (list, tuple)) and all(isinstance(p, str) for p in v),
        "a list of dotted paths (str)",
    ),
    "HEARTBEAT_INTERVAL": (_positive_number, "a number of seconds > 0"),
    "NODE_TIMEOUT": (_positive_number, "a number of seconds > 0"),
    "NODE_RETENTION": (_positive_number, "a number of seconds > 0"),
    "ALLOWED_FUNCTIONS": (
        lambda v: isinstance(v, (list, tuple)) and all(isinstance(p, str) for p in v),
        "a list of module prefixes or 'module:qualname' references (str)",
    ),
    "HISTORY_MAX_AGE": (_optional(_positive_number), "a number of seconds > 0 or None"),
    "HISTORY_MAX_PER_JOB": (_optional(_positive_int), "an integer > 0 or None"),
    "FINISHED_JOB_RETENTION": (_optional(_positive_number), "a number of seconds > 0 or None"),
    "PRUNE_INTERVAL": (_positive_number, "a number of seconds > 0"),
}


@dataclass(frozen=True)
class Bound:
    """A sane limit on a well-typed number: ``minimum`` or ``maximum``, and why."""

    id: str
    minimum: float | None = None
    maximum: float | None = None
    why: str = ""


#: The system-check bounds of numeric settings (README: "System checks").
BOUNDS: dict[str, Bound] = {
    "POLL_INTERVAL": Bound("clockwork.E040", 0.05, None, "A shorter poll spins idle schedulers."),
    "MAX_WORKERS": Bound(
        "clockwork.E041",
        None,
        256,
        "Each worker thread holds a database connection; run more "
        "scheduler processes, or hand heavy work to a task queue.",
    ),
    "CLAIM_BATCH_SIZE": Bound(
        "clockwork.E042",
        None,
        10_000,
        "A claim locks its rows in one transaction; the next pass follows at once.",
    ),
    "HEARTBEAT_INTERVAL": Bound("clockwork.E043", 0.1, None, "Every heartbeat is a write."),
    "NODE_TIMEOUT": Bound(
        "clockwork.E044",
        1.0,
        None,
        "A shorter timeout declares busy schedulers dead and abandons their runs.",
    ),
    "RETRY_INTERVAL": Bound("clockwork.E045", 0.1, None, "A shorter retry hammers a database."),
}


def _raw() -> Any:
    return getattr(settings, "CLOCKWORK", {})


def find_problems(raw: Any = None) -> list[Problem]:
    """Every problem with ``raw`` (default: ``settings.CLOCKWORK``), all in one round.

    A key whose value has the wrong type gets its E003 and nothing more; every key
    whose type is right is checked for meaning (E004, E006-E009, E030, E040-E045) whatever
    the others hold.
    """
    raw = _raw() if raw is None else raw
    if not isinstance(raw, Mapping):
        problems = [
            Problem(
                "clockwork.E001",
                f"CLOCKWORK must be a dict, not {type(raw).__name__}.",
                "Set CLOCKWORK = {...} in your settings, or remove it to use the defaults.",
            )
        ]
    else:
        problems = [_unknown_key(key) for key in raw if key not in DEFAULTS]
        problems += [_type_problem(key, raw[key]) for key in _ill_typed(raw)]
        problems += _semantic_problems(_well_typed(raw))
    if not getattr(settings, "USE_TZ", False):
        problems.append(
            Problem(
                "clockwork.E005",
                "django-clockwork needs USE_TZ = True.",
                "Scheduled times are stored as aware UTC datetimes; set USE_TZ = True.",
            )
        )
    return problems


def _ill_typed(raw: Mapping[str, Any]) -> list[str]:
    return [key for key, (valid, _) in _VALIDATORS.items() if key in raw and not valid(raw[key])]


def _well_typed(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The defaults, overridden by every known key of ``raw`` whose value has the right type."""
    bad = set(_ill_typed(raw))
    return {key: raw[key] if key in raw and key not in bad else DEFAULTS[key] for key in DEFAULTS}


def _type_problem(key: str, value: Any) -> Problem:
    return Problem(
        "clockwork.E003",
        f"CLOCKWORK[{key!r}] must be {_VALIDATORS[key][1]}, not {value!r}.",
        f"Fix the value, or remove the key to use the default ({DEFAULTS[key]!r}).",
    )


def _unknown_key(key: Any) -> Problem:
    hint = _did_you_mean(str(key), DEFAULTS) or f"Known keys: {', '.join(DEFAULTS)}."
    return Problem("clockwork.E002", f"Unknown key CLOCKWORK[{key!r}].", hint)


def _did_you_mean(key: str, known: Iterable[str]) -> str | None:
    """``"Did you mean 'POLL_INTERVAL'?"`` for a close key, whatever its case; else None."""
    by_folded = {name.casefold(): name for name in known}
    close = difflib.get_close_matches(key.casefold(), by_folded, n=1)
    return f"Did you mean {by_folded[close[0]]!r}?" if close else None


def _semantic_problems(values: Mapping[str, Any]) -> list[Problem]:
    """Problems of meaning in ``values``: every key present, each of the right type."""
    problems: list[Problem] = []
    alias = values["DATABASE"]
    if alias not in settings.DATABASES:
        problems.append(
            Problem(
                "clockwork.E004",
                f"CLOCKWORK['DATABASE'] names {alias!r}, which is not in DATABASES.",
                f"Use one of: {', '.join(settings.DATABASES)}.",
            )
        )
    tz_name = values["TIMEZONE"]
    if tz_name is not None and not _is_zone(tz_name):
        problems.append(
            Problem(
                "clockwork.E006",
                f"CLOCKWORK['TIMEZONE'] is not a known time zone: {tz_name!r}.",
                "Use an IANA name such as 'Europe/Paris' or 'UTC'.",
            )
        )
    heartbeat, timeout = values["HEARTBEAT_INTERVAL"], values["NODE_TIMEOUT"]
    if timeout < 2 * heartbeat:
        problems.append(
            Problem(
                "clockwork.E009",
                f"CLOCKWORK['NODE_TIMEOUT'] ({timeout}s) must be at least twice "
                f"HEARTBEAT_INTERVAL ({heartbeat}s).",
                "Otherwise one late heartbeat makes a live scheduler look dead and its "
                "running jobs get marked abandoned. Raise NODE_TIMEOUT.",
            )
        )
    problems += [
        p for key, bound in BOUNDS.items() if (p := _bound_problem(key, values[key], bound))
    ]
    problems += _job_default_problems(values["JOB_DEFAULTS"])
    problems += [p for path in values["LISTENERS"] if (p := _listener_problem(path))]
    problems += [p for entry in values["ALLOWED_FUNCTIONS"] if (p := _allowed_problem(entry))]
    return problems


def _allowed_problem(entry: str) -> Problem | None:
    """E030 for an ``ALLOWED_FUNCTIONS`` entry that is not ``*``, a module or a reference."""
    if entry == "*":
        return None
    module, colon, qualname = entry.partition(":")
    names = module.split(".") + (qualname.split(".") if colon else [])
    if all(name.isidentifier() and not name.startswith("_") for name in names):
        return None
    return Problem(
        "clockwork.E030",
        f"CLOCKWORK['ALLOWED_FUNCTIONS'] entry {entry!r} is not a module path or a "
        "'module:qualname' reference of public names.",
        "Write a module prefix ('myapp.tasks'), a reference ('myapp.tasks:send_report') or "
        "'*'; names starting with '_' are never allowed.",
    )


def _bound_problem(key: str, value: float, bound: Bound) -> Problem | None:
    if bound.minimum is not None and value < bound.minimum:
        limit = f"at least {bound.minimum:g}"
    elif bound.maximum is not None and value > bound.maximum:
        limit = f"at most {bound.maximum:g}"
    else:
        return None
    return Problem(
        bound.id,
        f"CLOCKWORK[{key!r}] is {value!r}; it must be {limit}.",
        f"{bound.why} Use a value {limit}, or remove the key for the default ({DEFAULTS[key]!r}).",
    )


def _listener_problem(path: str) -> Problem | None:
    hint = "Give the dotted path of a callable that takes one APScheduler event."
    try:
        listener = import_string(path)
    except ImportError as exc:
        return Problem(
            "clockwork.E008",
            f"CLOCKWORK['LISTENERS'] entry {path!r} cannot be imported: {exc}",
            hint,
        )
    if not callable(listener):
        return Problem(
            "clockwork.E008", f"CLOCKWORK['LISTENERS'] entry {path!r} is not callable.", hint
        )
    return None


def _job_default_problems(job_defaults: Mapping[str, Any]) -> list[Problem]:
    problems = []
    for key in job_defaults:
        if key not in JOB_DEFAULT_KEYS:
            problems.append(
                Problem(
                    "clockwork.E007",
                    f"Unknown key CLOCKWORK['JOB_DEFAULTS'][{key!r}].",
                    _did_you_mean(str(key), JOB_DEFAULT_KEYS)
                    or f"Known keys: {', '.join(sorted(JOB_DEFAULT_KEYS))}.",
                )
            )
    grace = job_defaults.get("misfire_grace_time", 60)
    if grace is not None and not _positive_int(grace):
        problems.append(_job_default_problem("misfire_grace_time", grace, "an integer > 0 or None"))
    if not isinstance(job_defaults.get("coalesce", True), bool):
        problems.append(_job_default_problem("coalesce", job_defaults["coalesce"], "a bool"))
    if not _positive_int(job_defaults.get("max_instances", 1)):
        problems.append(
            _job_default_problem("max_instances", job_defaults["max_instances"], "an integer > 0")
        )
    return problems


def _job_default_problem(key: str, value: Any, expected: str) -> Problem:
    return Problem(
        "clockwork.E007",
        f"CLOCKWORK['JOB_DEFAULTS'][{key!r}] must be {expected}, not {value!r}.",
        "Fix the value, or remove the key to use the default.",
    )


def _is_zone(name: str) -> bool:
    if name == "UTC":
        return True
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


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
        max_workers=merged["MAX_WORKERS"],
        timezone=merged["TIMEZONE"] or settings.TIME_ZONE or "UTC",
        job_defaults=JobDefaults(**{**DEFAULTS["JOB_DEFAULTS"], **merged["JOB_DEFAULTS"]}),
        retry_interval=float(merged["RETRY_INTERVAL"]),
        shutdown_timeout=float(merged["SHUTDOWN_TIMEOUT"]),
        listeners=tuple(merged["LISTENERS"]),
        heartbeat_interval=float(merged["HEARTBEAT_INTERVAL"]),
        node_timeout=float(merged["NODE_TIMEOUT"]),
        node_retention=float(merged["NODE_RETENTION"]),
        allowed_functions=tuple(merged["ALLOWED_FUNCTIONS"]),
        history_max_age=_optional_float(merged["HISTORY_MAX_AGE"]),
        history_max_per_job=merged["HISTORY_MAX_PER_JOB"],
        finished_job_retention=_optional_float(merged["FINISHED_JOB_RETENTION"]),
        prune_interval=float(merged["PRUNE_INTERVAL"]),
    )


def _optional_float(value: float | None) -> float | None:
    return None if value is None else float(value)


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting in {"CLOCKWORK", "USE_TZ", "TIME_ZONE", "DATABASES"}:
        get_conf.cache_clear()
