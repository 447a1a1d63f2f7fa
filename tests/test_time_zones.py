"""Time zones as stored: zoneinfo, UTC, fixed offsets, and pytz (accepted as APScheduler 3 does)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import pytz
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from django_clockwork import DjangoJobStore, SerializationError
from django_clockwork.serialization import (
    trigger_from_json,
    trigger_to_json,
    zone_from_json,
    zone_to_json,
)

from .conftest import MakeJob

SOURCE = Path(__file__).resolve().parent.parent / "src" / "django_clockwork"


@pytest.mark.parametrize(
    ("zone", "stored", "loaded"),
    [
        (ZoneInfo("Europe/Berlin"), "Europe/Berlin", ZoneInfo("Europe/Berlin")),
        (timezone.utc, "UTC", timezone.utc),
        (timezone(timedelta(hours=-3, minutes=-30)), "UTC-03:30", None),
        (pytz.timezone("Europe/Berlin"), "Europe/Berlin", ZoneInfo("Europe/Berlin")),
        (pytz.timezone("America/New_York"), "America/New_York", ZoneInfo("America/New_York")),
        (pytz.utc, "UTC", timezone.utc),
        (pytz.FixedOffset(330), "UTC+05:30", None),
    ],
    ids=["zoneinfo", "utc", "offset", "pytz", "pytz-ny", "pytz-utc", "pytz-fixed"],
)
def test_zone_round_trip(zone: tzinfo, stored: str, loaded: tzinfo | None) -> None:
    assert zone_to_json(zone) == stored
    back = zone_from_json(stored)
    if loaded is not None:
        assert back == loaded
    assert back.utcoffset(datetime(2030, 7, 1)) == zone.utcoffset(datetime(2030, 7, 1))


def test_pytz_localized_datetime_zone_is_stored_by_name() -> None:
    berlin = pytz.timezone("Europe/Berlin")
    run_date = berlin.localize(datetime(2030, 7, 1, 9, 30))  # tzinfo is the CEST variant
    data = trigger_to_json(DateTrigger(run_date))
    assert data["timezone"] == "Europe/Berlin"
    assert data["run_date"] == "2030-07-01T09:30:00+02:00"
    loaded = trigger_from_json(data)
    assert loaded.run_date == run_date
    assert loaded.run_date.tzinfo == ZoneInfo("Europe/Berlin")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "trigger",
    [
        DateTrigger(pytz.timezone("Europe/Berlin").localize(datetime(2030, 3, 31, 1, 30))),
        CronTrigger(hour=2, minute=30, timezone=pytz.timezone("Europe/Berlin")),
        IntervalTrigger(hours=1, start_date=datetime(2030, 1, 1), timezone=pytz.utc),
    ],
    ids=["date", "cron", "interval"],
)
def test_store_accepts_pytz_triggers(
    store: DjangoJobStore, make_job: MakeJob, trigger: object
) -> None:
    job = make_job("pytz", trigger=trigger)
    store.add_job(job)
    loaded = store.lookup_job("pytz")
    assert loaded is not None
    assert loaded.next_run_time == job.next_run_time
    now = datetime(2030, 6, 1, tzinfo=timezone.utc)
    assert loaded.trigger.get_next_fire_time(None, now) == job.trigger.get_next_fire_time(None, now)


class Nameless(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=1)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)


def test_zone_without_a_name_is_refused() -> None:
    with pytest.raises(SerializationError, match="cannot be stored; use a zoneinfo"):
        zone_to_json(Nameless())


def test_pytz_is_not_a_runtime_dependency() -> None:
    for path in SOURCE.rglob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+pytz", path.read_text(), re.M), path
