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

from django_clockwork.crontab import crontab_fields
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

    ``None`` means ``"date"`` (run once, now); ``crontab="0 9 * * 1-5"`` (classic crontab
    text, 0 and 7 = Sunday) means a cron trigger. Raises :class:`InvalidJobError` saying what
    is wrong with the arguments.
    """
    if "crontab" in trigger_args:
        return _from_crontab(trigger, dict(trigger_args), timezone)
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


#: What may accompany ``crontab=``: the cron trigger's arguments that are not fields.
CRONTAB_COMPANIONS = frozenset({"timezone", "start_date", "end_date", "jitter"})


def _from_crontab(trigger: Any, trigger_args: dict[str, Any], timezone: str) -> BaseTrigger:
    """A cron trigger from classic crontab text (``crontab="0 9 * * 1-5"``), 0/7 = Sunday."""
    if trigger not in (None, "cron"):
        raise InvalidJobError(
            f"crontab= makes a cron trigger; it cannot be given with trigger {trigger!r}"
        )
    text = trigger_args.pop("crontab")
    extra = set(trigger_args) - CRONTAB_COMPANIONS
    if extra:
        raise InvalidJobError(
            f"crontab= gives every cron field; {sorted(extra)} cannot be given with it "
            f"(allowed with it: {', '.join(sorted(CRONTAB_COMPANIONS))})"
        )
    arguments = {"timezone": timezone, **trigger_args, **crontab_fields(text)}
    try:
        return CronTrigger(**arguments)
    except (TypeError, ValueError, LookupError) as exc:
        raise InvalidJobError(f"Invalid crontab {text!r}: {exc}") from exc
