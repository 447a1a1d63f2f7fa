"""PostgreSQL LISTEN/NOTIFY wake-ups; other databases poll."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from django_clockwork import DjangoJobStore, api, create_scheduler, wakeups
from django_clockwork.wakeups import PostgresWaker

from .conftest import MakeJob, utc

pytestmark = pytest.mark.django_db(transaction=True)
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="LISTEN/NOTIFY is PostgreSQL's"
)


class FakeScheduler:
    def __init__(self) -> None:
        self.wakeups = 0
        self.woken = threading.Event()

    def wakeup(self) -> None:
        self.wakeups += 1
        self.woken.set()

    def wait(self, timeout: float = 3.0) -> float:
        started = time.monotonic()
        assert self.woken.wait(timeout), "the scheduler was not woken"
        self.woken.clear()
        return time.monotonic() - started


@pytest.fixture
def waker():  # type: ignore[no-untyped-def]
    scheduler = FakeScheduler()
    listener = PostgresWaker(scheduler.wakeup, "default")
    listener.start()
    assert listener.connected.wait(5)
    yield listener, scheduler
    listener.stop()


def listener_pids() -> list[int]:
    """This test database's listeners (test runs beside this one have their own)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN clockwork_jobs%%' "
            "AND pid <> pg_backend_pid() AND datname = current_database()"
        )
        return [pid for (pid,) in cursor.fetchall()]


@postgres_only
def test_any_change_wakes_the_scheduler(waker) -> None:  # type: ignore[no-untyped-def]
    _listener, scheduler = waker
    api.add_job("tests.jobs:noop", "interval", seconds=30, id="tick")
    assert scheduler.wait() < 1.0
    with connection.cursor() as cursor:  # raw SQL counts too
        cursor.execute("UPDATE django_clockwork_job SET name = 'renamed'")
    assert scheduler.wait() < 1.0
    api.remove_job("tick")
    assert scheduler.wait() < 1.0


@postgres_only
def test_a_claim_wakes_nobody(waker, scheduler, make_job: MakeJob) -> None:  # type: ignore[no-untyped-def]
    _listener, fake = waker
    store = DjangoJobStore(poll_interval=None)
    store.start(scheduler, "default")
    store.add_job(make_job("tick", trigger=wakeups_trigger()))
    fake.wait()
    assert len(store.get_due_jobs(utc(2030, 1, 1, 0, 0, 1))) == 1
    assert not fake.woken.wait(1.0)


@postgres_only
def test_reconnects_and_wakes_once(waker) -> None:  # type: ignore[no-untyped-def]
    listener, scheduler = waker
    listener.backoff = 0.1
    pids = listener_pids()
    assert len(pids) == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", pids)
    scheduler.wait(10)  # the wake-up after reconnecting
    assert listener.connected.wait(5)
    assert listener_pids() not in ([], pids)
    api.add_job("tests.jobs:noop", "interval", seconds=30, id="after")
    assert scheduler.wait() < 1.0


def test_only_postgresql_listens() -> None:
    scheduler = create_scheduler()
    expected = connection.vendor == "postgresql"
    assert wakeups.supported("default") is expected
    assert (scheduler.runtime.waker is not None) is expected


def wakeups_trigger():  # type: ignore[no-untyped-def]
    from apscheduler.triggers.interval import IntervalTrigger

    return IntervalTrigger(minutes=1, start_date=utc(2030, 1, 1), timezone="UTC")


def notify_function_config() -> list[str] | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT proconfig FROM pg_proc WHERE proname = 'clockwork_notify_job_change'"
        )
        (config,) = cursor.fetchone()
    return config  # type: ignore[no-any-return]


@postgres_only
def test_the_notify_function_has_a_fixed_search_path() -> None:
    assert notify_function_config() == ["search_path=pg_catalog, pg_temp"]


@postgres_only
def test_the_search_path_migration_is_reversible() -> None:
    from django.core.management import call_command

    call_command("migrate", "django_clockwork", "0004", verbosity=0)
    try:
        assert notify_function_config() is None
    finally:
        call_command("migrate", "django_clockwork", verbosity=0)
    assert notify_function_config() == ["search_path=pg_catalog, pg_temp"]


@postgres_only
def test_a_change_still_notifies_under_a_hostile_search_path(waker) -> None:  # type: ignore[no-untyped-def]
    """A schema earlier in the writer's search path cannot shadow ``pg_notify``."""
    _listener, scheduler = waker
    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA IF NOT EXISTS clockwork_hostile")
        cursor.execute(
            "CREATE OR REPLACE FUNCTION clockwork_hostile.pg_notify(text, text) RETURNS void "
            "AS $$ BEGIN RAISE EXCEPTION 'shadowed'; END $$ LANGUAGE plpgsql"
        )
        cursor.execute("SET search_path = clockwork_hostile, pg_catalog, public")
        try:
            api.add_job("tests.jobs:noop", "interval", seconds=30, id="hostile")
            assert scheduler.wait() < 3
        finally:
            cursor.execute("RESET search_path")
            cursor.execute("DROP SCHEMA clockwork_hostile CASCADE")
