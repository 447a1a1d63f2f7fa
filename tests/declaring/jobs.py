"""Declared jobs, synced by every scheduler process of the real-process sync test."""

from __future__ import annotations

from django_clockwork import scheduled_job
from tests.jobs import record_hit


@scheduled_job("interval", seconds=1, id="declared-every-second")
def every_second() -> None:
    record_hit()


@scheduled_job(crontab="0 9 * * 1-5", timezone="Europe/Paris", id="declared-weekdays")
def weekdays() -> None:
    record_hit()


@scheduled_job("cron", hour=3, id="declared-nightly", args=[1, 2])
def nightly(a: int, b: int) -> None:
    record_hit()
