"""Scheduler nodes: heartbeats on the database clock, failover marking, fleet max_instances."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from django.db import connection
from django.test import override_settings

from django_clockwork import DjangoJobStore, __version__
from django_clockwork.checks import check_settings
from django_clockwork.models import (
    ExecutionStatus,
    JobExecution,
    SchedulerNode,
    database_now_minus,
)
from django_clockwork.nodelocks import advisory_key, mysql_lock_name
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


# -- session locks (PostgreSQL, MySQL/MariaDB): a dead node is seen within a probe --------------

needs_locks = pytest.mark.skipif(
    os.environ.get("CLOCKWORK_TEST_DB", "sqlite") == "sqlite",
    reason="SQLite has no session locks: heartbeats alone tell",
)


@pytest.fixture
def nodes() -> Iterator[Callable[[], Node]]:
    """Makes registered nodes; lets go of their locks at the end."""
    made: list[Node] = []

    def make() -> Node:
        node = Node()
        node.beat()
        made.append(node)
        return node

    yield make
    for node in made:
        if node._lock is not None:
            node._lock.release()


def run_on(node: Node, status: str = "running") -> JobExecution:
    return JobExecution.objects.create(
        job_id=f"on-{node.id[:8]}-{status}",
        scheduled_run_time=utc(2030, 1, 1),
        node_id=node.id,
        status=status,
    )


@needs_locks
@pytest.mark.django_db
def test_a_node_holds_its_session_lock(nodes: Callable[[], Node]) -> None:
    survivor, node = nodes(), nodes()
    assert node._lock is not None
    assert node._lock.held
    assert SchedulerNode.objects.get(id=node.id).locked_at is not None
    assert survivor._lock is not None
    assert survivor._lock.free([node.id, "0" * 32]) == {"0" * 32}
    assert node.tick == 0.5  # HEARTBEAT_INTERVAL 2 s: the lock is checked every 0.5 s


@needs_locks
@pytest.mark.django_db
def test_a_node_whose_lock_session_ended_is_declared_dead_at_once(
    nodes: Callable[[], Node], caplog: pytest.LogCaptureFixture
) -> None:
    survivor, other_survivor, victim = nodes(), nodes(), nodes()
    running, claimed = run_on(victim), run_on(victim, "scheduled")
    assert victim._lock is not None
    victim._lock.release()  # what the server does when the process dies
    assert SchedulerNode.objects.live(10).filter(id=victim.id).exists()  # heartbeat is fresh
    with caplog.at_level(logging.WARNING, logger="django_clockwork"):
        assert survivor.reap_locks() == 2
        assert other_survivor.reap_locks() == 0
    assert caplog.text.count("is dead") == 1
    assert SchedulerNode.objects.get(id=victim.id).dead_at is not None
    for run in (running, claimed):
        run.refresh_from_db()
        assert run.status == ExecutionStatus.ABANDONED
        assert run.exception.startswith("Abandoned: its scheduler")
        assert "released its session lock" in run.exception


@needs_locks
@pytest.mark.django_db
def test_a_node_whose_lock_connection_was_killed_is_declared_dead(
    nodes: Callable[[], Node],
) -> None:
    survivor, victim = nodes(), nodes()
    run_on(victim)
    with connection.cursor() as cursor:  # the server ends the victim's lock session
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND objid = %s",
                [advisory_key(victim.id) % 2**32],
            )
        else:
            assert victim._lock is not None
            cursor.execute("SELECT IS_USED_LOCK(%s)", [victim._lock.name(victim.id)])
            (holder,) = cursor.fetchone()
            cursor.execute(f"KILL {int(holder)}")
    assert wait_for(lambda: survivor.reap_locks() == 1)
    assert SchedulerNode.objects.get(id=victim.id).dead_at is not None


@needs_locks
@pytest.mark.django_db
def test_a_live_node_holding_its_lock_is_never_declared_dead(nodes: Callable[[], Node]) -> None:
    survivor, node = nodes(), nodes()
    run_on(node)
    for _ in range(3):
        node.record_lock()
        assert survivor.reap_locks() == 0
        assert node.reap_locks() == 0
    assert SchedulerNode.objects.get(id=node.id).dead_at is None
    assert JobExecution.objects.get(node_id=node.id).status == ExecutionStatus.RUNNING


@needs_locks
@pytest.mark.django_db
def test_a_lock_taken_before_the_server_started_is_not_trusted(
    nodes: Callable[[], Node],
) -> None:
    """A server restart frees every lock: such a node is left to NODE_TIMEOUT."""
    survivor, victim = nodes(), nodes()
    assert survivor._lock is not None
    assert survivor._lock.server_started_at is not None
    assert victim._lock is not None
    victim._lock.release()
    before_start = survivor._lock.server_started_at - timedelta(minutes=1)
    SchedulerNode.objects.filter(id=victim.id).update(locked_at=before_start)
    assert survivor.reap_locks() == 0
    assert SchedulerNode.objects.get(id=victim.id).dead_at is None
    silence(victim.id, 60)
    survivor.reap()
    assert SchedulerNode.objects.get(id=victim.id).dead_at is not None


@needs_locks
@pytest.mark.django_db
def test_a_node_without_a_lock_is_left_to_its_heartbeats(nodes: Callable[[], Node]) -> None:
    survivor, victim = nodes(), nodes()
    assert victim._lock is not None
    victim._lock.release()
    victim.record_lock()  # takes it again on a new connection and records the new time
    assert victim._lock.held
    first = SchedulerNode.objects.get(id=victim.id).locked_at
    victim._lock.release()
    SchedulerNode.objects.filter(id=victim.id).update(locked_at=None)  # never took one
    assert survivor.reap_locks() == 0
    assert first is not None
    assert SchedulerNode.objects.get(id=victim.id).dead_at is None


@needs_locks
@pytest.mark.django_db
def test_a_node_wrongly_declared_dead_takes_its_lock_again_and_registers(
    nodes: Callable[[], Node], caplog: pytest.LogCaptureFixture
) -> None:
    survivor, sleeper = nodes(), nodes()
    assert sleeper._lock is not None
    sleeper._lock.release()  # its lock connection dropped, the process lives on
    assert survivor.reap_locks() == 0
    sleeper.record_lock()
    with caplog.at_level(logging.ERROR, logger="django_clockwork"):
        sleeper.beat()
    assert "was declared dead by its peers" in caplog.text
    row = SchedulerNode.objects.get(id=sleeper.id)
    assert row.dead_at is None
    assert row.locked_at is not None
    assert survivor.reap_locks() == 0


def test_lock_names_and_keys() -> None:
    node_id = "f" * 32
    assert advisory_key(node_id) == advisory_key(node_id) != advisory_key("e" * 32)
    assert -(2**63) <= advisory_key(node_id) < 2**63
    name = mysql_lock_name(node_id, "x" * 64)
    assert name.startswith(f"clockwork.{node_id}.xxx")
    assert len(name) == 64


@pytest.mark.django_db
def test_sqlite_nodes_and_disabled_locks_rely_on_heartbeats() -> None:
    with override_settings(CLOCKWORK={"NODE_LOCKS": False}):
        node = Node()
    node.beat()
    assert node._lock is None
    assert node.tick == node.interval
    assert node.reap_locks() == 0
    assert SchedulerNode.objects.get(id=node.id).locked_at is None
    if connection.vendor == "sqlite":
        assert Node()._lock is None


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@needs_locks
@pytest.mark.django_db(transaction=True)
def test_a_running_node_declares_a_dead_peer_within_a_second() -> None:
    """The heartbeat thread checks the locks every 0.5 s (HEARTBEAT_INTERVAL is 2 s)."""
    survivor, victim = Node(), Node()
    survivor.start()
    try:
        victim.beat()
        assert victim._lock is not None
        victim._lock.release()
        assert wait_for(
            lambda: SchedulerNode.objects.get(id=victim.id).dead_at is not None, timeout=1.5
        )
    finally:
        survivor.stop()
    assert survivor._lock is not None
    assert not survivor._lock.held  # let go when it stopped, after its row said so
    assert SchedulerNode.objects.get(id=survivor.id).stopped_at is not None


@needs_locks
@pytest.mark.django_db
def test_a_failing_probe_keeps_the_lock_while_its_connection_answers(
    nodes: Callable[[], Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    survivor, other = nodes(), nodes()
    lock = survivor._lock
    assert lock is not None

    def broken(*args: object) -> set[str]:
        raise RuntimeError("the probe query failed")

    monkeypatch.setattr(lock, "_held_by_anyone", broken)
    with pytest.raises(RuntimeError):
        lock.free([other.id])
    assert lock.held
