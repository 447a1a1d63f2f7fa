"""A stored trigger as the job list shows it: in words, as its raw expression, its zone."""

from __future__ import annotations

from typing import Any

from django_clockwork.serialization import CRON_FIELDS

#: The cron fields in crontab order (APScheduler's seconds first), then the rarer ones.
_CRON_ORDER = ("second", "minute", "hour", "day", "month", "day_of_week")


def raw_expression(trigger: Any) -> str:
    """``cron 0 30 9 * * mon-fri``, ``interval 0:05:00``, ``date 2030-06-01T09:00:00+02:00``."""
    if not isinstance(trigger, dict):
        return "?"
    kind = trigger.get("type")
    if kind == "cron":
        fields = [str(trigger.get(name) or "*") for name in _CRON_ORDER]
        extra = [
            f"{name}={trigger[name]}"
            for name in CRON_FIELDS
            if name not in _CRON_ORDER and trigger.get(name) not in (None, "*")
        ]
        return " ".join(["cron", *fields, *extra])
    if kind == "interval":
        units = ("weeks", "days", "hours", "minutes", "seconds")
        return "interval " + " ".join(
            f"{trigger[unit]:g}{unit[0] if unit != 'minutes' else 'min'}"
            for unit in units
            if trigger.get(unit)
        )
    if kind == "date":
        return f"date {trigger.get('run_date')}"
    if kind == "calendarinterval":
        every = " ".join(
            f"{trigger[unit]}{unit[0]}"
            for unit in ("years", "months", "weeks", "days")
            if trigger.get(unit)
        )
        at = ":".join(f"{trigger.get(unit) or 0:02}" for unit in ("hour", "minute", "second"))
        return f"calendarinterval {every} at {at}"
    if kind in ("and", "or"):
        parts = [raw_expression(part) for part in trigger.get("triggers") or []]
        return f" {kind} ".join(f"({part})" for part in parts)
    return str(kind)


def zone(trigger: Any) -> str:
    return str(trigger.get("timezone") or "") if isinstance(trigger, dict) else ""
