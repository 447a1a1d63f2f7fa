"""Run now: a scheduler (never the asking process) runs the job once; the schedule is kept."""

from __future__ import annotations

import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from django_clockwork import DjangoJobStore, api, create_scheduler
from django_clockwork.exceptions import InvalidJobError, JobNotFoundError
from django_clockwork.models import (
    ExecutionStatus,
    Job,
    JobExecution,
    SchedulerNode,
    TriggerSource,
)

from .conftest import run_scheduler_until_succeeded

pytestmark = pytest.mark.django_db

S = ExecutionStatus


def live_node(node_id: str) -> None:
    now = timezone.now()
    SchedulerNode.objects.create(
        id=node_id, hostname="h", pid=1, version="x", started_at=now, last_heartbeat=now
    )


@pytest.fixture
def node_store(store: DjangoJobStore) -> DjangoJobStore:
    """A store that claims for a live node, as create_scheduler() sets it up."""
    live_node("n1")
    store.node_id = "n1"
    store._claimer.ledger.node_id = "n1"
    return store


def test_a_request_waits_as_pending_until_a_scheduler_takes_it(
    store: DjangoJobStore, node_store: DjangoJobStore
) -> None:
    job = api.add_job("tests.jobs:noop", "cron", hour=3, id="nightly")
    request = api.run_now("nightly", requested_by="alice")
    row = JobExecution.objects.get(id=request.execution_id)
    assert (row.status, row.node_id, row.trigger_source, row.requested_by) == (
        S.SCHEDULED,
        "",
        TriggerSource.RUN_NOW,
        "alice",
    )
    assert node_store.get_next_run_time() <= timezone.now()  # wakes at once
    (claimed,) = node_store.get_due_jobs(timezone.now())
    assert claimed._clockwork_claim.run_times == (request.requested_at,)
    assert claimed._get_run_times(timezone.now()) == [request.requested_at]
    assert JobExecution.objects.get(id=request.execution_id).node_id == "n1"
    assert Job.objects.get(id="nightly").next_run_time == job.next_run_time  # schedule kept
    assert node_store.get_due_jobs(timezone.now()) == []  # taken once


def test_a_store_without_a_node_never_takes_a_request(store: DjangoJobStore) -> None:
    api.add_job("tests.jobs:noop", "cron", hour=3, id="nightly")
    api.run_now("nightly")
    assert store.get_due_jobs(timezone.now()) == []
    assert JobExecution.objects.get().node_id == ""


def test_a_paused_job_runs_now(node_store: DjangoJobStore) -> None:
    api.add_job("tests.jobs:noop", "cron", hour=3, id="nightly")
    api.pause_job("nightly")
    api.run_now("nightly")
    (claimed,) = node_store.get_due_jobs(timezone.now())
    assert len(claimed._clockwork_claim.run_times) == 1
    assert Job.objects.get(id="nightly").next_run_time is None  # still paused


def test_skip_next_skips_exactly_the_next_scheduled_run(node_store: DjangoJobStore) -> None:
    job = api.add_job("tests.jobs:noop", "interval", minutes=10, id="poll")
    request = api.run_now("poll", skip_next=True, requested_by="bob")
    assert request.skipped_run_time == job.next_run_time
    skipped = JobExecution.objects.get(scheduled_run_time=job.next_run_time)
    assert skipped.status == S.SKIPPED
    assert "skip_next=True by bob" in skipped.exception
    assert Job.objects.get(id="poll").next_run_time == job.next_run_time + timedelta(minutes=10)


def test_max_instances_holds_across_the_fleet(node_store: DjangoJobStore) -> None:
    api.add_job("tests.jobs:noop", "cron", hour=3, id="nightly", max_instances=1)
    live_node("n2")
    JobExecution.objects.create(
        job_id="nightly",
        scheduled_run_time=timezone.now() - timedelta(minutes=1),
        status=S.RUNNING,
        node_id="n2",
    )
    request = api.run_now("nightly")
    assert node_store.get_due_jobs(timezone.now()) == []
    refused = JobExecution.objects.get(id=request.execution_id)
    assert refused.status == S.SKIPPED
    assert "max_instances (1) reached" in refused.exception


