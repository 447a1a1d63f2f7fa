"""The trigger, edited per type: the form fields of each type, their values from a stored
trigger, and the trigger they make (checked field by field, so an error sits next to its field).

Types: ``cron`` (APScheduler's fields), ``crontab`` (classic crontab text, 0 and 7 = Sunday;
stored as a cron trigger), ``interval``, ``calendarinterval`` and ``date``. Every type shares
a time zone, start and end dates (wall times in that zone) and jitter.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, tzinfo
from functools import cache
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from django import forms
from django.forms.utils import flatatt
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from django_clockwork.exceptions import InvalidJobError
from django_clockwork.serialization import CRON_FIELDS
from django_clockwork.triggers import build_trigger

TYPES = [
    ("cron", "cron: APScheduler's cron fields"),
    ("crontab", "crontab: classic crontab text (0 and 7 = Sunday)"),
    ("interval", "interval: every N weeks, days, hours, minutes, seconds"),
    ("calendarinterval", "calendar interval: every N years, months, weeks, days, at a time"),
    ("date", "date: once"),
]
INTERVAL_UNITS = ("weeks", "days", "hours", "minutes", "seconds")
CALENDAR_UNITS = ("years", "months", "weeks", "days")
CALENDAR_TIME = ("hour", "minute", "second")
#: Per type, its form fields (as ``prefix_name``) in the order shown.
TYPE_FIELDS = {
    "cron": [f"cron_{name}" for name in CRON_FIELDS],
    "crontab": ["crontab"],
    "interval": [f"interval_{unit}" for unit in INTERVAL_UNITS],
    "calendarinterval": [f"calendar_{name}" for name in (*CALENDAR_UNITS, *CALENDAR_TIME)],
    "date": ["run_date"],
}
COMMON_FIELDS = ["trigger_type", "timezone", "start_date", "end_date", "jitter"]


@cache
def zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class ZoneSelect(forms.Select):
    """A ``<select>`` of every time zone, its ~600 options written in Python rather than one
    template render each (which took most of a job page's time)."""

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        final = self.build_attrs(self.attrs, {**(attrs or {}), "name": name})
        options = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            ((zone, " selected" if zone == value else "", zone) for zone, _ in zone_choices()),
        )
        return format_html("<select{}>{}</select>", flatatt(final), options)


def _number(label: str, **kwargs: Any) -> forms.IntegerField:
    return forms.IntegerField(label=label, required=False, min_value=0, **kwargs)


def trigger_fields(default_zone: str) -> dict[str, forms.Field]:
    """Every trigger field, for every type (the chosen type's are used)."""
    fields: dict[str, forms.Field] = {
        "trigger_type": forms.ChoiceField(choices=TYPES, initial="cron", label="Trigger type"),
        "timezone": forms.ChoiceField(
            choices=zone_choices(), initial=default_zone, label="Time zone", widget=ZoneSelect
        ),
        "start_date": forms.DateTimeField(
            required=False, help_text="Wall time in the job's time zone; empty: from now."
        ),
        "end_date": forms.DateTimeField(
            required=False, help_text="Wall time in the job's time zone; empty: no end."
        ),
        "jitter": _number("Jitter (s)", help_text="Run up to this many seconds late at random."),
        "crontab": forms.CharField(
            required=False,
            label="Crontab",
            help_text="minute hour day-of-month month day-of-week, e.g. 0 9 * * 1-5 "
            "(09:00 Monday to Friday); 0 and 7 are Sunday; @daily, @hourly...",
        ),
        "run_date": forms.DateTimeField(
            required=False, label="Run at", help_text="Wall time in the job's time zone."
        ),
    }
    for name in CRON_FIELDS:
        fields[f"cron_{name}"] = forms.CharField(
            required=False,
            label=name.replace("_", " "),
            help_text="APScheduler cron syntax (*, */5, 1-5, mon-fri, last fri); empty: "
            "* for fields larger than the largest given, the minimum below it."
            if name == "second"
            else "",
        )
    for unit in INTERVAL_UNITS:
        fields[f"interval_{unit}"] = _number(unit)
    for unit in CALENDAR_UNITS:
        fields[f"calendar_{unit}"] = _number(unit)
    for name in CALENDAR_TIME:
        fields[f"calendar_{name}"] = _number(f"at {name}")
    return fields


