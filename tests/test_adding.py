"""Adding a job is one SQL statement on every database (``insertion``), and behaves as before:
a live job keeps its id, a finished one-off's row is replaced as if it were new."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from apscheduler.jobstores.base import ConflictingIdError
from apscheduler.triggers.date import DateTrigger
from django.db import transaction
from django.db.models import F
from django.utils import timezone as django_timezone

from django_clockwork import DjangoJobStore, api
from django_clockwork.exceptions import JobExistsError
from django_clockwork.models import Job, JobSource
from tests.conftest import MakeJob

pytestmark = pytest.mark.django_db

LATER = datetime(2999, 1, 1, tzinfo=timezone.utc)


def finish(job_id: str, **changes: Any) -> None:
    """Make the row look like a one-off job whose trigger is done (as a claim leaves it)."""
    Job.objects.filter(id=job_id).update(
        next_run_time=None,
        finished_at=django_timezone.now(),
        version=F("version") + 3,
        **changes,
    )


def test_api_add_job_is_one_statement(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(1):
        api.add_job("tests.jobs:noop", "interval", seconds=5, id="one", long_running_after=30)
    assert Job.objects.get(id="one").long_running_after == 30


def test_store_add_job_is_one_statement(
    store: DjangoJobStore, make_job: MakeJob, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(1):
        store.add_job(make_job("one"))
    assert store.lookup_job("one") is not None


@pytest.mark.parametrize(
    ("trigger", "options"),
    [
        ("interval", {"minutes": 15, "timezone": "Europe/Paris"}),
        ("cron", {"hour": "7-9", "minute": 30, "day_of_week": "mon-fri", "timezone": "Asia/Tokyo"}),
        ("date", {"run_date": datetime(2999, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)}),
        ("calendarinterval", {"months": 1, "hour": 4, "timezone": "America/New_York"}),
        (None, {"crontab": "*/5 * * * 1-5"}),
    ],
)
def test_the_answer_is_what_a_read_would_give(trigger: str | None, options: dict[str, Any]) -> None:
    added = api.add_job(
        "tests.jobs:echo",
        trigger,
        args=[1, "two", [3.5, None]],
        kwargs={"nested": {"a": [True, False]}, "n": 2**40},
        id="same",
        name="Named",
        misfire_grace_time=7,
        max_instances=3,
        long_running_after=1.5,
        **options,
    )
    assert added == api.get_job("same")
    assert added.next_run_time is not None
    assert added.next_run_time.utcoffset() == timedelta(0)


def test_a_paused_add_answers_paused() -> None:
    added = api.add_job("tests.jobs:noop", "interval", seconds=5, id="p", next_run_time=None)
    assert added.paused
    assert added == api.get_job("p")


def test_a_live_job_keeps_its_id_untouched(django_assert_num_queries: Any) -> None:
    api.add_job("tests.jobs:noop", "interval", seconds=5, id="same", name="first")
    Job.objects.filter(id="same").update(version=4, load_error="kept", declaration="d")
    before = Job.objects.values().get(id="same")
    with django_assert_num_queries(1), pytest.raises(JobExistsError) as info:
        api.add_job("tests.jobs:echo", "interval", seconds=9, id="same", name="second")
    assert isinstance(info.value, ConflictingIdError)
    assert Job.objects.values().get(id="same") == before


def test_a_paused_job_keeps_its_id(store: DjangoJobStore, make_job: MakeJob) -> None:
    store.add_job(make_job("paused", next_run_time=None))
    with pytest.raises(ConflictingIdError):
        store.add_job(make_job("paused"))
    assert Job.objects.get(id="paused").next_run_time is None


def test_a_finished_one_off_is_replaced_like_a_new_row(django_assert_num_queries: Any) -> None:
    api.add_job("tests.jobs:noop", "date", run_date=LATER, id="once", long_running_after=5)
    finish("once", load_error="old", declaration="old", undeclared_at=django_timezone.now())
    old = Job.objects.get(id="once")
    with django_assert_num_queries(1):
        again = api.add_job("tests.jobs:echo", "interval", hours=1, id="once", args=[1])
    row = Job.objects.get(id="once")
    assert again == api.get_job("once")
    assert (row.func, row.args, row.version, row.source) == ("tests.jobs:echo", [1], 1, "api")
    assert (row.finished_at, row.undeclared_at, row.long_running_after) == (None, None, None)
    assert (row.load_error, row.declaration) == ("", "")
    assert row.created_at > old.created_at
    assert row.next_run_time is not None


def test_the_store_replaces_a_finished_row_with_its_own_source(make_job: MakeJob) -> None:
    DjangoJobStore(source=JobSource.ADMIN).add_job(make_job("once"))
    finish("once")
    DjangoJobStore(source=JobSource.CODE).add_job(make_job("once"))
    assert Job.objects.get(id="once").source == JobSource.CODE


def test_a_refused_add_leaves_the_callers_transaction_usable() -> None:
    api.add_job("tests.jobs:noop", "interval", seconds=5, id="same")
    with transaction.atomic():
        with pytest.raises(JobExistsError):
            api.add_job("tests.jobs:noop", "interval", seconds=5, id="same")
        api.add_job("tests.jobs:noop", "interval", seconds=5, id="other")
    assert set(Job.objects.values_list("id", flat=True)) == {"same", "other"}


def test_a_job_added_in_a_rolled_back_transaction_is_not_stored() -> None:
    def add_then_fail() -> None:
        with transaction.atomic():
            api.add_job("tests.jobs:noop", "interval", seconds=5, id="gone")
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        add_then_fail()
    assert not Job.objects.filter(id="gone").exists()


def test_the_portable_form_behaves_the_same(
    monkeypatch: pytest.MonkeyPatch, store: DjangoJobStore, make_job: MakeJob
) -> None:
    from django_clockwork import insertion

    monkeypatch.setattr(insertion, "_FAST", frozenset())
    store.add_job(make_job("one"))
    with pytest.raises(ConflictingIdError):
        store.add_job(make_job("one"))
    finish("one")
    store.add_job(make_job("one", trigger=DateTrigger(LATER - timedelta(days=1))))
    row = Job.objects.get(id="one")
    assert (row.finished_at, row.version, row.next_run_time) == (None, 1, LATER - timedelta(days=1))


def test_a_replaced_row_takes_the_new_spelling_of_its_id() -> None:
    # MySQL/MariaDB compare ids case-insensitively; a fresh insert writes the new spelling.
    api.add_job("tests.jobs:noop", "date", run_date=LATER, id="once")
    finish("once")
    api.add_job("tests.jobs:noop", "date", run_date=LATER, id="ONCE")
    assert "ONCE" in Job.objects.values_list("id", flat=True)
