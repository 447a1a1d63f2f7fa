"""History retention: what is pruned, in batches, once across the fleet, and the command."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_clockwork import api, leases
from django_clockwork.checks import check_settings
from django_clockwork.conf import get_conf
from django_clockwork.models import Job, JobExecution, Lease
from django_clockwork.nodes import Node
from django_clockwork.retention import LEASE, Policy, Pruner, PruneReport

from .process_helpers import ROOT

DAY = 86400.0
NOW = timezone.now()
ALL_RULES = Policy(max_age=30 * DAY, max_per_job=3, finished_job_retention=7 * DAY)


def run(job_id: str, days_ago: float, status: str = "succeeded") -> JobExecution:
    return JobExecution.objects.create(
        job_id=job_id, scheduled_run_time=NOW - timedelta(days=days_ago), status=status
    )


def one_off(job_id: str, finished: datetime | None) -> Job:
    return Job.objects.create(
        id=job_id,
        func="tests.jobs:noop",
        trigger={"type": "date", "run_date": "2030-01-01T00:00:00+00:00", "timezone": "UTC"},
        finished_at=finished,
    )


def remaining(job_id: str | None = None) -> list[tuple[str, int, str]]:
    runs = JobExecution.objects.all() if job_id is None else JobExecution.objects.for_job(job_id)
    return sorted(
        (row.job_id, round((NOW - row.scheduled_run_time) / timedelta(days=1)), row.status)
        for row in runs
    )


def pruner(**rules: object) -> Pruner:
    off: dict[str, object] = {"max_age": None, "max_per_job": None, "finished_job_retention": None}
    return Pruner("default", Policy(**{**off, **rules}))  # type: ignore[arg-type]


# -- the rules ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_age_removes_old_finished_runs_and_never_unfinished_ones() -> None:
    for status in ("succeeded", "failed", "missed", "skipped", "abandoned", "enqueued"):
        run(status, 40, status)
    run("waiting", 40, "scheduled")
    run("busy", 40, "running")
    run("recent", 29)
    report = pruner(max_age=30 * DAY).prune(now=NOW)
    assert report.runs_by_age == 6
    assert remaining() == [
        ("busy", 40, "running"),
        ("recent", 29, "succeeded"),
        ("waiting", 40, "scheduled"),
    ]


@pytest.mark.django_db
def test_per_job_count_keeps_the_newest_runs_of_each_job() -> None:
    for days in range(1, 7):
        run("busy", days)
    run("busy", 10, "running")
    run("quiet", 50)
    report = pruner(max_per_job=3).prune(now=NOW)
    assert report.runs_by_count == 3
    assert remaining() == [
        ("busy", 1, "succeeded"),
        ("busy", 2, "succeeded"),
        ("busy", 3, "succeeded"),
        ("busy", 10, "running"),
        ("quiet", 50, "succeeded"),
    ]


@pytest.mark.django_db
def test_dry_run_counts_what_prune_removes_without_counting_twice() -> None:
    for days in (1, 2, 3, 4, 5, 40, 41):
        run("job", days)
    one_off("done-long-ago", NOW - timedelta(days=8))
    one_off("done-yesterday", NOW - timedelta(days=1))
    one_off("pending", None)
    planned = Pruner("default", ALL_RULES).plan(now=NOW)
    assert (planned.runs_by_age, planned.runs_by_count, planned.jobs) == (2, 2, 1)
    assert JobExecution.objects.count() == 7
    assert Job.objects.count() == 3
    done = Pruner("default", ALL_RULES).prune(now=NOW)
    assert (done.runs_by_age, done.runs_by_count, done.jobs) == (2, 2, 1)
    assert remaining() == [
        ("job", 1, "succeeded"),
        ("job", 2, "succeeded"),
        ("job", 3, "succeeded"),
    ]
    assert set(Job.objects.values_list("id", flat=True)) == {"done-yesterday", "pending"}


@pytest.mark.django_db
def test_finished_one_off_jobs_go_and_their_history_stays() -> None:
    one_off("report", NOW - timedelta(days=8))
    run("report", 9)
    report = pruner(finished_job_retention=7 * DAY).prune(now=NOW)
    assert report.jobs == 1
    assert not Job.objects.exists()
    assert remaining() == [("report", 9, "succeeded")]


@pytest.mark.django_db
def test_deletes_in_bounded_batches() -> None:
    for days in range(31, 36):
        run("job", days)
    small = Pruner("default", Policy(30 * DAY, None, None), batch_size=2)
    with CaptureQueriesContext(connection) as queries:
        assert small.prune(now=NOW).runs_by_age == 5
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3
    assert not JobExecution.objects.exists()


@pytest.mark.django_db
def test_a_spent_budget_stops_and_says_so() -> None:
    run("job", 40)
    report = Pruner("default", ALL_RULES).prune(now=NOW, budget=0)
    assert not report.complete
    assert JobExecution.objects.count() == 1


def test_report_reads_as_a_sentence() -> None:
    text = str(PruneReport(ALL_RULES, runs_by_age=3, runs_by_count=2, jobs=1))
    assert text == (
        "3 run(s) older than 30 days; 2 run(s) beyond the newest 3 of their job; "
        "1 one-off job(s) finished more than 7 days ago"
    )


# -- once across the fleet ---------------------------------------------------------------------


def pruned_by(node: Node) -> bool:
    """Whether ``node`` took the turn; waits for its pruning thread."""
    thread = node.prune()
    if thread is None:
        return False
    thread.join(10)
    return True


@pytest.mark.django_db(transaction=True)
def test_two_nodes_do_not_both_prune_in_one_interval() -> None:
    with override_settings(CLOCKWORK={"PRUNE_INTERVAL": 600, "HISTORY_MAX_AGE": 30 * DAY}):
        first, second = Node(), Node()
    run("job", 40)
    assert pruned_by(first)
    assert not JobExecution.objects.exists()
    run("job", 41)
    assert not pruned_by(second)
    assert not pruned_by(first)
    assert JobExecution.objects.count() == 1
    Lease.objects.filter(name=LEASE).update(free_at=NOW - timedelta(seconds=1))
    assert pruned_by(second)
    assert not JobExecution.objects.exists()
    assert Lease.objects.get(name=LEASE).holder == second.id


def race_for_the_lease(nodes: int) -> list[str]:
    """``nodes`` threads ask for one lease at the same moment; returns who got it."""
    start, winners = threading.Barrier(nodes), []

    def ask(holder: str) -> None:
        try:
            start.wait(10)
            if leases.take("race", holder, 600, "default"):
                winners.append(holder)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ask, args=(f"node-{i}",)) for i in range(nodes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return winners


@pytest.mark.django_db(transaction=True)
def test_one_of_many_nodes_asking_at_once_gets_the_turn() -> None:
    assert len(race_for_the_lease(4)) == 1  # the row does not exist yet: one insert wins
    Lease.objects.filter(name="race").update(free_at=NOW - timedelta(seconds=1))
    assert len(race_for_the_lease(4)) == 1  # the row is free: one conditional update wins
    assert race_for_the_lease(4) == []  # taken for 600 s


@pytest.mark.django_db
def test_work_left_over_frees_the_lease_for_the_next_heartbeat() -> None:
    run("job", 40)
    rules = Pruner("default", ALL_RULES)
    assert rules.take_turn("node-a")
    assert not rules.prune_turn("node-a", budget=0).complete
    assert rules.take_turn("node-b")
    assert rules.prune_turn("node-b", budget=10).complete
    assert not JobExecution.objects.exists()
    assert not rules.take_turn("node-a")


@pytest.mark.django_db
def test_a_stopping_node_stops_pruning() -> None:
    run("job", 40)
    stop = threading.Event()
    stop.set()
    assert not Pruner("default", ALL_RULES).prune(stop=stop).complete
    assert JobExecution.objects.count() == 1


@pytest.mark.django_db
def test_no_turn_is_taken_when_every_rule_is_off() -> None:
    assert not Pruner("default", Policy(None, None, None)).take_turn("node")
    assert not Lease.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_prunes() -> None:
    run("job", 40)
    settings = {"HEARTBEAT_INTERVAL": 0.1, "NODE_TIMEOUT": 1, "PRUNE_INTERVAL": 600}
    with override_settings(CLOCKWORK=settings):
        node = Node()
        node.start()
        try:
            deadline = time.monotonic() + 10
            while JobExecution.objects.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            node.stop()
    assert not JobExecution.objects.exists()


# -- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {"HISTORY_MAX_AGE": 0},
        {"HISTORY_MAX_AGE": "30d"},
        {"HISTORY_MAX_PER_JOB": 0},
        {"HISTORY_MAX_PER_JOB": 2.5},
        {"FINISHED_JOB_RETENTION": -1},
        {"PRUNE_INTERVAL": None},
    ],
)
def test_bad_retention_settings_are_reported(value: dict[str, object]) -> None:
    with override_settings(CLOCKWORK=value):
        assert [message.id for message in check_settings()] == ["clockwork.E003"]


def test_none_keeps_everything() -> None:
    none = {"HISTORY_MAX_AGE": None, "HISTORY_MAX_PER_JOB": None, "FINISHED_JOB_RETENTION": None}
    with override_settings(CLOCKWORK=none):
        assert check_settings() == []
        assert not Policy.from_conf(get_conf()).enabled


# -- api ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_remove_job_removes_a_finished_job_and_keeps_its_history() -> None:
    one_off("report", NOW - timedelta(hours=1))
    run("report", 0.05)
    api.remove_job("report")
    assert not Job.objects.exists()
    assert remaining() == [("report", 0, "succeeded")]


# -- manage.py clockwork -----------------------------------------------------------------------


def clockwork(*args: str) -> str:
    out = StringIO()
    call_command("clockwork", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_prune_command_dry_run_then_prune() -> None:
    run("job", 40)
    one_off("old", NOW - timedelta(days=8))
    expected = [
        "  1 run(s) older than 30 days",
        "  0 run(s) beyond the newest 10000 of their job",
        "  1 one-off job(s) finished more than 7 days ago",
    ]
    assert clockwork("prune", "--dry-run").splitlines() == [
        "Would remove (dry run, nothing deleted):",
        *expected,
    ]
    assert JobExecution.objects.count() == 1
    assert Job.objects.count() == 1
    assert clockwork("prune").splitlines() == ["Removed:", *expected]
    assert not JobExecution.objects.exists()
    assert not Job.objects.exists()
    assert clockwork("prune", "-v", "0") == ""


@pytest.mark.django_db
def test_prune_command_with_every_rule_off() -> None:
    none = {"HISTORY_MAX_AGE": None, "HISTORY_MAX_PER_JOB": None, "FINISHED_JOB_RETENTION": None}
    with override_settings(CLOCKWORK=none):
        assert clockwork("prune").startswith("Nothing to prune")


@pytest.mark.parametrize("args", [(), ("nope",), ("prune", "--bogus")])
def test_bad_arguments_are_a_command_error(args: tuple[str, ...]) -> None:
    with pytest.raises(CommandError):
        call_command("clockwork", *args)


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "tests/manage.py", "clockwork", *args],
        cwd=ROOT,
        env={**os.environ, "CLOCKWORK_TEST_DB_NAME": connection.settings_dict["NAME"]},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db(transaction=True)
def test_prune_dry_run_in_a_real_process() -> None:
    run("job", 40)
    done = manage("prune", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == [
        "Would remove (dry run, nothing deleted):",
        "  1 run(s) older than 30 days",
    ]
    assert JobExecution.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_unknown_subcommand_exits_2_with_a_short_error() -> None:
    done = manage("nope")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "usage: manage.py clockwork [options] {list,show,run,pause,resume,remove,sync,prune} ...",
        "manage.py clockwork: error: argument subcommand: invalid choice: 'nope' "
        "(choose from 'list', 'show', 'run', 'pause', 'resume', 'remove', 'sync', 'prune')",
    ]
