"""Nothing in a scheduling pass ends the scheduler's loop: it logs and carries on."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import OperationalError
from django.test import override_settings

from django_clockwork import api, create_scheduler
from django_clockwork.models import JobExecution

pytestmark = pytest.mark.django_db(transaction=True)


def run_until(condition: Callable[[], bool], scheduler: Any, timeout: float = 10.0) -> None:
    scheduler.start()
    try:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.shutdown()
        gc.collect()
    assert condition()


def successes() -> int:
    return JobExecution.objects.filter(job_id="tick", status="succeeded").count()


def test_a_failing_listener_is_logged_and_survived(caplog: pytest.LogCaptureFixture) -> None:
    api.add_job("tests.jobs:noop", "interval", seconds=0.2, id="tick")
    with override_settings(CLOCKWORK={"LISTENERS": ["tests.jobs.broken_listener"]}):
        scheduler = create_scheduler()
    run_until(lambda: successes() >= 3, scheduler)
    assert "this listener fails on purpose" in caplog.text


@pytest.mark.parametrize("method", ["get_due_jobs", "get_next_run_time", "update_job"])
def test_store_errors_do_not_end_the_loop(
    method: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    api.add_job("tests.jobs:noop", "interval", seconds=0.2, id="tick")
    scheduler = create_scheduler(jobstore_retry_interval=0.1)
    store = scheduler._jobstores["default"]
    real = getattr(store, method)
    failures = iter(range(3))

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if next(failures, None) is not None:
            raise OperationalError(f"{method}: server closed the connection unexpectedly")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, method, flaky)
    with caplog.at_level(logging.WARNING):
        run_until(lambda: successes() >= 3, scheduler)
    assert f"{method}: server closed the connection unexpectedly" in caplog.text
    assert scheduler._thread is None  # shut down normally, not died
