"""A job's page: its last runs with a chart drawn on the server, its next fire times."""

from __future__ import annotations

import re
from datetime import timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_clockwork import api
from django_clockwork.admin.preview import fire_times
from django_clockwork.models import Job

from .admin_helpers import run
from .conftest import utc

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")


def page(client: Client, job_id: str) -> str:
    response = client.get(reverse("admin:django_clockwork_job_change", args=[job_id]))
    assert response.status_code == 200
    return str(response.content.decode())


def test_last_50_runs_a_chart_and_a_link_to_the_rest(admin_client: Client) -> None:
    api.add_job("tests.jobs:noop", "interval", minutes=1, id="minutely")
    now = timezone.now()
    for n in range(60):
        run("minutely", "failed" if n % 7 == 0 else "succeeded", now - timedelta(minutes=n + 1))
    html = page(admin_client, "minutely")
    table = html.split('id="cw-runs"')[1].split("</fieldset>")[0]
    assert len(re.findall(r"/admin/django_clockwork/jobexecution/\d+/change/", table)) == 50
    svg = re.search(r"<svg class=\"cw-chart\".*?</svg>", html, re.S)
    assert svg is not None
    assert svg.group(0).count("<rect") == 50
    assert "<title>" in svg.group(0)
    assert "failed, 2.3 s" in svg.group(0)
    assert "<script" not in svg.group(0)
    assert "/admin/django_clockwork/jobexecution/?job_id=minutely" in html


def test_next_ten_fire_times_in_the_jobs_zone_and_the_viewers(admin_client: Client) -> None:
    api.add_job("tests.jobs:noop", "cron", hour=9, minute=0, timezone="Europe/Paris", id="paris")
    with timezone.override(ZoneInfo("America/New_York")):
        html = page(admin_client, "paris")
    rows = re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td><td>([^<]*)</td>", html)
    assert [int(n) for n, _, _ in rows] == list(range(1, 11))
    assert all("09:00:00 CE" in local for _, local, _ in rows)
    assert all(("03:00:00 E" in viewer) for _, _, viewer in rows)


def test_a_broken_job_shows_its_error(admin_client: Client) -> None:
    api.add_job("tests.jobs:noop", "interval", minutes=1, id="broken")
    Job.objects.filter(id="broken").update(
        trigger={"type": "nope"}, load_error="SerializationError: unknown trigger type"
    )
    html = page(admin_client, "broken")
    assert "cannot be loaded by a scheduler" in html
    assert "The stored trigger cannot be read" in html


def test_a_finished_job_has_no_next_runs_and_no_buttons(admin_client: Client) -> None:
    api.add_job("tests.jobs:noop", "date", run_date=utc(2030, 1, 1), id="once")
    Job.objects.filter(id="once").update(next_run_time=None, finished_at=timezone.now())
    html = page(admin_client, "once")
    assert "Finished: its trigger has no further fire time." in html
    assert "/operate/" not in html


def test_dst_gap_and_fold_are_marked() -> None:
    spring = utc(2026, 3, 28, 12)
    with mock.patch("django.utils.timezone.now", return_value=spring):
        daily = fire_times(CronTrigger(hour=2, minute=30, timezone=PARIS), PARIS, 3)
    assert [t.local_text for t in daily] == [
        "2026-03-29 03:30:00 CEST (Sun)",  # 02:30 does not exist that day
        "2026-03-30 02:30:00 CEST (Mon)",
        "2026-03-31 02:30:00 CEST (Tue)",
    ]
    assert daily[0].note == (
        "moved by the DST gap: 02:30:00 does not exist that day; it runs at 03:30:00"
    )
    assert daily[1].note == ""
    autumn = utc(2026, 10, 24, 23, 15)  # 01:15 in Paris, summer time
    with mock.patch("django.utils.timezone.now", return_value=autumn):
        trigger = IntervalTrigger(minutes=30, start_date=autumn, timezone=PARIS)
        half_hourly = fire_times(trigger, PARIS, 6)
    notes = [t.note for t in half_hourly]
    assert sum("repeated hour" in note for note in notes) == 4  # 02:15, 02:45 twice each
    assert [t.local.strftime("%H:%M %Z") for t in half_hourly] == [
        "01:15 CEST",
        "01:45 CEST",
        "02:15 CEST",
        "02:45 CEST",
        "02:15 CET",
        "02:45 CET",
    ]
    assert "the first 02:15:00" in notes[2]
    assert "the second 02:15:00" in notes[4]
