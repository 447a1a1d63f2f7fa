"""Hung jobs are visible: the watchdog logs and notes long runs and a scheduler with no free
worker, once each, on a real runtime (small thresholds)."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any, cast

import pytest
from django.test import override_settings

from django_clockwork import api, create_scheduler
from django_clockwork.executor import ClockworkExecutor, Flight
from django_clockwork.models import ExecutionStatus, JobExecution
from django_clockwork.runtime import Runtime
from django_clockwork.watchdog import Watchdog
from tests import jobs

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)

LONG = "has been running for"
NO_FREE = "No free worker thread"
FREE_AGAIN = "is free again"

Start = Callable[..., Runtime]


def wait_until(condition: Callable[[], Any], seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return result


def run_of(job_id: str) -> JobExecution | None:
    return JobExecution.objects.filter(job_id=job_id).order_by("scheduled_run_time").first()


def lines(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


@pytest.fixture
def start(caplog: pytest.LogCaptureFixture) -> Iterator[Start]:
    """Starts a runtime with these CLOCKWORK settings; at the end releases the hung jobs."""
    caplog.set_level(logging.INFO, logger="django_clockwork.watchdog")
    jobs.RELEASE.clear()
    runtimes: list[Runtime] = []

    def started(**clockwork: Any) -> Runtime:
        with override_settings(CLOCKWORK={"POLL_INTERVAL": 0.2, **clockwork}):
            runtime: Runtime = create_scheduler().runtime
        runtimes.append(runtime)
        runtime.scheduler.start()
        return runtime

    yield started
    jobs.RELEASE.set()
    for runtime in runtimes:
        if runtime.scheduler.running:
            runtime.scheduler.shutdown(wait=False)
        assert runtime.wait_for_jobs(10)
    gc.collect()  # close the finished threads' connections before the teardown


def hang(job_id: str, **options: Any) -> None:
    api.add_job("tests.jobs:wait_for_release", "date", args=[30], id=job_id, **options)


def test_a_long_run_is_logged_and_noted_once(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    hang("slow")
    start(LONG_RUNNING_AFTER=0.3, NO_FREE_WORKER_AFTER=None)
    wait_until(lambda: (run := run_of("slow")) is not None and run.warning)
    time.sleep(0.6)  # several more checks
    (line,) = lines(caplog, LONG)
    assert line.levelno == logging.WARNING
    message = line.getMessage()
    assert message.startswith('Job "wait_for_release (trigger: date[')
    assert "(id 'slow', scheduled at " in message
    assert "longer than its long-running threshold of 0.3s" in message
    assert "on node " in message
    assert " pid " in message
    run = run_of("slow")
    assert run is not None
    assert run.status == ExecutionStatus.RUNNING
    (note,) = run.warning.splitlines()
    assert note.endswith("(its long-running threshold is 0.3s)")
    assert "Long running: still running after 0." in note
    assert list(JobExecution.objects.warned()) == [run]
    jobs.RELEASE.set()
    wait_until(lambda: run_of("slow").status == ExecutionStatus.SUCCEEDED)  # type: ignore[union-attr]
    assert run_of("slow").warning == run.warning  # type: ignore[union-attr]


@pytest.mark.parametrize("setting", [None, 0.3])
def test_a_job_threshold_overrides_the_setting(
    setting: float | None, start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    hang("own", long_running_after=0.3)
    hang("patient", long_running_after=3600)
    hang("default")
    start(LONG_RUNNING_AFTER=setting, NO_FREE_WORKER_AFTER=None)
    wait_until(lambda: (run := run_of("own")) is not None and run.warning)
    time.sleep(0.8)
    warned = {run.job_id for run in JobExecution.objects.warned()}
    assert warned == ({"own"} if setting is None else {"own", "default"})
    assert len(lines(caplog, LONG)) == len(warned)
    assert {run.status for run in JobExecution.objects.all()} == {ExecutionStatus.RUNNING}


def test_no_free_worker_is_logged_once_per_episode(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    hang("hung-1")
    hang("hung-2")
    start(MAX_WORKERS=2, NO_FREE_WORKER_AFTER=0.3, LONG_RUNNING_AFTER=None)
    wait_until(lambda: JobExecution.objects.running().count() == 2)
    api.add_job("tests.jobs:noop", "interval", seconds=1, id="waiting")
    wait_until(lambda: lines(caplog, NO_FREE))
    time.sleep(0.8)  # several more checks and polls
    (line,) = lines(caplog, NO_FREE)
    assert line.levelno == logging.WARNING
    message = line.getMessage()
    assert "while due runs wait (MAX_WORKERS 2)" in message
    assert "(id 'hung-1', scheduled at " in message
    assert "(id 'hung-2', scheduled at " in message
    held = {run.job_id: run.warning for run in JobExecution.objects.warned()}
    assert set(held) == {"hung-1", "hung-2"}
    assert all("Held a worker thread while due runs waited" in note for note in held.values())
    assert not JobExecution.objects.filter(job_id="waiting").exclude(status="scheduled").exists()
    assert not lines(caplog, FREE_AGAIN)
    jobs.RELEASE.set()
    wait_until(lambda: lines(caplog, FREE_AGAIN))
    wait_until(lambda: JobExecution.objects.filter(job_id="waiting", status="succeeded").exists())
    (again,) = lines(caplog, FREE_AGAIN)
    assert again.levelno == logging.INFO
    assert len(lines(caplog, NO_FREE)) == 1


def test_full_workers_with_nothing_due_are_not_a_warning(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    hang("hung-1")
    hang("hung-2")
    start(MAX_WORKERS=2, NO_FREE_WORKER_AFTER=0.3, LONG_RUNNING_AFTER=None)
    wait_until(lambda: JobExecution.objects.running().count() == 2)
    time.sleep(1.0)
    assert not lines(caplog, NO_FREE)
    assert not JobExecution.objects.warned().exists()


class FakeLedger:
    def __init__(self) -> None:
        self.notes: list[tuple[str, str]] = []

    def warned(self, job_id: str, run_time: object, note: str) -> bool:
        self.notes.append((job_id, note))
        return True


class FakeExecutor:
    """The executor's surface the watchdog reads: flights, free slots, ledgers."""

    max_workers = 1

    def __init__(self) -> None:
        self.running: list[Flight] = []
        self.book = FakeLedger()

    def flights(self) -> list[Flight]:
        return list(self.running)

    def free_slots(self) -> int:
        return self.max_workers - len(self.running)

    def ledger(self, database: str) -> FakeLedger:
        return self.book


