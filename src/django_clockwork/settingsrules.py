"""The rules a ``CLOCKWORK`` dict must follow: each key's type, bounds and meaning, and the
stable check id (``clockwork.E001``...) of every way to break them.

``conf`` hands in the dict and what it needs of the other settings (this module reads no
settings); ``checks`` reports the problems as system checks, ``conf.get_conf`` refuses to run
with any.
"""

from __future__ import annotations

import difflib
import math
import zoneinfo
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.module_loading import import_string

from django_clockwork.conf import DEFAULTS, JOB_DEFAULT_KEYS


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
    "CLAIM_AHEAD": (lambda v: _positive_number(v) or v == 0, "a number of seconds >= 0"),
    "MAX_WORKERS": (_positive_int, "an integer > 0"),
    "TIMEZONE": (lambda v: v is None or isinstance(v, str), "a time zone name or None"),
    "JOB_DEFAULTS": (lambda v: isinstance(v, Mapping), "a dict"),
    "RETRY_INTERVAL": (_positive_number, "a number of seconds > 0"),
    "RUN_NOW_EXPIRY": (_positive_number, "a number of seconds > 0"),
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
    "NODE_LOCKS": (lambda v: isinstance(v, bool), "True or False"),
    "DECLARED_JOBS": (lambda v: isinstance(v, bool), "True or False"),
    "ALLOWED_FUNCTIONS": (
        lambda v: isinstance(v, (list, tuple)) and all(isinstance(p, str) for p in v),
        "a list of module prefixes or 'module:qualname' references (str)",
    ),
    "HISTORY_MAX_AGE": (_optional(_positive_number), "a number of seconds > 0 or None"),
    "HISTORY_MAX_PER_JOB": (_optional(_positive_int), "an integer > 0 or None"),
    "FINISHED_JOB_RETENTION": (_optional(_positive_number), "a number of seconds > 0 or None"),
    "PRUNE_INTERVAL": (_positive_number, "a number of seconds > 0"),
    "LONG_RUNNING_AFTER": (_optional(_positive_number), "a number of seconds > 0 or None"),
    "NO_FREE_WORKER_AFTER": (_optional(_positive_number), "a number of seconds > 0 or None"),
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
    "LONG_RUNNING_AFTER": Bound(
        "clockwork.E046",
        0.1,
        None,
        "A shorter threshold warns about ordinary runs (and the watchdog checks at most 20 "
        "times a second).",
    ),
    "NO_FREE_WORKER_AFTER": Bound(
        "clockwork.E047",
        0.1,
        None,
        "A shorter threshold warns whenever a busy scheduler is briefly full.",
    ),
    "CLAIM_AHEAD": Bound(
        "clockwork.E049",
        None,
        5.0,
        "Runs are claimed this long before their time: a change made within it (a pause, "
        "a new schedule) is obeyed only from the run after.",
    ),
    "RUN_NOW_EXPIRY": Bound(
        "clockwork.E048",
        1.0,
        None,
        "A shorter expiry drops run-now requests before a scheduler's next poll.",
    ),
}


def find_problems(raw: Any, *, databases: Collection[str], use_tz: bool) -> list[Problem]:
    """Every problem with ``raw`` (the ``CLOCKWORK`` dict), all in one round.

    A key whose value has the wrong type gets its E003 and nothing more; every key
    whose type is right is checked for meaning (E004, E006-E009, E030, E040-E049) whatever
    the others hold.
    """
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
        problems += _semantic_problems(_well_typed(raw), databases)
    if not use_tz:
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


def _semantic_problems(values: Mapping[str, Any], databases: Collection[str]) -> list[Problem]:
    """Problems of meaning in ``values``: every key present, each of the right type."""
    problems: list[Problem] = []
    alias = values["DATABASE"]
    if alias not in databases:
        problems.append(
            Problem(
                "clockwork.E004",
                f"CLOCKWORK['DATABASE'] names {alias!r}, which is not in DATABASES.",
                f"Use one of: {', '.join(databases)}.",
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


def _bound_problem(key: str, value: float | None, bound: Bound) -> Problem | None:
    if value is None:  # an optional setting, turned off
        return None
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
