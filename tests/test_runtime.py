"""The runtime: one owner of node, store, executor and waker, wired by constructors."""

from __future__ import annotations

import ast
import gc
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import cast

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from django.db import connection
from django.test import override_settings
from django.utils import timezone

import django_clockwork
from django_clockwork import DjangoJobStore, api, create_scheduler
from django_clockwork.executor import ClockworkExecutor
from django_clockwork.management.commands.runscheduler import GracefulStop
from django_clockwork.models import ExecutionStatus, Job, JobExecution, SchedulerNode
from django_clockwork.nodes import Node
from django_clockwork.runtime import Runtime


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def run_status(job_id: str) -> str | None:
    run = JobExecution.objects.filter(job_id=job_id).first()
    return None if run is None else run.status


# -- wiring ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_scheduler_wires_one_runtime() -> None:
    scheduler = create_scheduler()
    runtime = scheduler.runtime
    assert isinstance(runtime, Runtime)
    assert runtime.scheduler is scheduler
    assert isinstance(scheduler, BackgroundScheduler)
    assert isinstance(runtime.node, Node)
    assert isinstance(runtime.store, DjangoJobStore)
    assert isinstance(runtime.executor, ClockworkExecutor)
    assert runtime.store.node_id == runtime.executor.node_id == runtime.node.id != ""
    assert runtime.store._claimer.capacity == runtime.executor.claim_capacity
    assert runtime.store._submitted == runtime.executor.submitted_runs
    assert scheduler._jobstores == {"default": runtime.store}
    assert scheduler._executors == {"default": runtime.executor}
    assert (runtime.waker is not None) == (connection.vendor == "postgresql")
    assert not scheduler.running


@pytest.mark.django_db
def test_each_scheduler_has_its_own_runtime() -> None:
    first, second = create_scheduler(), create_scheduler()
    assert first.runtime is not second.runtime
    assert first.runtime.node.id != second.runtime.node.id


@pytest.mark.django_db
def test_blocking_scheduler() -> None:
    assert isinstance(create_scheduler(blocking=True), BlockingScheduler)


@pytest.mark.django_db
def test_options_override_settings() -> None:
    with override_settings(CLOCKWORK={"TIMEZONE": "Asia/Tokyo", "MAX_WORKERS": 3}):
        from_settings = create_scheduler()
        overridden = create_scheduler(timezone="Europe/Paris")
    assert str(from_settings.timezone) == "Asia/Tokyo"
    assert str(overridden.timezone) == "Europe/Paris"
    assert from_settings.runtime.executor.max_workers == 3


# -- starting and stopping ------------------------------------------------------------------


@pytest.fixture
def stopped_afterwards() -> Iterator[list[Runtime]]:
    """Runtimes a test starts; shut down (and their job threads waited for) at the end."""
    runtimes: list[Runtime] = []
    yield runtimes
    for runtime in runtimes:
        if runtime.scheduler.running:
            runtime.scheduler.shutdown(wait=False)
        runtime.wait_for_jobs(10)
    gc.collect()  # close the finished threads' connections before the teardown


def started(runtimes: list[Runtime]) -> Runtime:
    runtime: Runtime = create_scheduler().runtime
    runtimes.append(runtime)
    runtime.scheduler.start()
    return runtime


@pytest.mark.django_db(transaction=True)
def test_start_registers_the_node_and_shutdown_stops_it(
    stopped_afterwards: list[Runtime],
) -> None:
    runtime = started(stopped_afterwards)
    node = SchedulerNode.objects.get(id=runtime.node.id)
    assert (node.hostname, node.pid, node.stopped_at) == (socket.gethostname(), os.getpid(), None)
    runtime.scheduler.shutdown()
    assert SchedulerNode.objects.get(id=runtime.node.id).stopped_at is not None