def test_a_request_no_scheduler_takes_expires(node_store: DjangoJobStore) -> None:
    api.add_job("tests.jobs:noop", "cron", hour=3, id="nightly")
    request = api.run_now("nightly")
    JobExecution.objects.filter(id=request.execution_id).update(
        scheduled_run_time=timezone.now() - timedelta(seconds=700)
    )
    assert node_store.get_due_jobs(timezone.now()) == []
    expired = JobExecution.objects.get(id=request.execution_id)
    assert expired.status == S.MISSED
    assert "expired" in expired.exception


def test_a_request_for_a_removed_job_is_skipped(node_store: DjangoJobStore) -> None:
    api.add_job("tests.jobs:noop", "cron", hour=3, id="nightly")
    request = api.run_now("nightly")
    api.remove_job("nightly")
    assert node_store.get_due_jobs(timezone.now()) == []
    assert JobExecution.objects.get(id=request.execution_id).status == S.SKIPPED


def test_nothing_happens_when_the_transaction_rolls_back() -> None:
    api.add_job("tests.jobs:noop", "cron", hour=3, id="nightly")

    def ask_then_fail() -> None:
        with transaction.atomic():
            api.run_now("nightly")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        ask_then_fail()
    assert not JobExecution.objects.exists()


def test_unknown_and_broken_jobs_are_refused() -> None:
    with pytest.raises(JobNotFoundError):
        api.run_now("nope")
    api.add_job("tests.jobs:noop", "cron", hour=3, id="broken")
    Job.objects.filter(id="broken").update(load_error="ImportError: gone")
    with pytest.raises(InvalidJobError, match="cannot be loaded"):
        api.run_now("broken")
    assert not JobExecution.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_running_scheduler_runs_the_request_and_records_who_asked() -> None:
    api.add_job("tests.jobs:noop", "cron", hour=3, id="nightly")
    api.pause_job("nightly")
    api.run_now("nightly", requested_by="carol")
    assert run_scheduler_until_succeeded("nightly", runs=1) == 1
    run = JobExecution.objects.get(job_id="nightly")
    assert (run.trigger_source, run.requested_by, run.status) == ("run-now", "carol", S.SUCCEEDED)


@pytest.mark.django_db(transaction=True)
@override_settings(CLOCKWORK={"POLL_INTERVAL": 0.2})
def test_clockwork_run_wait_prints_the_outcome_and_fails_for_a_failed_run() -> None:
    api.add_job("tests.jobs:noop", "cron", hour=3, id="fine")
    api.add_job("tests.jobs:fail", "cron", hour=3, id="broken-job")
    scheduler = create_scheduler()
    scheduler.start()
    try:
        out = StringIO()
        call_command("clockwork", "run", "fine", "--wait", "--timeout", "20", stdout=out)
        lines = out.getvalue().splitlines()
        assert lines[0].startswith("Asked a scheduler to run 'fine' now (history row ")
        assert lines[1].startswith("succeeded in ")
        with pytest.raises(CommandError, match="ended failed") as error:
            call_command("clockwork", "run", "broken-job", "--wait", stdout=StringIO())
        assert error.value.returncode == 1
        with pytest.raises(CommandError, match="No job with id 'nope'") as unknown:
            call_command("clockwork", "run", "nope")
        assert unknown.value.returncode == 2
    finally:
        scheduler.shutdown()


@pytest.mark.django_db(transaction=True)
@override_settings(CLOCKWORK={"POLL_INTERVAL": 30})
def test_on_postgresql_a_request_wakes_the_scheduler_at_once() -> None:
    """With a 30 s poll only the NOTIFY sent at commit can make the run start within 10 s."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    api.add_job("tests.jobs:noop", "cron", hour=3, id="nightly")
    scheduler = create_scheduler()
    scheduler.start()
    try:
        runtime = scheduler.runtime
        assert runtime.waker is not None
        assert runtime.waker.connected.wait(10)
        api.run_now("nightly")
        deadline = timezone.now() + timedelta(seconds=10)
        while (
            timezone.now() < deadline
            and not JobExecution.objects.filter(job_id="nightly", status=S.SUCCEEDED).exists()
        ):
            time.sleep(0.05)
        assert JobExecution.objects.filter(job_id="nightly", status=S.SUCCEEDED).exists()
    finally:
        scheduler.shutdown()
