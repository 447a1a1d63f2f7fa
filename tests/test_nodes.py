"""Scheduler nodes: heartbeats on the database clock, failover marking, fleet max_instances."""

from __future__ import annotations

import logging
import os
import socket

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from django.test import override_settings

from django_clockwork import DjangoJobStore, __version__
from django_clockwork.checks import check_settings
from django_clockwork.models import (
    ExecutionStatus,
    JobExecution,
    SchedulerNode,
    database_now_minus,
)
from django_clockwork.nodes import Node

from .conftest import MakeJob, utc

EVERY_MINUTE = IntervalTrigger(minutes=1, start_date=utc(2030, 1, 1), timezone="UTC")


def silence(node_id: str, seconds: float) -> None:
    """Make a node's last heartbeat ``seconds`` old by the database clock."""
    SchedulerNode.objects.filter(id=node_id).update(last_heartbeat=database_now_minus(seconds))


@pytest.mark.django_db(transaction=True)
def test_node_registers_heartbeats_and_stops() -> None:
    with override_settings(CLOCKWORK={"HEARTBEAT_INTERVAL": 0.1, "NODE_TIMEOUT": 1}):
        node = Node()
        node.start()
        row = SchedulerNode.objects.get(id=node.id)
        assert (row.hostname, row.pid, row.version) == (
            socket.gethostname(),
            os.getpid(),
            __version__,
        )
        assert SchedulerNode.objects.live(1).filter(id=node.id).exists()
        silence(node.id, 0.5)
        first = SchedulerNode.objects.get(id=node.id).last_heartbeat
        for _ in range(50):
            if SchedulerNode.objects.get(id=node.id).last_heartbeat > first:
                break
            node._stopping.wait(0.05)
        assert SchedulerNode.objects.get(id=node.id).last_heartbeat > first
        node.stop()
    row = SchedulerNode.objects.get(id=node.id)
    assert row.stopped_at is not None
    assert not SchedulerNode.objects.live(10).filter(id=node.id).exists()


@pytest.mark.django_db
def test_dead_node_runs_are_abandoned_once(caplog: pytest.LogCaptureFixture) -> None:
    survivor, other_survivor, victim = Node(), Node(), Node()
    for node in (survivor, other_survivor, victim):
        node.beat()
    for status in ("scheduled", "running", "succeeded"):
        JobExecution.objects.create(
            job_id=status, scheduled_run_time=utc(2030, 1, 1), node_id=victim.id, status=status
        )
    JobExecution.objects.create(
        job_id="elsewhere",
        scheduled_run_time=utc(2030, 1, 1),
        node_id=survivor.id,
        status="running",
    )
    silence(victim.id, 60)
    with caplog.at_level(logging.WARNING, logger="django_clockwork"):
        assert survivor.reap() == 2
        assert other_survivor.reap() == 0
    assert caplog.text.count("is dead") == 1
    statuses = dict(JobExecution.objects.values_list("job_id", "status"))
    assert statuses == {
        "scheduled": "abandoned",
        "running": "abandoned",
        "succeeded": "succeeded",
        "elsewhere": "running",
    }
    abandoned = JobExecution.objects.get(job_id="running")
    assert "stopped heartbeating" in abandoned.exception
    assert victim.id in abandoned.exception
    assert abandoned.finished_at is not None
    assert SchedulerNode.objects.get(id=victim.id).dead_at is not None


@pytest.mark.django_db
def test_node_declared_dead_registers_again(caplog: pytest.LogCaptureFixture) -> None:
    survivor, sleeper = Node(), Node()
    survivor.beat()
    sleeper.beat()
    silence(sleeper.id, 60)
    survivor.reap()
    with caplog.at_level(logging.ERROR, logger="django_clockwork"):
        sleeper.beat()
    assert "was declared dead by its peers" in caplog.text
    assert SchedulerNode.objects.live(10).filter(id=sleeper.id).exists()


@pytest.mark.django_db
def test_old_nodes_are_removed_after_retention() -> None:
    with override_settings(CLOCKWORK={"NODE_RETENTION": 3600}):
        node, stopped, recent = Node(), Node(), Node()
        for each in (node, stopped, recent):
            each.beat()
        SchedulerNode.objects.filter(id=stopped.id).update(stopped_at=database_now_minus(7200))
        SchedulerNode.objects.filter(id=recent.id).update(stopped_at=database_now_minus(60))
        node.reap()
    assert set(SchedulerNode.objects.values_list("id", flat=True)) == {node.id, recent.id}


@pytest.mark.django_db
def test_max_instances_counts_unfinished_runs_of_live_nodes(scheduler, make_job: MakeJob) -> None:  # type: ignore[no-untyped-def]
    first_node, second_node = Node(), Node()
    first_node.beat()
    second_node.beat()
    first = DjangoJobStore(poll_interval=None, node_id=first_node.id)
    second = DjangoJobStore(poll_interval=None, node_id=second_node.id)
    for store in (first, second):
        store.start(scheduler, "default")
    first.add_job(make_job("slow", trigger=EVERY_MINUTE, max_instances=1))

    (job,) = first.get_due_jobs(utc(2030, 1, 1, 0, 0, 1))  # 00:00 is claimed, not finished
    assert job._clockwork_claim.run_times == (utc(2030, 1, 1),)
    (job,) = second.get_due_jobs(utc(2030, 1, 1, 0, 1, 1))  # 00:01 on the other node
    assert job._clockwork_claim.run_times == ()
    assert job._clockwork_claim.skipped == (utc(2030, 1, 1, 0, 1),)
    skipped = JobExecution.objects.get(scheduled_run_time=utc(2030, 1, 1, 0, 1))
    assert skipped.status == ExecutionStatus.SKIPPED
    assert "max_instances (1) reached" in skipped.exception

    silence(first_node.id, 60)  # the first node died: its unfinished run no longer counts
    (job,) = second.get_due_jobs(utc(2030, 1, 1, 0, 2, 1))
    assert job._clockwork_claim.run_times == (utc(2030, 1, 1, 0, 2),)


def test_node_timeout_must_cover_two_heartbeats() -> None:
    with override_settings(CLOCKWORK={"HEARTBEAT_INTERVAL": 5, "NODE_TIMEOUT": 8}):
        assert [m.id for m in check_settings()] == ["clockwork.E009"]
