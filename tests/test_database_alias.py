"""CLOCKWORK['DATABASE'] is honoured by every query; the router keeps the app there."""

from __future__ import annotations

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from django_clockwork import DjangoJobStore, api, create_scheduler
from django_clockwork.checks import check_settings
from django_clockwork.models import Job, JobExecution
from django_clockwork.routers import ClockworkRouter

from .conftest import MakeJob, utc

pytestmark = pytest.mark.django_db(databases=["default", "other"], transaction=True)


def test_every_store_query_uses_the_configured_alias(make_job: MakeJob) -> None:
    with (
        override_settings(CLOCKWORK={"DATABASE": "other"}),
        CaptureQueriesContext(connections["default"]) as on_default,
    ):
        scheduler = create_scheduler()
        store = DjangoJobStore(poll_interval=None)
        store.start(scheduler, "default")
        trigger = IntervalTrigger(minutes=1, start_date=utc(2030, 1, 1), timezone="UTC")
        store.add_job(make_job("tick", trigger=trigger))
        store.lookup_job("tick")
        store.get_all_jobs()
        jobs = store.get_due_jobs(utc(2030, 1, 1, 0, 0, 1))
        store.update_job(jobs[0])
        store.get_next_run_time()
        api.add_job("tests.jobs:noop", "interval", seconds=5, id="via-api")
        api.pause_job("via-api")
        api.remove_job("tick")
    assert on_default.captured_queries == []
    assert list(Job.objects.using("other").values_list("id", flat=True)) == ["via-api"]
    assert JobExecution.objects.using("other").count() == 1
    assert not Job.objects.using("default").exists()


def test_router_sends_the_app_to_the_alias() -> None:
    with override_settings(CLOCKWORK={"DATABASE": "other"}):
        router = ClockworkRouter()
        assert router.db_for_read(Job) == "other"
        assert router.db_for_write(JobExecution) == "other"
        assert router.allow_migrate("other", "django_clockwork") is True
        assert router.allow_migrate("default", "django_clockwork") is False
        assert router.allow_migrate("default", "auth") is None


def test_unrouted_alias_warns() -> None:
    with override_settings(CLOCKWORK={"DATABASE": "other"}):
        assert [m.id for m in check_settings()] == ["clockwork.W001"]
    with override_settings(
        CLOCKWORK={"DATABASE": "other"},
        DATABASE_ROUTERS=["django_clockwork.routers.ClockworkRouter"],
    ):
        assert check_settings() == []
