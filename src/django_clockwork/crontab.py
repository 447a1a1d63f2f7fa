"""Classic five-field crontab text, turned into APScheduler cron fields that mean the same.

APScheduler 3's ``CronTrigger.from_crontab()`` counts weekdays from 0 = Monday, so
``"0 9 * * 1-5"`` fires Tuesday to Saturday there, and it needs the day of the month and the
day of the week to match both. Classic cron (Vixie cron, the crontab(5) page) counts 0 and 7
as Sunday and, when neither day field starts with ``*``, runs when *either* matches.

:func:`crontab_fields` reads crontab text with the classic rules and returns cron fields whose
weekdays are names (``mon-fri``), so the stored trigger is unambiguous whoever reads it. Text
whose two day fields are both restricted is refused: no single cron trigger means "either".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django_clockwork.exceptions import InvalidJobError

#: Weekday names in APScheduler's order (its 0 is Monday).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class CronField:
    name: str  # APScheduler's name for it
    label: str  # what crontab(5) calls it
    low: int
    high: int
    names: Sequence[str] = ()
    first_name: int = 0  # the number of names[0]


_FIELDS = (
    CronField("minute", "minute", 0, 59),
    CronField("hour", "hour", 0, 23),
    CronField("day", "day of month", 1, 31),
    CronField("month", "month", 1, 12, MONTHS, 1),
    # Classic numbering: 0 and 7 are Sunday.
    CronField("day_of_week", "day of week", 0, 7, ("sun", *WEEKDAYS[:6]), 0),
)


def crontab_fields(text: str) -> dict[str, str]:
    """APScheduler cron fields (``minute``, ``hour``, ``day``, ``month``, ``day_of_week``,
    ``second``) for classic crontab text; raises :class:`InvalidJobError` saying what is wrong."""
    if not isinstance(text, str):
        raise InvalidJobError(f"crontab must be a string such as '0 9 * * 1-5', not {text!r}")
    expanded = text.strip().lower()
    if expanded.startswith("@"):
        if expanded not in MACROS:
            raise InvalidJobError(
                f"crontab {text!r}: unknown macro; use one of {', '.join(MACROS)} "
                "(@reboot has no meaning for a scheduler)"
            )
        expanded = MACROS[expanded]
    parts = expanded.split()
    if len(parts) != 5:
        raise InvalidJobError(
            f"crontab {text!r} has {len(parts)} field(s); it needs 5: minute hour day-of-month "
            "month day-of-week (e.g. '0 9 * * 1-5' is 09:00 Monday to Friday)"
        )
    minute, hour, day, month, weekday = parts
    if not day.startswith("*") and not weekday.startswith("*"):
        names = weekday_names(_weekdays(weekday, text))
        raise InvalidJobError(_either_message(text, minute, hour, day, month, weekday, names))
    fields = {"second": "0"}
    for field, part in zip(_FIELDS[:4], parts[:4], strict=True):
        items = (_apscheduler_item(field, item, text) for item in part.split(","))
        fields[field.name] = ",".join(items)
    fields["day_of_week"] = weekday_names(_weekdays(weekday, text))
    return fields


def weekday_names(apscheduler_days: set[int]) -> str:
    """``"*"``, or APScheduler weekday numbers as names with ranges: ``{0, 1, 2, 3, 4}`` ->
    ``"mon-fri"``, ``{5, 6}`` -> ``"sat,sun"``."""
    if len(apscheduler_days) == 7:
        return "*"
    runs: list[list[int]] = []
    for day in sorted(apscheduler_days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    items = []
    for run in runs:
        if len(run) >= 3:
            items.append(f"{WEEKDAYS[run[0]]}-{WEEKDAYS[run[-1]]}")
        else:
            items.extend(WEEKDAYS[day] for day in run)
    return ",".join(items)


def _apscheduler_item(field: CronField, item: str, text: str) -> str:
    """One item of a minute, hour, day or month field as APScheduler reads it: the same text
    (the two agree on these fields), except a step longer than its range, which classic cron
    takes to mean the range's first value and APScheduler refuses."""
    values = field_values(field, item, text)  # checked here, for a clear error
    body, _, step = item.partition("/")
    if step and body != "*" and len(values) == 1:
        return str(min(values))
    return item


def _weekdays(part: str, text: str) -> set[int]:
    """The weekdays a classic day-of-week field names, in APScheduler's numbering."""
    classic = field_values(_FIELDS[4], part, text)
    return {(day - 1) % 7 for day in classic}  # classic 0/7 = Sunday = APScheduler's 6


def field_values(field: CronField, part: str, text: str) -> set[int]:
    """The numbers a crontab field matches (``*``, ``5``, ``1-5``, ``*/15``, ``1-31/2``, lists,
    names of months and weekdays)."""
    values: set[int] = set()
    for item in part.split(","):
        body, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise _error(text, field, item, "a step must be a whole number above 0")
            step = int(step_text)
        if body == "*":
            low, high = field.low, field.high
        else:
            first, dash, last = body.partition("-")
            low = _number(field, first, text, item)
            high = _number(field, last, text, item) if dash else (field.high if step_text else low)
            if low > high:
                raise _error(text, field, item, f"a range must go upwards ({low} > {high})")
        values.update(range(low, high + 1, step))
    return values


def _number(field: CronField, value: str, text: str, item: str) -> int:
    if value in field.names:
        return field.names.index(value) + field.first_name
    if not value.isdigit():
        names = f" or a name ({', '.join(field.names)})" if field.names else ""
        raise _error(text, field, item, f"expected a number {field.low}-{field.high}{names}")
    number = int(value)
    if not field.low <= number <= field.high:
        raise _error(text, field, item, f"{number} is outside {field.low}-{field.high}")
    return number


def _error(text: str, field: CronField, item: str, why: str) -> InvalidJobError:
    return InvalidJobError(f"crontab {text!r}: {field.label} {item!r}: {why}")


def _either_message(
    text: str, minute: str, hour: str, day: str, month: str, weekday: str, names: str
) -> str:
    return (
        f"crontab {text!r} restricts both the day of the month ({day!r}) and the day of the "
        f"week ({weekday!r}). Classic cron then runs when EITHER matches, but a cron trigger "
        "runs only when BOTH match, so this text is refused rather than read one way or the "
        f"other. For either: add two jobs, crontab='{minute} {hour} {day} {month} *' and "
        f"crontab='{minute} {hour} * {month} {weekday}'. For both (e.g. the 13th only when it "
        "is a Friday): use the cron trigger, "
        f"'cron', minute='{minute}', hour='{hour}', day='{day}', month='{month}', "
        f"day_of_week='{names}'."
    )