def test_each_episode_without_a_free_worker_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="django_clockwork.watchdog")
    executor = FakeExecutor()
    executor.max_workers = 2
    watchdog = Watchdog(
        cast(ClockworkExecutor, executor),
        lambda: True,
        long_running_after=None,
        no_free_worker_after=10,
        node="test",
    )
    assert watchdog.interval == 1.0
    hung = Flight("default", "hung", T0, "hung", started=0.0, long_running_after=None)
    first = Flight("default", "first", T0, "first", started=0.0, long_running_after=None)
    executor.running = [hung, first]
    for now in (0.0, 5.0, 10.0, 11.0, 50.0):  # full from 0 s: warned at 10 s, once
        watchdog.check(now)
    assert len(lines(caplog, NO_FREE)) == 1
    assert "for 0:00:10 while due runs wait (MAX_WORKERS 2)" in lines(caplog, NO_FREE)[0].message
    executor.running = [hung]  # "first" finished
    watchdog.check(51.0)
    watchdog.check(52.0)
    assert len(lines(caplog, FREE_AGAIN)) == 1
    assert "after 0:00:51 with none free" in lines(caplog, FREE_AGAIN)[0].message
    second = Flight("default", "second", T0, "second", started=60.0, long_running_after=None)
    executor.running = [hung, second]  # full again: a new episode
    for now in (60.0, 65.0, 70.0, 80.0):
        watchdog.check(now)
    assert len(lines(caplog, NO_FREE)) == 2
    assert "running for 0:01:10" in lines(caplog, NO_FREE)[1].message  # the hung run
    assert [job for job, _ in executor.book.notes] == ["hung", "first", "second"]  # once each
    assert not lines(caplog, LONG)


def test_a_run_is_noted_long_running_once(caplog: pytest.LogCaptureFixture) -> None:
    executor = FakeExecutor()
    watchdog = Watchdog(
        cast(ClockworkExecutor, executor),
        lambda: False,
        long_running_after=600,
        no_free_worker_after=None,
        node="test",
    )
    executor.running = [Flight("default", "slow", T0, "slow", 100.0, long_running_after=None)]
    for now in (100.0, 699.0, 700.0, 701.0, 5000.0):
        watchdog.check(now)
    (line,) = lines(caplog, LONG)
    assert "has been running for 0:10:00 on node test" in line.message
    assert [job for job, _ in executor.book.notes] == ["slow"]
    assert not lines(caplog, NO_FREE)  # nothing waits
