"""``batchsql.pg_array``: the text form of an array parameter reads back as the same values
on PostgreSQL, however hostile the text; values it has no form for are refused.
``sqlrows.batch``: statements answer in order, in one round trip on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from django_clockwork.batchsql import pg_array

pytestmark = pytest.mark.django_db

TEXTS = [
    'a"b',
    "c\\d",
    "\\",
    '\\"',
    "e'f",
    "g,h",
    "{x}",
    "NULL",
    "null",
    " spaced ",
    "",
    "line\nbreak\ttab",
    "ünïcødé ✓ 日本",
    "x" * 5000,
]
TIMES = [
    datetime(2026, 12, 2, 4, 5, 6, 123456, tzinfo=timezone.utc),
    datetime(2026, 7, 1, 14, 0, 0, 1, tzinfo=ZoneInfo("Europe/Berlin")),
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    None,
]


@pytest.fixture
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("pg_array is PostgreSQL's array text form")


def read_back(kind: str, values: Iterable[Any]) -> list[Any]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %s::{kind}[]", [pg_array(values)])
        (got,) = cursor.fetchone()
    return list(got)


@pytest.mark.usefixtures("_postgresql_only")
def test_text_reads_back_unchanged() -> None:
    assert read_back("text", [*TEXTS, None]) == [*TEXTS, None]
    assert read_back("varchar(191)", ["burst-1", "burst-2"]) == ["burst-1", "burst-2"]


@pytest.mark.usefixtures("_postgresql_only")
def test_numbers_and_booleans_read_back_unchanged() -> None:
    assert read_back("integer", [1, -2, None, 2**31 - 1]) == [1, -2, None, 2**31 - 1]
    assert read_back("double precision", [0.1, 1e-05, 123456.789]) == [0.1, 1e-05, 123456.789]
    assert read_back("boolean", [True, False, None]) == [True, False, None]


@pytest.mark.usefixtures("_postgresql_only")
def test_aware_times_read_back_as_the_same_instants_to_the_microsecond() -> None:
    assert read_back("timestamptz", TIMES) == TIMES


@pytest.mark.usefixtures("_postgresql_only")
def test_an_empty_array_and_a_refused_value() -> None:
    assert read_back("text", []) == []
    with pytest.raises(ValueError, match="naive"):
        pg_array([datetime(2026, 1, 1)])
    with pytest.raises(TypeError, match="no array form for bytes"):
        pg_array([b"raw"])


@pytest.mark.usefixtures("_postgresql_only")
@pytest.mark.parametrize("text", TEXTS)
def test_text_only_arrays_read_back_unchanged(text: str) -> None:
    # Lists of text alone are joined at once unless an element needs escaping.
    assert read_back("text", ["plain", text, "plain"]) == ["plain", text, "plain"]
    assert read_back("text", [text]) == [text]


@pytest.mark.usefixtures("_postgresql_only")
def test_arrays_of_one_kind_read_back_unchanged() -> None:
    assert read_back("text", ['a","b', "c"]) == ['a","b', "c"]  # a separator inside a value
    assert read_back("bigint", [1, -2, 2**62]) == [1, -2, 2**62]
    assert read_back("boolean", [True, False]) == [True, False]
    times = [t for t in TIMES if t is not None]
    assert read_back("timestamptz", times) == times
    assert read_back("text", (f"id-{n}" for n in range(3))) == ["id-0", "id-1", "id-2"]


def test_a_naive_time_among_aware_ones_is_refused() -> None:
    aware = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="naive"):
        pg_array([aware, datetime(2026, 1, 1), aware])


def test_a_batch_answers_each_statement_in_order() -> None:
    """Rows for a statement that returns rows, the rowcount for one that changes rows; on
    PostgreSQL all in one execute (one round trip), elsewhere one execute each."""
    from django.test.utils import CaptureQueriesContext

    from django_clockwork.models import Job
    from django_clockwork.sqlrows import batch, can_batch

    table = connection.ops.quote_name(Job._meta.db_table)
    Job.objects.create(id="a", func="tests.jobs:noop", trigger={"type": "date"})
    statements = [
        ("SELECT 1", []),
        (f"UPDATE {table} SET name = %s WHERE id = %s", ["renamed ; 'quoted' %", "a"]),
        (f"SELECT id, name FROM {table} WHERE id = %s", ["a"]),
    ]
    with CaptureQueriesContext(connection) as sent:
        first, update, read = batch(connection, statements)
    assert len(sent.captured_queries) == (1 if can_batch(connection) else 3)
    assert first.rows == [(1,)]
    assert (update.rowcount, update.rows) == (1, None)
    assert read.rows == [("a", "renamed ; 'quoted' %")]


def test_an_error_stops_the_batch_and_reaches_the_caller() -> None:
    from django.db import DatabaseError, transaction

    from django_clockwork.models import Job
    from django_clockwork.sqlrows import batch

    table = connection.ops.quote_name(Job._meta.db_table)
    Job.objects.create(id="a", func="tests.jobs:noop", trigger={"type": "date"})
    with pytest.raises(DatabaseError), transaction.atomic():
        batch(
            connection,
            [
                (f"UPDATE {table} SET name = %s WHERE id = %s", ["changed", "a"]),
                ("SELECT * FROM clockwork_no_such_table", []),
                (f"DELETE FROM {table}", []),
            ],
        )
    assert list(Job.objects.values_list("id", "name")) == [("a", "")]  # all rolled back
