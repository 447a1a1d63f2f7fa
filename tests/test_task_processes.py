"""Task jobs on django-tasks-db with real processes: several schedulers, a real ``db_worker``,
and a scheduler killed inside its claim. Each run time is enqueued exactly once."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from django_clockwork import api, tasktargets
from django_clockwork.models import ExecutionStatus, JobExecution
from tests.process_helpers import Schedulers, wait_until

pytestmark = [
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        tasktargets._database_backend_class() is None, reason="django-tasks-db is not installed"
    ),
]
S = ExecutionStatus


@pytest.fixture
def processes(
    transactional_db: None, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Schedulers]:
    failed_before = request.session.testsfailed
    started = Schedulers(tmp_path, connection.settings_dict["NAME"])
    try:
        yield started
    finally:
        started.close()
        if request.session.testsfailed != failed_before:
            print(started.logs())


def add_task_job(job_id: str, lead: float = 3.0) -> datetime:
    """A task job every second from a whole second ``lead`` s from now; its first run time."""
    start = (timezone.now() + timedelta(seconds=lead)).replace(microsecond=0)
    job = api.add_job(
        task="tests.tasks.record_hit",
        trigger="interval",
        seconds=1,
        start_date=start + timedelta(seconds=1),
        id=job_id,
        args=[job_id],
        coalesce=False,
        misfire_grace_time=60,
        task_options={"backend": "database"},
    )
    assert job.next_run_time is not None
    return job.next_run_time


def results() -> dict[str, str]:
    from django_tasks_db.models import DBTaskResult

    return {str(pk): status for pk, status in DBTaskResult.objects.values_list("id", "status")}


def start_worker(processes: Schedulers) -> None:
    processes.start_command(
        "worker", "db_worker", "--backend", "database", "--interval", "0.2", "--no-startup-delay"
    )


def assert_each_run_time_enqueued_once(job_ids: list[str]) -> list[JobExecution]:
    runs = list(JobExecution.objects.filter(job_id__in=job_ids).order_by("scheduled_run_time"))
    assert runs, "no run was claimed"
    outcomes = {run.status for run in runs}
    assert outcomes <= {S.ENQUEUED, S.SUCCEEDED}, [(r.status, r.exception) for r in runs]
    for job_id in job_ids:
        times = [run.scheduled_run_time for run in runs if run.job_id == job_id]
        gaps = [b - a for a, b in pairwise(times) if b - a != timedelta(seconds=1)]
        assert not gaps, f"{job_id}: run times not 1 s apart: {gaps}"
    ids = [run.task_result_id for run in runs]
    assert len(set(ids)) == len(ids)
    assert set(ids) == set(results()), "a task row without its ledger row, or the reverse"
    return runs


def test_several_schedulers_and_a_worker_run_each_run_time_once(processes: Schedulers) -> None:
    job_ids = ["digest-1", "digest-2", "digest-3"]
    for job_id in job_ids:
        add_task_job(job_id)
    processes.start_many(3)
    start_worker(processes)
    time.sleep(8)
    for job_id in job_ids:
        api.pause_job(job_id)
    time.sleep(1.5)  # a claim in flight commits
    runs = assert_each_run_time_enqueued_once(job_ids)
    assert len(runs) >= 3 * 4
    wait_until(
        lambda: set(results().values()) == {"SUCCESSFUL"}, 30, "the worker to run every task"
    )
    hits = processes.hits_path.read_text().splitlines()
    assert sorted(line.split("\t")[0] for line in hits) == sorted(run.job_id for run in runs)
    # The worker has this app installed: its task_finished signals completed the runs.
    wait_until(
        lambda: (
            set(JobExecution.objects.filter(job_id__in=job_ids).values_list("status", flat=True))
            == {S.SUCCEEDED}
        ),
        10,
        "the worker's signals to complete every run",
    )


def test_a_scheduler_killed_inside_its_claim_enqueues_nothing(
    processes: Schedulers, tmp_path: Path
) -> None:
    """The first enqueue of the run stalls inside a claim (the backend's id function sleeps);
    that scheduler is killed there. Its claim never commits: neither its ledger row nor its
    task row exists, and the other scheduler claims the run time and enqueues it, once."""
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "once").touch()
    processes.env["CLOCKWORK_SLOW_ENQUEUE"] = str(slow)
    first_run = add_task_job("killed", lead=2.0)
    first, second = processes.start_many(2)
    start_worker(processes)
    pid = int(
        wait_until(
            lambda: (slow / "in-claim").exists() and (slow / "in-claim").read_text(),
            30,
            "a scheduler to stall inside its claim",
        )
    )
    victim = next(p for p in (first, second) if p.pid == pid)
    survivor = second if victim is first else first
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    time.sleep(5)
    api.pause_job("killed")
    time.sleep(1.5)
    assert survivor.alive()
    runs = assert_each_run_time_enqueued_once(["killed"])
    assert all(run.pid != pid for run in runs)
    assert runs[0].scheduled_run_time == first_run  # the run it held was claimed again
    wait_until(
        lambda: set(results().values()) == {"SUCCESSFUL"}, 30, "the worker to run every task"
    )
    assert len(processes.hits_path.read_text().splitlines()) == len(runs)
