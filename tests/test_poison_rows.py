"""A poison row never stops the others: JSON the database accepts but Python cannot decode.

The JSON text is written with raw SQL (the ORM would refuse to encode such values); each test
then shows that the row is flagged and skipped while every other job is claimed, run, listed
and shown in the admin.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from django_clockwork import DjangoJobStore, api
from django_clockwork.exceptions import InvalidJobError
from django_clockwork.jsoncolumn import TolerantJSONField, Undecodable
from django_clockwork.models import Job, JobExecution

from .conftest import run_scheduler_until_succeeded, utc

#: An integer of 5,000 digits: over Python's limit on integer digits (ValueError).
HUGE_INT = "[" + "7" * 5000 + "]"
#: Arrays nested 999 deep (SQLite's limit is 1,000): too deep for Python's decoder
#: (RecursionError) on Python 3.11 and older; newer ones may decode it (those tests skip then).
DEEP = "[" * 999 + "]" * 999

POISONS = [
    pytest.param("args", HUGE_INT, "ValueError", id="args-huge-int"),
    pytest.param("kwargs", '{"n": ' + "9" * 5000 + "}", "ValueError", id="kwargs-huge-int"),
    pytest.param("args", DEEP, "RecursionError", id="args-deep"),
    pytest.param(
        "trigger",
        '{"type": "date", "run_date": ' + "1" * 5000 + "}",
        "ValueError",
        id="trigger-huge-int",
    ),
]

NOW = utc(2030, 1, 1, 0, 0, 30)


def poison(job_id: str, column: str, text: str) -> None:
    """Write ``text`` into a JSON column of a row, as the database's own JSON."""
    table = connection.ops.quote_name(Job._meta.db_table)
    quoted = connection.ops.quote_name(column)
    value = "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {quoted} = {value} WHERE id = %s", [text, job_id])
        assert cursor.rowcount == 1


def skip_unless_poison(text: str) -> None:
    """Skip where the nesting is no poison: the database refuses it, or Python decodes it."""
    if text != DEEP:
        return
    try:
        json.loads(text)
    except RecursionError:
        pass
    else:
        pytest.skip("this Python decodes JSON nested that deep")
    if connection.vendor == "mysql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT JSON_VALID(%s)", [text])
            if not cursor.fetchone()[0]:
                pytest.skip("this database refuses JSON nested that deep")


def two_jobs(column: str, text: str) -> None:
    """A healthy job and a poison one, both due at ``NOW``."""
    skip_unless_poison(text)
    for job_id in ("healthy", "poison"):
        api.add_job("tests.jobs:echo", "interval", minutes=1, start_date=utc(2030, 1, 1), id=job_id)
    poison("poison", column, text)


def test_the_field_turns_what_python_cannot_decode_into_a_marker() -> None:
    field = TolerantJSONField()
    value = field.from_db_value(HUGE_INT, None, connection)
    assert isinstance(value, Undecodable)
    assert "ValueError" in value.error
    assert "4300" in value.error
    assert isinstance(field.from_db_value("[" * 10**5 + "]" * 10**5, None, connection), Undecodable)
    assert field.from_db_value("[1, 2]", None, connection) == [1, 2]
    assert field.deconstruct()[1] == "django.db.models.JSONField"  # no migration: same column


@pytest.mark.django_db
@pytest.mark.parametrize(("column", "text", "error"), POISONS)
def test_a_claim_takes_the_healthy_job_and_flags_the_poison_one(
    store: DjangoJobStore, column: str, text: str, error: str
) -> None:
    two_jobs(column, text)
    jobs = store.get_due_jobs(NOW)
    assert [job.id for job in jobs] == ["healthy"]
    load_error = Job.objects.get(id="poison").load_error
    assert load_error.startswith(f"UndecodableJSONError: {column}: ")
    assert error in load_error
    assert list(JobExecution.objects.values_list("job_id", flat=True)) == ["healthy"]
    assert store.get_due_jobs(NOW) == []  # flagged: skipped from now on, without an error


@pytest.mark.django_db
@pytest.mark.parametrize(("column", "text", "error"), POISONS)
def test_store_lookups_skip_and_flag_the_poison_row(
    store: DjangoJobStore, column: str, text: str, error: str
) -> None:
    two_jobs(column, text)
    assert [job.id for job in store.get_all_jobs()] == ["healthy"]
    assert store.lookup_job("poison") is None
    assert error in Job.objects.get(id="poison").load_error
    store._last_recheck = float("-inf")
    store.get_next_run_time()  # rechecks the broken rows: still broken, nothing raised
    assert error in Job.objects.get(id="poison").load_error