@pytest.mark.django_db(transaction=True)
def test_stop_gracefully_waits_for_a_quick_job(stopped_afterwards: list[Runtime]) -> None:
    api.add_job("tests.jobs:sleep", "date", args=[0.3], id="quick")
    runtime = started(stopped_afterwards)
    wait_until(lambda: run_status("quick") == ExecutionStatus.RUNNING)
    assert runtime.stop_gracefully(10) is True
    assert not runtime.scheduler.running
    assert run_status("quick") == ExecutionStatus.SUCCEEDED
    assert SchedulerNode.objects.get(id=runtime.node.id).stopped_at is not None


@pytest.mark.django_db(transaction=True)
def test_stop_gracefully_abandons_a_job_that_outlasts_the_timeout(
    stopped_afterwards: list[Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    api.add_job("tests.jobs:sleep", "date", args=[2.5], id="slow")
    runtime = started(stopped_afterwards)
    wait_until(lambda: run_status("slow") == ExecutionStatus.RUNNING)
    assert runtime.stop_gracefully(0.2) is False
    assert runtime.running_jobs == 1  # stopped without waiting for the job
    assert not runtime.scheduler.running
    run = JobExecution.objects.get(job_id="slow")
    assert run.status == ExecutionStatus.ABANDONED
    assert run.exception == "The scheduler was stopped: shutdown timeout of 0.2s reached"
    assert run.finished_at is not None
    assert "1 running job(s) marked abandoned" in caplog.text
    assert runtime.wait_for_jobs(10)  # the job ends later; its success is refused
    assert run_status("slow") == ExecutionStatus.ABANDONED
    assert "Ledger refused 'succeeded' for job 'slow'" in caplog.text


@pytest.mark.django_db(transaction=True)
@override_settings(CLOCKWORK={"POLL_INTERVAL": 1.0, "CLAIM_AHEAD": 0.6})
def test_runs_are_claimed_ahead_and_started_at_their_time(
    stopped_afterwards: list[Runtime],
) -> None:
    """CLAIM_AHEAD: the pass wakes that much before the run time and claims the run; the
    executor holds it (without a thread) until its time."""
    runtime = started(stopped_afterwards)
    due = timezone.now() + timedelta(seconds=2.5)  # seen within a poll, before due - 0.6 s
    api.add_job("tests.jobs:noop", "date", run_date=due, id="ahead")
    wait_until(lambda: run_status("ahead") == ExecutionStatus.SUCCEEDED)
    run = JobExecution.objects.get(job_id="ahead")
    assert run.scheduled_run_time == due
    assert due - timedelta(seconds=0.7) <= run.claimed_at <= due - timedelta(seconds=0.4)
    assert run.started_at is not None
    assert due <= run.started_at <= due + timedelta(seconds=0.3)
    assert runtime.store.get_due_jobs(timezone.now()) == []


@pytest.mark.django_db(transaction=True)
@override_settings(CLOCKWORK={"POLL_INTERVAL": 1.0, "CLAIM_AHEAD": 0.5})
def test_claiming_ahead_skips_no_run_of_a_job_still_running(
    stopped_afterwards: list[Runtime],
) -> None:
    """A run of 0.8 s every second with max_instances=1: claimed 0.5 s ahead, the next run
    would find the previous one unfinished and be skipped; it is left for its due time."""
    runtime = started(stopped_afterwards)
    api.add_job("tests.jobs:sleep", "interval", seconds=1, args=[0.8], id="busy", max_instances=1)
    wait_until(lambda: JobExecution.objects.filter(job_id="busy").count() >= 4, seconds=15)
    runtime.stop_gracefully(10)
    statuses = set(JobExecution.objects.filter(job_id="busy").values_list("status", flat=True))
    assert statuses == {ExecutionStatus.SUCCEEDED}
    runs = list(JobExecution.objects.filter(job_id="busy").order_by("scheduled_run_time"))
    for run in runs:
        assert run.started_at is not None
        assert run.started_at - run.scheduled_run_time < timedelta(seconds=0.3)


@pytest.mark.django_db(transaction=True)
@override_settings(CLOCKWORK={"POLL_INTERVAL": 1.0, "CLAIM_AHEAD": 0.5})
@pytest.mark.parametrize("coalesce", [False, True])
def test_no_run_starts_before_its_time_when_runs_come_faster_than_the_lead(
    stopped_afterwards: list[Runtime], coalesce: bool
) -> None:
    """Every 0.1 s with a 0.5 s lead: a claim ahead takes one run time per job, the next
    one; a job already due is planned at now, as APScheduler would."""
    runtime = started(stopped_afterwards)
    api.add_job(
        "tests.jobs:noop", "interval", seconds=0.1, id="fast", coalesce=coalesce, max_instances=5
    )
    wait_until(lambda: JobExecution.objects.filter(job_id="fast").count() >= 15, seconds=15)
    runtime.stop_gracefully(10)
    runs = JobExecution.objects.filter(job_id="fast", started_at__isnull=False)
    assert runs.count() >= 10
    for run in runs:
        assert run.started_at >= run.scheduled_run_time, (run.scheduled_run_time, run.started_at)


@pytest.mark.django_db
def test_a_store_outside_our_runtime_claims_nothing_ahead() -> None:
    """APScheduler's contract for any other scheduler: ``get_due_jobs(now)`` hands out what
    is due at ``now``, and ``get_next_run_time()`` is the earliest run time."""
    store = DjangoJobStore(poll_interval=None)
    store.start(None, "default")
    soon = timezone.now() + timedelta(seconds=0.1)
    api.add_job("tests.jobs:noop", "date", run_date=soon, id="soon")
    assert store.get_next_run_time() == soon
    assert store.get_due_jobs(timezone.now()) == []
    ahead = DjangoJobStore(poll_interval=None, claim_ahead=0.5)
    ahead.start(None, "default")
    assert ahead.get_next_run_time() == soon - timedelta(seconds=0.5)
    assert [job.id for job in ahead.get_due_jobs(timezone.now())] == ["soon"]


@pytest.mark.django_db(transaction=True)
def test_stop_claiming_leaves_due_jobs(stopped_afterwards: list[Runtime]) -> None:
    api.add_job("tests.jobs:noop", "interval", seconds=60, id="due", next_run_time=None)
    runtime = started(stopped_afterwards)
    runtime.stop_claiming()
    Job.objects.filter(id="due").update(next_run_time=timezone.now())
    runtime.scheduler.wakeup()
    time.sleep(0.5)
    assert not JobExecution.objects.exists()
    assert runtime.store.get_due_jobs(timezone.now()) == []


# -- runscheduler uses the runtime only ------------------------------------------------------


class StubScheduler:
    """Nothing but ``shutdown``: a scheduler's internals are not there to reach."""

    __slots__ = ("calls",)

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def shutdown(self, wait: bool = True) -> None:
        self.calls.append(f"shutdown(wait={wait})")


class StubRuntime:
    """The runtime's stopping surface and nothing else."""

    __slots__ = ("calls", "drained", "release", "scheduler")

    def __init__(self, drained: bool) -> None:
        self.calls: list[str] = []
        self.scheduler = StubScheduler(self.calls)
        self.drained = drained
        self.release = threading.Event()
        self.release.set()

    @property
    def running_jobs(self) -> int:
        return 2

    def stop_claiming(self) -> None:
        self.calls.append("stop_claiming")

    def wait_for_jobs(self, timeout: float | None) -> bool:
        self.release.wait(10)
        self.calls.append(f"wait_for_jobs({timeout})")
        return self.drained

    def abandon_in_flight(self, reason: str) -> int:
        self.calls.append(f"abandon_in_flight({reason})")
        return 2


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record ``os._exit`` instead of exiting (and keep logging open for pytest)."""
    codes: list[int] = []
    monkeypatch.setattr(os, "_exit", codes.append)
    monkeypatch.setattr(logging, "shutdown", lambda: None)
    return codes


def join_shutdown_threads() -> None:
    for thread in threading.enumerate():
        if thread.name == "clockwork-shutdown":
            thread.join(10)


def test_graceful_stop_drains_through_the_runtime(exits: list[int]) -> None:
    runtime = StubRuntime(drained=True)
    stop = GracefulStop(cast(Runtime, runtime), 7.5)
    stop.on_signal(signal.SIGTERM, None)
    join_shutdown_threads()
    assert stop.reason == "received SIGTERM"
    assert runtime.calls == ["stop_claiming", "wait_for_jobs(7.5)", "shutdown(wait=False)"]
    assert exits == []


def test_graceful_stop_timeout_abandons_through_the_runtime(exits: list[int]) -> None:
    runtime = StubRuntime(drained=False)
    stop = GracefulStop(cast(Runtime, runtime), 7.5)
    stop.on_signal(signal.SIGINT, None)
    join_shutdown_threads()
    assert runtime.calls == [
        "stop_claiming",
        "wait_for_jobs(7.5)",
        "abandon_in_flight(The scheduler was stopped: shutdown timeout of 7.5s reached)",
    ]
    assert exits == [1]


def test_second_signal_stops_at_once_through_the_runtime(exits: list[int]) -> None:
    runtime = StubRuntime(drained=True)
    runtime.release.clear()  # the first stop is still waiting for jobs
    stop = GracefulStop(cast(Runtime, runtime), 7.5)
    stop.on_signal(signal.SIGTERM, None)
    stop.on_signal(signal.SIGTERM, None)
    wait_until(lambda: exits == [1])
    assert "abandon_in_flight(The scheduler was stopped: second signal (SIGTERM))" in runtime.calls
    runtime.release.set()
    join_shutdown_threads()


# -- one boundary to APScheduler's internals -------------------------------------------------

#: APScheduler internals that only ``django_clockwork/aps.py`` may touch.
PRIVATE = frozenset(
    {
        "_jobstores",
        "_executors",
        "_modify",
        "_get_run_times",
        "_process_jobs",
        "_main_loop",
        "_run_job_success",
        "_run_job_error",
        "_instances",
        "__setstate__",
    }
)
SOURCE = Path(django_clockwork.__file__).parent


def private_uses(path: Path) -> list[str]:
    """Where code in ``path`` reaches a PRIVATE name: ``x._name`` or ``getattr(x, "_name")``
    (prose in docstrings and comments may name them)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in PRIVATE:
            found.append(f"{path.relative_to(SOURCE)}:{node.lineno} .{node.attr}")
        elif isinstance(node, ast.Constant) and node.value in PRIVATE:
            found.append(f"{path.relative_to(SOURCE)}:{node.lineno} {node.value!r}")
    return found


def test_only_aps_reaches_apschedulers_internals() -> None:
    boundary = SOURCE / "aps.py"
    assert private_uses(boundary)  # the scan sees them where they are
    outside = [
        use
        for path in sorted(SOURCE.rglob("*.py"))
        if path != boundary
        for use in private_uses(path)
    ]
    assert outside == []


def test_waking_a_woken_scheduler_takes_no_lock() -> None:
    """Our executor wakes the scheduler after runs of a burst: an event already set is left
    alone (``Event.set`` takes its lock every time), an unset one is set, and a scheduler
    that never started has nothing to wake."""
    from django_clockwork.aps import ClockworkBackgroundScheduler

    scheduler = ClockworkBackgroundScheduler(runtime=None)
    scheduler.wakeup()  # not started: no event yet
    sets: list[bool] = []

    class Event(threading.Event):
        def set(self) -> None:
            sets.append(True)
            super().set()

    scheduler._event = Event()  # type: ignore[attr-defined]
    scheduler.wakeup()
    scheduler.wakeup()
    assert sets == [True]
    scheduler._event.clear()  # type: ignore[attr-defined]
    scheduler.wakeup()
    assert sets == [True, True]
