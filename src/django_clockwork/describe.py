"""Triggers in words: "At 09:00, Monday through Friday (Europe/Paris)", "Every 10 minutes".

Read from the stored JSON form (see :mod:`~django_clockwork.serialization`), so a description
says what APScheduler will do with the row, whatever wrote it. Cron fields are put into words by
the ``cron-descriptor`` package, given weekday *names* (APScheduler counts 0 as Monday,
cron-descriptor as Sunday: numbers would be read wrongly); what it cannot express (ISO weeks,
APScheduler's ``last fri``/``2nd mon`` days) is listed field by field instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cron_descriptor import ExpressionDescriptor, Options

from django_clockwork.crontab import WEEKDAYS, CronField, field_values, weekday_names
from django_clockwork.exceptions import InvalidJobError

#: APScheduler's day_of_week field: 0 is Monday.
_APS_WEEKDAY = CronField("day_of_week", "day of week", 0, 6, WEEKDAYS, 0)
_UNITS = (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def describe(data: Any) -> str:
    """A trigger's JSON form in words; never raises (an unreadable trigger says so)."""
    try:
        return _describe(data)
    except Exception as exc:  # a description must never break a page or a log line
        return f"unreadable trigger ({type(exc).__name__}: {exc})"


def _describe(data: Any) -> str:
    if not isinstance(data, dict):
        return "unreadable trigger"
    kind = data.get("type")
    if kind in ("and", "or"):
        parts = [_describe(part) for part in data.get("triggers") or []]
        joined = "; ".join(parts)
        text = f"When all of these agree: {joined}" if kind == "and" else f"Any of: {joined}"
        return text + _jitter(data)
    if kind == "date":
        return f"Once, at {_local(data.get('run_date'))} ({data.get('timezone', 'UTC')})"
    if kind == "interval":
        seconds = sum(float(data.get(f"{unit}s") or 0) * size for unit, size in _UNITS)
        return f"Every {_span(seconds)}" + _window(data) + _jitter(data)
    if kind == "cron":
        return f"{_cron(data)} ({data.get('timezone', 'UTC')})" + _window(data) + _jitter(data)
    if kind == "calendarinterval":
        units = [
            (unit, int(data.get(f"{unit}s") or 0)) for unit in ("year", "month", "week", "day")
        ]
        every = _join([_count(n, unit) for unit, n in units if n])
        at = f"{int(data.get('hour') or 0):02d}:{int(data.get('minute') or 0):02d}"
        at += f":{int(data.get('second') or 0):02d}"
        text = f"Every {every}, at {at} ({data.get('timezone', 'UTC')})"
        return text + _window(data) + _jitter(data)
    return f"unknown trigger type {kind!r}"


def _cron(data: dict[str, Any]) -> str:
    fields = {
        name: str(data.get(name, "*") if data.get(name) is not None else "*")
        for name in ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
    }
    plain = ", ".join(f"{name}={value}" for name, value in fields.items() if value != "*")
    if fields["day"] == "last":
        fields["day"] = "L"  # cron-descriptor's (and Quartz's) "last day of the month"
    if fields["week"] != "*" or any(c.isalpha() and c != "L" for c in fields["day"]):
        return f"Cron: {plain}"  # ISO weeks, "last fri", "2nd mon": no crontab form
    try:
        weekdays = weekday_names(field_values(_APS_WEEKDAY, fields["day_of_week"], ""))
    except InvalidJobError:
        return f"Cron: {plain}"
    expression = [
        fields["second"],
        fields["minute"],
        fields["hour"],
        fields["day"],
        fields["month"].upper(),
        weekdays.upper(),
        fields["year"],
    ]
    options = Options()
    options.use_24hour_time_format = True
    try:
        return str(ExpressionDescriptor(" ".join(expression), options).get_description())
    except Exception:
        return f"Cron: {plain}"


def _span(seconds: float) -> str:
    if seconds < 60 and not float(seconds).is_integer():
        return f"{seconds:g} seconds"
    remaining = int(seconds)
    parts = []
    for unit, size in _UNITS:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append((unit, count))
    if len(parts) == 1 and parts[0][1] == 1:
        return parts[0][0]  # "Every hour"
    return _join([_count(n, unit) for unit, n in parts])


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}" + ("" if number == 1 else "s")


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _local(value: Any) -> str:
    if not isinstance(value, str):
        return "?"
    if len(value) == 10:
        return value  # a date (calendarinterval bounds)
    moment = datetime.fromisoformat(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _window(data: dict[str, Any]) -> str:
    text = ""
    if data.get("type") != "interval" and data.get("start_date"):
        text += f", from {_local(data['start_date'])}"
    if data.get("end_date"):
        text += f", until {_local(data['end_date'])}"
    return text


def _jitter(data: dict[str, Any]) -> str:
    jitter = data.get("jitter")
    return f", up to {jitter:g} s later at random (jitter)" if jitter else ""