def initial_from(data: Any) -> dict[str, Any]:
    """Form values for a stored trigger (its documented JSON form)."""
    if not isinstance(data, dict) or data.get("type") not in dict(TYPES):
        return {}
    kind = data["type"]
    zone = zone_named(data.get("timezone") or "UTC")
    values: dict[str, Any] = {
        "trigger_type": kind,
        "timezone": data.get("timezone"),
        "start_date": _wall(data.get("start_date"), zone),
        "end_date": _wall(data.get("end_date"), zone),
        "jitter": data.get("jitter"),
    }
    if kind == "cron":
        values.update((f"cron_{name}", data.get(name)) for name in CRON_FIELDS)
    elif kind == "interval":
        values.update((f"interval_{unit}", data.get(unit)) for unit in INTERVAL_UNITS)
    elif kind == "calendarinterval":
        names = (*CALENDAR_UNITS, *CALENDAR_TIME)
        values.update((f"calendar_{name}", data.get(name)) for name in names)
    elif kind == "date":
        values["run_date"] = _wall(data.get("run_date"), zone)
    return values


class TriggerErrors(Exception):
    """Errors by form field name."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def build(cleaned: dict[str, Any]) -> BaseTrigger:
    """The trigger the form's values make; raises :class:`TriggerErrors` by field."""
    kind = cleaned.get("trigger_type") or "cron"
    zone_name = cleaned.get("timezone") or "UTC"
    zone = zone_named(zone_name)
    common: dict[str, Any] = {"timezone": zone_name}
    if cleaned.get("jitter"):
        common["jitter"] = cleaned["jitter"]
    for name in ("start_date", "end_date"):
        if cleaned.get(name) and kind != "date":
            common[name] = _in_zone(cleaned[name], zone)
    if kind == "crontab":
        if not cleaned.get("crontab"):
            raise TriggerErrors({"crontab": "Give the crontab text, e.g. 0 9 * * 1-5."})
        return _checked("crontab", None, {**common, "crontab": cleaned["crontab"]})
    if kind == "cron":
        given = {
            name: str(cleaned[f"cron_{name}"]).strip()
            for name in CRON_FIELDS
            if str(cleaned.get(f"cron_{name}") or "").strip()
        }
        if not given:
            raise TriggerErrors({"cron_minute": "Give at least one cron field."})
        _check_cron_fields(given, zone_name)
        return _checked("cron_second", "cron", {**common, **given})
    if kind == "interval":
        units = {unit: cleaned.get(f"interval_{unit}") or 0 for unit in INTERVAL_UNITS}
        if not any(units.values()):
            raise TriggerErrors({"interval_minutes": "Give a length: at least one unit above 0."})
        return _checked("interval_minutes", "interval", {**common, **units})
    if kind == "calendarinterval":
        names = (*CALENDAR_UNITS, *CALENDAR_TIME)
        values = {name: cleaned.get(f"calendar_{name}") or 0 for name in names}
        if not any(values[unit] for unit in CALENDAR_UNITS):
            raise TriggerErrors({"calendar_days": "Give a length: at least one unit above 0."})
        for name in ("start_date", "end_date"):
            if name in common:
                common[name] = common[name].date()
        return _checked("calendar_days", "calendarinterval", {**common, **values})
    if not cleaned.get("run_date"):
        raise TriggerErrors({"run_date": "Give the date and time to run at."})
    run_date = _in_zone(cleaned["run_date"], zone)
    return _checked("run_date", "date", {"timezone": zone_name, "run_date": run_date})


def _check_cron_fields(given: dict[str, str], zone_name: str) -> None:
    """Each cron field alone, so that an error names its field."""
    errors = {}
    for name, value in given.items():
        try:
            CronTrigger(timezone=zone_name, **{name: value})
        except (ValueError, TypeError) as exc:
            errors[f"cron_{name}"] = str(exc)
    if errors:
        raise TriggerErrors(errors)


def _checked(field: str, alias: str | None, arguments: dict[str, Any]) -> BaseTrigger:
    try:
        return build_trigger(alias, arguments, arguments.get("timezone") or "UTC")
    except InvalidJobError as exc:
        raise TriggerErrors({field: str(exc)}) from exc


def zone_named(name: str) -> tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _in_zone(value: datetime, zone: tzinfo) -> datetime:
    """A form's datetime (made aware in the viewer's zone by Django) as the same wall time in
    the job's zone."""
    naive = timezone.make_naive(value) if timezone.is_aware(value) else value
    return naive.replace(tzinfo=zone)


def _wall(value: Any, zone: tzinfo) -> datetime | None:
    """A stored ISO time as a naive wall time in ``zone`` (what the form field shows)."""
    if not isinstance(value, str):
        return None
    moment = datetime.fromisoformat(value)
    if len(value) == 10 or moment.tzinfo is None:
        return moment.replace(tzinfo=None)
    return moment.astimezone(zone).replace(tzinfo=None)
