"""History retention: finished one-off jobs can be removed, and their history stays."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from django_clockwork import api
from django_clockwork.models import Job, JobExecution

NOW = timezone.now()


def one_off(job_id: str, finished: datetime | None) -> Job:
    return Job.objects.create(
        id=job_id,
        func="tests.jobs:noop",
        trigger={"type": "date", "run_date": "2030-01-01T00:00:00+00:00", "timezone": "UTC"},
        finished_at=finished,
    )


@pytest.mark.django_db
def test_remove_job_removes_a_finished_job_and_keeps_its_history() -> None:
    one_off("report", NOW - timedelta(hours=1))
    JobExecution.objects.create(job_id="report", scheduled_run_time=NOW, status="succeeded")
    api.remove_job("report")
    assert not Job.objects.exists()
    assert list(JobExecution.objects.values_list("job_id", "status")) == [("report", "succeeded")]
