"""Triggers and arguments as plain JSON (never pickle).

The trigger format is documented in the README ("Trigger format") and is
stable: ``trigger_from_json(trigger_to_json(t))`` fires at the same times as
``t``. Decoding goes through the triggers' constructors, so a row edited by
hand is validated exactly like arguments given to ``add_job``.
"""

from __future__ import annotations

import math
import zoneinfo
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from django_clockwork.aps import BoundedAndTrigger

CRON_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")


class SerializationError(ValueError):
    """A trigger or argument that cannot be stored as JSON, or stored JSON that is invalid."""


# -- time zones and datetimes ----------------------------------------------------------------


def zone_to_json(tz: tzinfo) -> str:
    """The name a time zone is stored by: an IANA name, ``UTC`` or a fixed offset.

    pytz zones are accepted, as APScheduler 3 accepts them, and stored by their IANA name
    (they are read back as ``zoneinfo.ZoneInfo``); pytz is recognised by its ``zone``
    attribute, never imported.
    """
    if isinstance(tz, zoneinfo.ZoneInfo) and tz.key:
        return tz.key
    if tz is timezone.utc:
        return "UTC"
    if isinstance(tz, timezone):
        return _offset_name(tz.utcoffset(None))
    legacy_name = getattr(tz, "zone", None)
    if isinstance(legacy_name, str) and legacy_name:
        zone_from_json(legacy_name)  # a name zoneinfo cannot read back is refused now
        return legacy_name
    if hasattr(tz, "zone") and (offset := tz.utcoffset(None)) is not None:
        return _offset_name(offset)  # pytz.FixedOffset
    raise SerializationError(
        f"Time zone {tz!r} cannot be stored; use a zoneinfo.ZoneInfo name such as 'Europe/Paris'."
    )


def _offset_name(offset: timedelta) -> str:
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def zone_from_json(name: Any) -> tzinfo:
    if not isinstance(name, str) or not name:
        raise SerializationError(f"timezone must be a time zone name, not {name!r}")
    if name == "UTC":
        return timezone.utc
    if name.startswith("UTC") and len(name) == 9 and name[3] in "+-":
        hours, minutes = int(name[4:6]), int(name[7:9])
        sign = -1 if name[3] == "-" else 1
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise SerializationError(f"unknown time zone {name!r}") from exc


