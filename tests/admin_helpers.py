"""Rows for the admin tests: runs written as a scheduler's ledger would leave them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from django_clockwork.models import JobExecution, SchedulerNode


def run(job_id: str, status: str, at: datetime, **fields: Any) -> JobExecution:
    """A run of ``job_id`` scheduled ``at``, started 0.25 s late, lasting 2.3 s."""
    started = at + timedelta(seconds=0.25)
    ended = status not in ("scheduled", "running")
    defaults: dict[str, Any] = {
        "job_name": job_id,
        "func": "tests.jobs:noop",
        "started_at": None if status == "scheduled" else started,
        "finished_at": started + timedelta(seconds=2.3) if ended else None,
        "duration": 2.3 if ended else None,
        "hostname": "web-1",
        "pid": 4242,
        "node_id": "n1",
    }
    return JobExecution.objects.create(
        job_id=job_id, status=status, scheduled_run_time=at, **{**defaults, **fields}
    )


def node(node_id: str = "n1", *, age: float = 0, **fields: Any) -> SchedulerNode:
    """A scheduler node whose last heartbeat was ``age`` seconds ago."""
    now = timezone.now()
    return SchedulerNode.objects.create(
        id=node_id,
        hostname=fields.pop("hostname", "web-1"),
        pid=fields.pop("pid", 4242),
        version="0.1.0",
        started_at=now - timedelta(hours=1),
        last_heartbeat=now - timedelta(seconds=age),
        **fields,
    )