@pytest.mark.django_db
@pytest.mark.parametrize(("column", "text", "error"), POISONS)
def test_api_lists_the_others_and_the_poison_row_as_broken(
    column: str, text: str, error: str
) -> None:
    two_jobs(column, text)
    jobs = {job.id: job for job in api.get_jobs()}
    assert set(jobs) == {"healthy", "poison"}
    assert jobs["healthy"].load_error == ""
    assert f"{column}: the stored JSON cannot be decoded ({error}" in jobs["poison"].load_error
    assert api.get_job("poison") == jobs["poison"]
    if column == "trigger":
        assert jobs["poison"].trigger == {}
        assert jobs["poison"].trigger_description.startswith("invalid trigger")
    else:
        assert getattr(jobs["poison"], column) in ((), {})


@pytest.mark.django_db
def test_api_writes_never_silently_drop_undecodable_arguments() -> None:
    two_jobs("args", HUGE_INT)
    with pytest.raises(InvalidJobError, match=r"'poison'.*args: the stored JSON cannot be decoded"):
        api.pause_job("poison")
    assert api.modify_job("poison", args=[1]).args == (1,)  # a new value repairs the row
    assert api.get_job("poison").load_error == ""  # type: ignore[union-attr]


@pytest.mark.django_db
def test_a_new_trigger_repairs_an_undecodable_one() -> None:
    two_jobs("trigger", '{"type": "interval", "seconds": ' + "1" * 5000 + "}")
    job = api.reschedule_job("poison", "interval", minutes=5)
    assert (job.trigger["type"], job.load_error) == ("interval", "")


@pytest.mark.django_db
@pytest.mark.parametrize(("column", "text", "error"), POISONS)
def test_admin_lists_and_shows_the_poison_row(
    admin_client: Client, column: str, text: str, error: str
) -> None:
    two_jobs(column, text)
    listing = admin_client.get(reverse("admin:django_clockwork_job_changelist"))
    assert listing.status_code == 200
    assert b"healthy" in listing.content
    assert b"poison" in listing.content
    page = admin_client.get(reverse("admin:django_clockwork_job_change", args=["poison"]))
    assert page.status_code == 200
    assert b"stored JSON that cannot be decoded" in page.content
    assert error.encode() in page.content


@pytest.mark.django_db(transaction=True)
def test_a_running_scheduler_runs_the_healthy_job_past_a_poison_row() -> None:
    api.add_job("tests.jobs:noop", "interval", seconds=0.2, id="tick")
    api.add_job("tests.jobs:noop", "interval", seconds=0.2, id="poison")
    poison("poison", "args", HUGE_INT)
    assert run_scheduler_until_succeeded("tick", 3) >= 3
    assert "ValueError" in Job.objects.get(id="poison").load_error
    assert not JobExecution.objects.filter(job_id="poison").exists()


def test_a_trigger_text_is_built_once_and_a_bad_one_is_refused_each_time() -> None:
    """A claim reads the trigger column as text and builds each distinct text once
    (``jobstore.stored_trigger``); text Python cannot decode, or that is no trigger, is
    refused with the column named, on every read (nothing bad is remembered)."""
    from django_clockwork.jobstore import stored_trigger
    from django_clockwork.jsoncolumn import UndecodableJSONError
    from django_clockwork.serialization import SerializationError

    text = '{"type": "interval", "minutes": 5, "timezone": "UTC"}'
    first = stored_trigger(text)
    assert stored_trigger(text) is first
    assert stored_trigger(text.encode()) is first  # a driver that answers bytes
    assert stored_trigger(json.loads(text)) is not first  # a model's decoded value: built
    assert str(stored_trigger(json.loads(text))) == str(first)
    for _attempt in range(2):
        with pytest.raises(UndecodableJSONError, match=r"^trigger: the stored JSON"):
            stored_trigger('{"type": "date", "run_date": ' + HUGE_INT + "}")
        with pytest.raises(SerializationError, match="unknown trigger type 'hourly'"):
            stored_trigger('{"type": "hourly"}')
