"""Triggers from what callers write: an alias and its arguments, or a trigger instance.

The same rules as APScheduler's ``add_job(func, "cron", hour=3)``, without a scheduler:
a trigger created without a time zone gets the scheduler's (``CLOCKWORK['TIMEZONE']``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from django_clockwork.exceptions import InvalidJobError
from django_clockwork.serialization import trigger_from_json, trigger_to_json

#: The trigger aliases ``add_job`` and ``reschedule_job`` accept.
ALIASES: dict[str, type[BaseTrigger]] = {
    "date": DateTrigger,
    "interval": IntervalTrigger,
    "cron": CronTrigger,
    "calendarinterval": CalendarIntervalTrigger,
}


def build_trigger(trigger: Any, trigger_args: Mapping[str, Any], timezone: str) -> BaseTrigger:
    """A trigger from an alias (``"cron"``) and its arguments, or a trigger instance as is.

    ``None`` means ``"date"`` (run once, now). Raises :class:`InvalidJobError` saying what
    is wrong with the arguments.
    """
    if isinstance(trigger, BaseTrigger):
        if trigger_args:
            raise InvalidJobError(
                f"Trigger arguments {sorted(trigger_args)} were given with a trigger instance "
                f"({trigger!r}); pass either an alias with arguments or an instance."
            )
        if isinstance(trigger, (AndTrigger, OrTrigger)):
            # Stored and loaded as JSON, where an ``and`` is bounded (aps.BoundedAndTrigger):
            # its first fire time is computed by the same class here.
            return trigger_from_json(trigger_to_json(trigger))
        return trigger
    alias = "date" if trigger is None else trigger
    cls = ALIASES.get(alias) if isinstance(alias, str) else None
    if cls is None:
        raise InvalidJobError(
            f"Unknown trigger {trigger!r}: use one of {', '.join(map(repr, ALIASES))} with its "
            "arguments, or a trigger instance."
        )
    arguments = {"timezone": timezone, **trigger_args}
    try:
        return cls(**arguments)
    except (TypeError, ValueError, LookupError) as exc:
        raise InvalidJobError(f"Invalid {alias} trigger {dict(trigger_args)!r}: {exc}") from exc
