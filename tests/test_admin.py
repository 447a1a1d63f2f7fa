"""The read-only admin pages list jobs (broken ones included) and runs."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from django_clockwork import api
from django_clockwork.models import Job, JobExecution

from .conftest import utc

pytestmark = pytest.mark.django_db


def test_job_and_history_pages(admin_client: Client) -> None:
    api.add_job("tests.jobs:noop", "interval", minutes=5, id="healthy")
    api.add_job("tests.jobs:noop", "interval", minutes=5, id="broken")
    Job.objects.filter(id="broken").update(load_error="LookupError: could not import module")
    JobExecution.objects.create(job_id="deleted-long-ago", scheduled_run_time=utc(2030, 1, 1))
    jobs = admin_client.get(reverse("admin:django_clockwork_job_changelist"))
    assert jobs.status_code == 200
    assert b"could not import module" in jobs.content
    runs = admin_client.get(reverse("admin:django_clockwork_jobexecution_changelist"))
    assert runs.status_code == 200
    assert b"deleted-long-ago" in runs.content
    detail = admin_client.get(reverse("admin:django_clockwork_job_change", args=["healthy"]))
    assert detail.status_code == 200
    assert b"tests.jobs:noop" in detail.content


def test_admin_cannot_change_anything(admin_client: Client) -> None:
    api.add_job("tests.jobs:noop", "interval", minutes=5, id="healthy")
    assert admin_client.get(reverse("admin:django_clockwork_job_add")).status_code == 403
    delete = reverse("admin:django_clockwork_job_delete", args=["healthy"])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert Job.objects.filter(id="healthy").exists()
