"""Embedded mode: the wrapped application starts one scheduler per serving process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application
from django.test import Client

from django_clockwork import embedded
from django_clockwork.models import SchedulerNode

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
