from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from apscheduler.job import Job as APJob
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.date import DateTrigger

from django_clockwork import ClockworkExecutor, DjangoJobStore, create_scheduler
from django_clockwork.conf import get_conf


@pytest.fixture(autouse=True)
def _own_declarations() -> Iterator[None]:
    """Declarations a test makes (README examples too) are gone after it."""
    from django_clockwork import declarations

    saved = (
        dict(declarations._declarations),
        dict(declarations._functions),
        dict(declarations._tasks),
    )
    yield
    for registry, before in zip(
        (declarations._declarations, declarations._functions, declarations._tasks),
        saved,
        strict=True,
    ):
        registry.clear()
        registry.update(before)


@pytest.fixture(autouse=True)
def _fresh_conf() -> Iterator[None]:
    get_conf.cache_clear()
    yield
    get_conf.cache_clear()


@pytest.fixture
def scheduler() -> BaseScheduler:
    """A configured scheduler that is never started (lends defaults to jobs)."""
    return create_scheduler()


@pytest.fixture
def store(scheduler: BaseScheduler) -> DjangoJobStore:
    """A started store without the poll cap, as APScheduler's contract expects."""
    jobstore = DjangoJobStore(poll_interval=None)
    jobstore.start(scheduler, "default")
    return jobstore


@pytest.fixture
def executor(scheduler: BaseScheduler) -> Iterator[ClockworkExecutor]:
    """A started executor with 4 threads, shut down after the test."""
    pool = ClockworkExecutor(max_workers=4)
    pool.start(scheduler, "default")
    yield pool
    pool.shutdown(wait=True)


MakeJob = Callable[..., APJob]


@pytest.fixture
def make_job(scheduler: BaseScheduler) -> MakeJob:
    def make(
        id: str = "job",
        func: str = "tests.jobs:noop",
        trigger: Any = None,
        next_run_time: datetime | str | None = "auto",
        **options: Any,
    ) -> APJob:
        trigger = trigger or DateTrigger(datetime(2999, 1, 1, tzinfo=timezone.utc))
        defaults: dict[str, Any] = {
            "executor": "default",
            "args": (),
            "kwargs": {},
            "name": id,
            "misfire_grace_time": 60,
            "coalesce": True,
            "max_instances": 1,
        }
        defaults.update(options)
        if next_run_time == "auto":
            next_run_time = trigger.get_next_fire_time(None, datetime.now(timezone.utc))
        return APJob(
            scheduler, id=id, func=func, trigger=trigger, next_run_time=next_run_time, **defaults
        )

    return make


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


def run_scheduler_until_succeeded(job_id: str, runs: int, timeout: float = 10) -> int:
    """Run a real scheduler until ``job_id`` has ``runs`` succeeded runs (or ``timeout``
    passes); returns how many it has."""
    from django_clockwork.models import JobExecution

    def succeeded() -> int:
        return JobExecution.objects.filter(job_id=job_id, status="succeeded").count()

    scheduler = create_scheduler()
    scheduler.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and succeeded() < runs:
            time.sleep(0.05)
    finally:
        scheduler.shutdown()
        gc.collect()  # close the finished scheduler thread's connection before teardown
    return succeeded()
