"""Store calls survive a connection the server dropped: they retry on a new one."""

from __future__ import annotations

import logging

import pytest
from django.db import connection, connections

from django_clockwork import DjangoJobStore, api

from .conftest import MakeJob, utc

pytestmark = pytest.mark.django_db(transaction=True)
needs_a_server = pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="SQLite has no server to drop a connection; its lock waits are in test_processes",
)


@pytest.fixture(autouse=True)
def persistent_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """With CONN_MAX_AGE=0 every call reconnects anyway; keep the connection, as a
    project with CONN_MAX_AGE=None does, so that only the retry can save the call."""
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", None)
    connection.close()


def drop_default_connection() -> None:
    """Make the server end this thread's connection, as a restart or a timeout would."""
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        pid = connection.connection.info.backend_pid
        with connections["other"].cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    else:
        thread_id = connection.connection.thread_id()
        with connections["other"].cursor() as cursor:
            cursor.execute(f"KILL {int(thread_id)}")


@needs_a_server
@pytest.mark.django_db(transaction=True, databases=["default", "other"])
def test_store_calls_retry_on_a_new_connection(
    store: DjangoJobStore, make_job: MakeJob, caplog: pytest.LogCaptureFixture
) -> None:
    api.add_job("tests.jobs:noop", "interval", minutes=1, id="tick")
    with caplog.at_level(logging.WARNING, logger="django_clockwork"):
        drop_default_connection()
        assert store.lookup_job("tick") is not None
        drop_default_connection()
        store.add_job(make_job("added-after-drop"))
        drop_default_connection()
        assert store.get_due_jobs(utc(2000, 1, 1)) == []
    assert caplog.text.count("retrying in") == 3
    assert {job.id for job in store.get_all_jobs()} == {"tick", "added-after-drop"}


@needs_a_server
@pytest.mark.django_db(transaction=True, databases=["default", "other"])
def test_next_run_time_answers_after_a_drop(store: DjangoJobStore) -> None:
    drop_default_connection()
    store.get_next_run_time()  # may answer now + retry interval, never raises
    assert store.get_next_run_time() is None  # and the next call works again


@pytest.mark.django_db(transaction=True)
def test_a_claim_whose_commit_answer_was_lost_is_recovered(
    scheduler, make_job: MakeJob, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The server committed the claim, but the connection dropped before we heard it: the
    retried pass must still hand those run times out, not leave them ``scheduled`` for ever."""
    from apscheduler.triggers.interval import IntervalTrigger
    from django.db import OperationalError

    from django_clockwork import reconnect
    from django_clockwork.models import JobExecution

    monkeypatch.setattr(reconnect, "RETRY_DELAYS", (0.0,))
    store = DjangoJobStore(poll_interval=None, node_id="node-1", submitted=set)
    store.start(scheduler, "default")
    trigger = IntervalTrigger(minutes=1, start_date=utc(2030, 1, 1), timezone="UTC")
    store.add_job(make_job("tick", trigger=trigger))
    store.add_job(make_job("gone", trigger=trigger))
    real_claim = store._claimer.claim
    calls = []

    def commit_then_lose_the_answer(*args):  # type: ignore[no-untyped-def]
        jobs = real_claim(*args)
        calls.append(jobs)
        if len(calls) == 1:
            api.remove_job("gone")  # removed before the recovery: its run is abandoned
            raise OperationalError("(2013, 'Lost connection to server during query')")
        return jobs

    monkeypatch.setattr(store._claimer, "claim", commit_then_lose_the_answer)
    (job,) = store.get_due_jobs(utc(2030, 1, 1, 0, 0, 1))
    assert calls[1] == []  # the retry found nothing due: the first claim had committed
    assert job.id == "tick"
    assert job._clockwork_claim.run_times == (utc(2030, 1, 1),)
    assert job.next_run_time == utc(2030, 1, 1)  # so APScheduler submits it this pass
    assert JobExecution.objects.get(job_id="gone").status == "abandoned"
    store.update_job(job)  # the scheduler's write-back is still a no-op
    assert store.get_due_jobs(utc(2030, 1, 1, 0, 0, 2)) == []  # recovered once