def _dt_to_json(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt_from_json(value: Any, tz: tzinfo, key: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"{key} must be an ISO 8601 datetime, not {value!r}") from exc
    if parsed.tzinfo is None:
        raise SerializationError(f"{key} must carry a UTC offset, not {value!r}")
    return parsed.astimezone(tz)


def _date_to_json(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


# -- triggers ----------------------------------------------------------------------------------


def trigger_to_json(trigger: BaseTrigger) -> dict[str, Any]:
    """The documented JSON form of one of APScheduler's built-in triggers."""
    encoder = _ENCODERS.get(type(trigger))
    if encoder is None:
        raise SerializationError(
            f"Trigger {type(trigger).__name__} cannot be stored as JSON. Supported: "
            "date, interval, cron, calendarinterval, and/or combinations of them."
        )
    data = encoder(trigger)
    trigger_from_json(data)  # what cannot be read back is refused now, not at run time
    return data


def trigger_from_json(data: Any) -> BaseTrigger:
    """Build a trigger from its JSON form; raises SerializationError if the JSON is invalid."""
    if not isinstance(data, dict):
        raise SerializationError(f"a trigger must be a JSON object, not {data!r}")
    kind = data.get("type")
    decoder = _DECODERS.get(kind) if isinstance(kind, str) else None
    if decoder is None:
        raise SerializationError(
            f"unknown trigger type {kind!r}; expected one of {', '.join(_DECODERS)}"
        )
    try:
        return decoder(data)
    except SerializationError:
        raise
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(f"invalid {kind} trigger {data!r}: {exc}") from exc


def _jitter(data: dict[str, Any]) -> float | None:
    jitter: float | None = data.get("jitter")
    if jitter is not None and (not isinstance(jitter, (int, float)) or jitter < 0):
        raise SerializationError(f"jitter must be a number of seconds >= 0, not {jitter!r}")
    return jitter


def _check_keys(data: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(data) - allowed - {"type"}
    if unknown:
        raise SerializationError(f"unknown key(s) in {data['type']} trigger: {sorted(unknown)}")


def _encode_date(trigger: DateTrigger) -> dict[str, Any]:
    run_date: datetime = trigger.run_date
    return {
        "type": "date",
        "run_date": run_date.isoformat(),
        "timezone": zone_to_json(run_date.tzinfo or timezone.utc),
    }


def _decode_date(data: dict[str, Any]) -> DateTrigger:
    _check_keys(data, {"run_date", "timezone"})
    tz = zone_from_json(data.get("timezone", "UTC"))
    return DateTrigger(run_date=_dt_from_json(data["run_date"], tz, "run_date"), timezone=tz)


def _encode_bounds(trigger: IntervalTrigger | CronTrigger) -> dict[str, Any]:
    """The keys interval and cron triggers share: their window, zone and jitter."""
    return {
        "start_date": _dt_to_json(trigger.start_date),
        "end_date": _dt_to_json(trigger.end_date),
        "timezone": zone_to_json(trigger.timezone),
        "jitter": trigger.jitter,
    }


def _decode_bounds(data: dict[str, Any]) -> dict[str, Any]:
    tz = zone_from_json(data.get("timezone", "UTC"))
    return {
        "start_date": _dt_from_json(data.get("start_date"), tz, "start_date"),
        "end_date": _dt_from_json(data.get("end_date"), tz, "end_date"),
        "timezone": tz,
        "jitter": _jitter(data),
    }


_INTERVAL_UNITS = (("weeks", 604800), ("days", 86400), ("hours", 3600), ("minutes", 60))

#: The shortest interval a job may have, in seconds: a shorter one makes a scheduler spin (each
#: run is a ledger row, and every pass would be all catch-up). Refused when a job is added; a
#: stored row below it is flagged as broken and never run.
MIN_INTERVAL_SECONDS = 0.1


def _check_interval(seconds: float) -> None:
    if seconds < MIN_INTERVAL_SECONDS:
        raise SerializationError(
            f"an interval must be at least {MIN_INTERVAL_SECONDS:g} seconds, not {seconds:g}"
        )


def _encode_interval(trigger: IntervalTrigger) -> dict[str, Any]:
    remaining = trigger.interval.total_seconds()
    _check_interval(remaining)
    data: dict[str, Any] = {"type": "interval"}
    for unit, seconds in _INTERVAL_UNITS:
        data[unit], remaining = divmod(remaining, seconds)
        data[unit] = int(data[unit])
    data["seconds"] = int(remaining) if float(remaining).is_integer() else remaining
    return {**data, **_encode_bounds(trigger)}


def _decode_interval(data: dict[str, Any]) -> IntervalTrigger:
    units = {unit for unit, _ in _INTERVAL_UNITS} | {"seconds"}
    _check_keys(data, units | {"start_date", "end_date", "timezone", "jitter"})
    amounts = {unit: data.get(unit, 0) for unit in units}
    for unit, amount in amounts.items():
        if not isinstance(amount, (int, float)) or isinstance(amount, bool) or amount < 0:
            raise SerializationError(f"interval {unit} must be a number >= 0, not {amount!r}")
    if not any(amounts.values()):
        raise SerializationError("an interval trigger needs a non-zero interval")
    trigger = IntervalTrigger(**amounts, **_decode_bounds(data))
    _check_interval(trigger.interval.total_seconds())
    return trigger


def _encode_cron(trigger: CronTrigger) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "cron"}
    data.update((field.name, str(field)) for field in trigger.fields)
    return {**data, **_encode_bounds(trigger)}


def _decode_cron(data: dict[str, Any]) -> CronTrigger:
    _check_keys(data, set(CRON_FIELDS) | {"start_date", "end_date", "timezone", "jitter"})
    fields = {name: data[name] for name in CRON_FIELDS if data.get(name) is not None}
    for name, value in fields.items():
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise SerializationError(f"cron field {name} must be a string, not {value!r}")
    return CronTrigger(
        **{name: str(value) for name, value in fields.items()}, **_decode_bounds(data)
    )


def _encode_calendar(trigger: CalendarIntervalTrigger) -> dict[str, Any]:
    state = trigger.__getstate__()
    years, months, weeks, days = state["interval"]
    hour, minute, second = state["time"]
    return {
        "type": "calendarinterval",
        "years": years,
        "months": months,
        "weeks": weeks,
        "days": days,
        "hour": hour,
        "minute": minute,
        "second": second,
        "start_date": _date_to_json(trigger.start_date),
        "end_date": _date_to_json(trigger.end_date),
        "timezone": zone_to_json(trigger.timezone),
        "jitter": trigger.jitter,
    }


def _decode_calendar(data: dict[str, Any]) -> CalendarIntervalTrigger:
    numbers = ("years", "months", "weeks", "days", "hour", "minute", "second")
    _check_keys(data, set(numbers) | {"start_date", "end_date", "timezone", "jitter"})
    values = {key: data.get(key, 0) for key in numbers}
    for key, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SerializationError(f"calendarinterval {key} must be an integer >= 0")
    return CalendarIntervalTrigger(
        **values,
        start_date=data.get("start_date"),
        end_date=data.get("end_date"),
        timezone=zone_from_json(data.get("timezone", "UTC")),
        jitter=_jitter(data),
    )


def _encode_combination(trigger: AndTrigger | OrTrigger) -> dict[str, Any]:
    return {
        "type": "and" if isinstance(trigger, AndTrigger) else "or",
        "triggers": [trigger_to_json(t) for t in trigger.triggers],
        "jitter": trigger.jitter,
    }


def _decode_combination(data: dict[str, Any]) -> AndTrigger | OrTrigger:
    _check_keys(data, {"triggers", "jitter"})
    parts = data.get("triggers")
    if not isinstance(parts, list) or not parts:
        raise SerializationError(f"an {data['type']} trigger needs a non-empty list of triggers")
    cls = BoundedAndTrigger if data["type"] == "and" else OrTrigger
    return cls([trigger_from_json(part) for part in parts], jitter=_jitter(data))


_ENCODERS: dict[type, Callable[[Any], dict[str, Any]]] = {
    DateTrigger: _encode_date,
    IntervalTrigger: _encode_interval,
    CronTrigger: _encode_cron,
    CalendarIntervalTrigger: _encode_calendar,
    AndTrigger: _encode_combination,
    BoundedAndTrigger: _encode_combination,
    OrTrigger: _encode_combination,
}
_DECODERS: dict[str, Callable[[dict[str, Any]], BaseTrigger]] = {
    "date": _decode_date,
    "interval": _decode_interval,
    "cron": _decode_cron,
    "calendarinterval": _decode_calendar,
    "and": _decode_combination,
    "or": _decode_combination,
}


# -- arguments ---------------------------------------------------------------------------------


def check_json_arguments(args: Any, kwargs: Any) -> None:
    """Refuse arguments that would not come back from JSON exactly as given.

    The error names the offending argument, e.g. ``kwargs['when']``.
    """
    for index, value in enumerate(args):
        _check_value(value, f"args[{index}]")
    for key, value in kwargs.items():
        _check_value(value, f"kwargs[{key!r}]")


def _check_value(value: Any, where: str) -> None:
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SerializationError(f"{where} is {value!r}, which JSON cannot hold.")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_value(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SerializationError(
                    f"{where} has the key {key!r}; JSON object keys must be strings."
                )
            _check_value(item, f"{where}[{key!r}]")
        return
    hint = " (use a list)" if isinstance(value, tuple) else ""
    raise SerializationError(
        f"{where} is a {type(value).__name__} ({value!r:.60}), which cannot be stored as JSON"
        f"{hint}. Pass JSON-compatible values (str, int, float, bool, None, list, dict) and "
        "convert inside the job, e.g. a datetime as an ISO string or a model as its primary key."
    )
