"""How django-clockwork's log lines render what they print.

The rule for times: every time in our log lines is shown in the scheduler's time zone
(``CLOCKWORK["TIMEZONE"]``, else ``TIME_ZONE``) as ``2026-03-29 03:30:00 CEST``. That is
APScheduler's own format (its job lines say ``next run at: 2026-03-29 03:30:00 CEST``), so a
run time reads the same in its lines and ours. The abbreviation tells the two instants of a
fall-back fold apart (``02:30:00 CEST``, then ``02:30:00 CET``); a zone without an
abbreviation shows its offset (``-03``). The time stamp at the start of each line that
``runscheduler`` writes (:class:`ZoneFormatter`) follows the same zone, and ``runscheduler``
names the zone when it starts.

The rule for user text: job names, ids, function references, triggers, host names read back
from the database and exception messages are data that anyone who can write a row chose.
They are shown through :func:`user`, which escapes control characters (a line break shows
as a backslash and ``n``), so that no such text can end a log line and forge the next one.
"""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Callable, Iterable
from datetime import datetime, timezone, tzinfo
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured

from django_clockwork.conf import get_conf

TIME_FORMAT = "%Y-%m-%d %H:%M:%S %Z"
#: What starts every line of a traceback in ``runscheduler``'s output.
TRACEBACK_INDENT = "    "


class LoggedJob(Protocol):
    """What :func:`format_job` reads from an APScheduler ``Job`` (its public attributes)."""

    name: str
    trigger: Any
    next_run_time: datetime | None


def scheduler_zone() -> tzinfo:
    """The zone log lines use: the scheduler's (``CLOCKWORK["TIMEZONE"]``, else ``TIME_ZONE``).

    With invalid settings (which stop every scheduler from starting, so only a stray log line
    can meet them) it is UTC, and the rendered times say so.
    """
    try:
        name = get_conf().timezone
    except ImproperlyConfigured:
        return timezone.utc
    return timezone.utc if name == "UTC" else zoneinfo.ZoneInfo(name)


def format_time(moment: datetime | None, zone: tzinfo | None = None) -> str:
    """``moment`` in ``zone`` (default: :func:`scheduler_zone`): ``2026-03-29 03:30:00 CEST``.

    ``None`` gives ``"None"``; a naive datetime (never stored by us) is shown as it is,
    marked ``(naive)``, since the zone it meant is unknown.
    """
    if moment is None:
        return "None"
    if moment.tzinfo is None or moment.utcoffset() is None:
        return f"{moment:%Y-%m-%d %H:%M:%S} (naive)"
    return moment.astimezone(zone or scheduler_zone()).strftime(TIME_FORMAT)


def format_times(moments: Iterable[datetime | None], zone: tzinfo | None = None) -> str:
    """Several times, comma-separated, each as :func:`format_time` renders it."""
    zone = zone or scheduler_zone()
    return ", ".join(format_time(moment, zone) for moment in moments)


def user(text: object) -> str:
    """``str(text)`` safe for one log line: every character that is not printable (line
    breaks, tabs, ANSI escapes, NUL, Unicode line separators) is escaped as ``repr`` escapes
    it (``"a\\nb"`` gives ``a\\nb``). Printable text, backslashes included, is left as it is.
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


class Lazy:
    """Text made only when it is shown: ``str()`` calls ``func(*args)``. For log arguments on
    a hot path (a run's "Running job" line costs nothing while INFO is off)."""

    __slots__ = ("_args", "_func")

    def __init__(self, func: Callable[..., str], *args: Any) -> None:
        self._func = func
        self._args = args

    def __str__(self) -> str:
        return self._func(*self._args)

    def __repr__(self) -> str:
        return repr(str(self))


def format_job(job: LoggedJob, zone: tzinfo | None = None) -> str:
    """A job as APScheduler's ``str(job)`` shows it, with its next run time in ``zone``:
    ``digest (trigger: interval[0:15:00], next run at: 2026-03-29 03:30:00 CEST)``.
    The name and the trigger are user text (:func:`user`)."""
    when = "paused" if job.next_run_time is None else format_time(job.next_run_time, zone)
    return f"{user(job.name)} (trigger: {user(job.trigger)}, next run at: {when})"


class ZoneFormatter(logging.Formatter):
    """A ``logging.Formatter`` whose ``%(asctime)s`` is in the scheduler's zone:
    ``2026-03-29 03:30:00,123 CEST``.

    Every line of a traceback is indented (:data:`TRACEBACK_INDENT`), so that an exception
    message with line breaks cannot start a line that reads like a record of its own.
    """

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, scheduler_zone())
        if datefmt:
            return moment.strftime(datefmt)
        return f"{moment:%Y-%m-%d %H:%M:%S},{int(record.msecs):03d} {moment:%Z}"

    def formatException(self, ei: Any) -> str:
        text = super().formatException(ei)
        return "\n".join(TRACEBACK_INDENT + line for line in text.splitlines())
