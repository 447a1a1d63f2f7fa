"""Embedded mode: the wrapped application starts one scheduler per serving process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.test import Client

from django_clockwork import api, embedded
from django_clockwork.models import ExecutionStatus, JobExecution, SchedulerNode
from tests import jobs
from tests.hung_exit import RUNNING
from tests.process_helpers import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _stop_embedded() -> Iterator[None]:
    yield
    embedded.stop()


def wait_until_running(timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not embedded.running() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert embedded.running()


def wait_for_status(job_id: str, status: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    runs = JobExecution.objects.filter(job_id=job_id, status=status)
    while not runs.exists():
        assert time.monotonic() < deadline, f"{job_id!r} never became {status}"
        time.sleep(0.02)


def test_wsgi_first_request_starts_one_scheduler() -> None:
    application = embedded.with_scheduler(get_wsgi_application())
    environ = Client()._base_environ(PATH_INFO="/admin/login/", REQUEST_METHOD="GET")
    statuses = []
    for _ in range(3):
        body = application(dict(environ), lambda status, headers: statuses.append(status))
        b"".join(body)
    assert statuses[0].startswith("200")
    wait_until_running()
    first = embedded.start()
    assert embedded.start() is first
    assert first.running
    assert SchedulerNode.objects.filter(stopped_at__isnull=True).count() == 1


def test_asgi_application_is_wrapped_as_asgi() -> None:
    application = embedded.with_scheduler(get_asgi_application())
    sent = []
    messages = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, object]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/admin/login/",
        "raw_path": b"/admin/login/",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
        "root_path": "",
    }
    asyncio.run(application(scope, receive, send))
    assert sent[0]["status"] == 200
    wait_until_running()


def test_stop_marks_the_node_stopped() -> None:
    scheduler = embedded.start()
    node_id = scheduler.runtime.node.id
    embedded.stop()
    assert not embedded.running()
    assert SchedulerNode.objects.get(id=node_id).stopped_at is not None


def test_stop_returns_within_its_timeout_when_a_job_hangs() -> None:
    api.add_job("tests.jobs:wait_for_release", "date", args=[60], id="hangs")
    jobs.RELEASE.clear()
    scheduler = embedded.start()
    try:
        wait_for_status("hangs", ExecutionStatus.RUNNING)
        began = time.monotonic()
        embedded.stop(timeout=0.3)
        assert time.monotonic() - began < 5
        assert not embedded.running()
        run = JobExecution.objects.get(job_id="hangs")
        assert run.status == ExecutionStatus.ABANDONED
        assert run.exception == "The scheduler was stopped: shutdown timeout of 0.3s reached"
    finally:
        jobs.RELEASE.set()
        assert scheduler.runtime.wait_for_jobs(10)


@pytest.mark.processes
@pytest.mark.parametrize("mode", ["embedded", "runtime"])
def test_interpreter_exit_is_bounded_when_a_job_hangs(mode: str) -> None:
    """A job that never ends does not keep the process alive: at exit the scheduler waits
    SHUTDOWN_TIMEOUT (1 s), records the run abandoned, and the process exits."""
    api.add_job("tests.jobs:sleep", "date", args=[3600], id="hangs")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.hung_exit", "hangs", mode],
        cwd=ROOT,
        env={
            **os.environ,
            "CLOCKWORK_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
            "CLOCKWORK_TEST_SETTINGS": json.dumps({"SHUTDOWN_TIMEOUT": 1.0}),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.strip() == RUNNING, first + process.stdout.read()
        began = time.monotonic()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            raise AssertionError("the process did not exit within 15 s of its end") from None
        exit_took = time.monotonic() - began
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    print(f"{mode}: exit took {exit_took:.2f}s after the job started hanging")
    assert process.returncode == 0, process.stdout.read()
    assert 1.0 <= exit_took < 8, exit_took
    run = JobExecution.objects.get(job_id="hangs")
    assert run.status == ExecutionStatus.ABANDONED
    assert run.exception == "The scheduler was stopped: shutdown timeout of 1.0s reached"
