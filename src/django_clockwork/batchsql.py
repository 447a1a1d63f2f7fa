"""Ledger statements for many runs at once, per vendor.

``insert_statements``: a claim's new runs in one ``INSERT ... ON CONFLICT DO NOTHING
RETURNING`` per chunk (PostgreSQL from arrays, SQLite 3.35+ from a ``VALUES`` list), whose
results say which run times were new (``inserted_runs``); elsewhere (MySQL/MariaDB) the
ledger looks them up first and inserts the new ones with ``plain_insert_statements``.

``update_statements``: conditional ``UPDATE`` statements moving many ledger runs, each with
its own values.

Both are statements for :func:`~django_clockwork.sqlrows.batch`, which sends those of a claim
or a flush in one round trip where it can.

The group-committed ledger writer (:mod:`django_clockwork.groupcommit`) moves a batch of
runs with one statement per transition kind: PostgreSQL joins arrays (``unnest``),
MySQL/MariaDB a derived table of ``UNION ALL`` rows, SQLite a ``VALUES`` table
(``UPDATE ... FROM``, SQLite 3.33+; older versions get one statement per run). Like every
ledger write, a run moves only from the states its transition leaves.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

from django_clockwork.models import JobExecution
from django_clockwork.sqlrows import Result, Statement

if TYPE_CHECKING:
    from django_clockwork.ledger import Key, Transition

#: The fields that tell ledger rows apart: always sent as arrays (they make the rows).
KEY_FIELDS = ("job_id", "scheduled_run_time")
#: The ledger's unique (job id, run time) index (``JobExecution.Meta.constraints``).
ONE_RUN_PER_TIME = "clockwork_one_run_per_time"
#: Runs per statement (bounded host parameters on MySQL/MariaDB and SQLite).
CHUNK = 500


def can_insert_runs(connection: Any) -> bool:
    """Whether :func:`insert_statements` works on this connection's database."""
    if connection.vendor == "postgresql":
        return True
    if connection.vendor != "sqlite":
        return False
    version: tuple[int, ...] = connection.Database.sqlite_version_info
    return version >= (3, 35)


def insert_statements(connection: Any, rows: Sequence[dict[str, Any]]) -> list[Statement]:
    """Statements that insert these ledger rows (every column but ``id``, by field name; a
    chunk of rows each) unless their (job id, run time) is in the ledger already, to run in a
    batch whose results :func:`inserted_runs` reads. Needs :func:`can_insert_runs`."""
    return [
        _insert_chunk(connection, rows[start : start + CHUNK])
        for start in range(0, len(rows), CHUNK)
    ]


def plain_insert_statements(connection: Any, rows: Sequence[dict[str, Any]]) -> list[Statement]:
    """Statements that insert these ledger rows (every column but ``id``, by field name) as
    they are, a ``VALUES`` list per chunk, for a caller that looked their (job id, run time)
    up first (databases without :func:`can_insert_runs`): the ORM-free form of
    ``bulk_create``, whose model instances and per-value compilation cost more than the rows'
    insert. One statement, or as ``bulk_create`` does, one per chunk within the database's
    limit on host parameters."""
    if not rows:
        return []
    names = _names(rows[0])
    limit = connection.features.max_query_params
    size = len(rows) if limit is None else max(1, limit // len(names))
    return [
        _values_statement(connection, names, rows[start : start + size])
        for start in range(0, len(rows), size)
    ]


def inserted_runs(results: Sequence[Result]) -> set[Key]:
    """The (job id, UTC run time) pairs the statements of :func:`insert_statements` inserted."""
    return {
        (job_id, _aware(run_time)) for result in results for job_id, run_time in result.rows or ()
    }


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _insert_chunk(connection: Any, rows: Sequence[dict[str, Any]]) -> Statement:
    meta = JobExecution._meta
    quote = connection.ops.quote_name
    names = _names(rows[0])
    key = [quote(meta.get_field(n).column) for n in ("job_id", "scheduled_run_time")]  # type: ignore[union-attr]
    conflict = f"ON CONFLICT ({', '.join(key)}) DO NOTHING RETURNING {', '.join(key)}"
    params: Sequence[Any]
    if connection.vendor == "postgresql":
        columns = ", ".join(quote(meta.get_field(name).column) for name in names)  # type: ignore[union-attr]
        # The run time as whole microseconds since the epoch (exact: EXTRACT answers numeric
        # since PostgreSQL 14): an integer reads back far faster than a timestamp.
        conflict = (
            f"ON CONFLICT ({', '.join(key)}) DO NOTHING RETURNING {key[0]}, "
            f"(EXTRACT(EPOCH FROM {key[1]}) * 1000000)::bigint"
        )
        # A column with one value in every row is one parameter, the others one array each:
        # the statement's text does not grow with the rows, so the driver parses it once (a
        # VALUES list of ~2,000 placeholders was re-parsed for every claim, which took longer
        # than the insert), and only the columns that differ are sent as arrays.
        picks: list[str] = []
        arrays: list[str] = []
        scalars: list[Any] = []
        columns_params: list[str] = []
        for name in names:
            kind = meta.get_field(name).db_type(connection)
            values = [row[name] for row in rows]  # PostgreSQL stores datetimes as they are
            source = _one_or_array(values, kind, len(arrays), array=name in KEY_FIELDS)
            picks.append(source.expression)
            if source.array is None:
                scalars.append(source.parameter)
            else:
                arrays.append(source.array)
                columns_params.append(source.parameter)
        aliases = ", ".join(f"c{i}" for i in range(len(arrays)))
        sql = (
            f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT {', '.join(picks)} "
            f"FROM unnest({', '.join(arrays)}) AS v({aliases}) "
        )
        params = [*scalars, *columns_params]
    else:
        sql, params = _values_statement(connection, names, rows)
        sql += " "
    return sql + conflict, params


def _names(row: dict[str, Any]) -> list[str]:
    """The ledger's columns by field name (all but ``id``); ``row`` must give exactly those."""
    meta = JobExecution._meta
    names = [field.name for field in meta.concrete_fields if not field.primary_key]
    missing = set(names) ^ set(row)
    if missing:
        raise ValueError(f"ledger rows must give exactly the columns {names}; not {missing}")
    return names


def _values_statement(
    connection: Any, names: list[str], rows: Sequence[dict[str, Any]]
) -> Statement:
    """``INSERT INTO <ledger> (<columns>) VALUES (...), (...)``: a placeholder per value, each
    datetime adapted as the ORM stores it on this database."""
    meta = JobExecution._meta
    quote = connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in names)  # type: ignore[union-attr]
    adapt = connection.ops.adapt_datetimefield_value

    def stored(value: Any) -> Any:
        return adapt(value) if isinstance(value, datetime) else value

    one = "(" + ", ".join(["%s"] * len(names)) + ")"
    sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {', '.join([one] * len(rows))}"
    return sql, [stored(row[name]) for row in rows for name in names]


class _Source(NamedTuple):
    """How a PostgreSQL statement reads one column of many rows."""

    #: ``%s::<type>`` (one value for all rows) or ``v.c<n>`` (the n-th unnested array).
    expression: str
    #: The array's placeholder in ``unnest(...)``, or None for one value.
    array: str | None
    #: The one value, or the array in its text form.
    parameter: Any


def _one_or_array(
    values: Sequence[Any], kind: str | None, position: int, *, array: bool = False
) -> _Source:
    """One parameter when every row has the same value (of the same type), else an array in
    its text form, the ``position``-th of the statement's ``unnest``; ``array`` forces one."""
    first = values[0]
    if not array and values.count(first) == len(values) and len(set(map(type, values))) == 1:
        return _Source(f"%s::{kind}", None, first)
    return _Source(f"v.c{position}", f"%s::{kind}[]", pg_array(values))


def pg_array(values: Iterable[Any]) -> str:
    """PostgreSQL's text form of an array of these values (``None``, ``str``, ``bool``,
    ``int``, ``float``, aware ``datetime``), for a ``%s::<type>[]`` parameter.

    Django's psycopg cursors bind parameters on the client: a list parameter is dumped and
    quoted element by element in Python, which cost a claim more than its statements took
    on the server. One string is quoted once."""
    values = values if isinstance(values, list | tuple) else list(values)
    kinds = set(map(type, values))
    if kinds == {str}:  # the common case, joined at once: ids, names, references
        joined = '","'.join(values)
        if "\\" not in joined and joined.count('"') == 2 * (len(values) - 1):
            return '{"' + joined + '"}'  # no element has a quote or a backslash to escape
    elif kinds == {int}:
        return "{" + ",".join(map(str, values)) + "}"
    elif kinds == {datetime} and None not in map(_tzinfo, values):
        return '{"' + '","'.join(map(datetime.isoformat, values)) + '"}'
    return "{" + ",".join(map(_array_element, values)) + "}"


_tzinfo = operator.attrgetter("tzinfo")


def _array_element(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"a naive datetime cannot be stored in a ledger array: {value!r}")
        return '"' + value.isoformat() + '"'
    raise TypeError(f"no array form for {type(value).__name__}: {value!r}")


def _aware(value: Any) -> datetime:
    """A returned run time as an aware UTC datetime (PostgreSQL answers microseconds since
    the epoch, SQLite text)."""
    if isinstance(value, int):
        return _EPOCH + timedelta(microseconds=value)
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime), f"a run time, not {moment!r}"
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def update_statements(
    connection: Any, transition: Transition, rows: Sequence[tuple[Key, dict[str, Any]]]
) -> list[Statement]:
    """Statements that move these runs (``((job id, UTC run time), fields)``, the same field
    names in every row) to ``transition.target`` with their fields, to run in a batch (their
    rowcounts add up to the runs moved): one per :data:`CHUNK` runs, or one per run on SQLite
    before 3.33 (no ``UPDATE ... FROM``)."""
    return [
        statement
        for start in range(0, len(rows), CHUNK)
        for statement in _update_chunk(connection, transition, rows[start : start + CHUNK])
    ]


def _update_chunk(
    connection: Any, transition: Transition, rows: Sequence[tuple[Key, dict[str, Any]]]
) -> list[Statement]:
    meta = JobExecution._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    names = sorted(rows[0][1])
    fields = [meta.get_field(name) for name in names]
    columns = [quote(field.column) for field in fields]  # type: ignore[union-attr]
    key_columns = [quote(meta.get_field(n).column) for n in ("job_id", "scheduled_run_time")]  # type: ignore[union-attr]
    ops = connection.ops

    def stored(value: Any) -> Any:
        return ops.adapt_datetimefield_value(value) if isinstance(value, datetime) else value

    table_rows = [
        [key[0], stored(key[1]), *(stored(values[name]) for name in names)] for key, values in rows
    ]
    sources = sorted(transition.sources)
    in_sources = ", ".join(["%s"] * len(sources))
    vendor = connection.vendor
    if vendor == "postgresql":
        # As for inserts: a field with one value in every row is one parameter (the host and
        # pid of a flush's starts), the others one array each, in their text form.
        job_ids, run_times, *per_field = zip(*table_rows, strict=True)
        assignments: list[str] = []
        scalars: list[Any] = []
        array_types: list[str] = []
        array_values: list[str] = []
        for column, field, values in zip(columns, fields, per_field, strict=True):
            source = _one_or_array(values, field.db_type(connection), len(array_types))
            assignments.append(f"{column} = {source.expression}")
            if source.array is None:
                scalars.append(source.parameter)
            else:
                array_types.append(source.array)
                array_values.append(source.parameter)
        aliases = ", ".join(["job_id", "run_time", *(f"c{i}" for i in range(len(array_types)))])
        unnested = "".join(", " + kind for kind in array_types)
        sql = (
            f"UPDATE {table} AS r SET {quote('status')} = %s, {', '.join(assignments)} "
            f"FROM unnest(%s::text[], %s::timestamptz[]{unnested}) "
            f"AS v({aliases}) "
            f"WHERE r.{key_columns[0]} = v.job_id AND r.{key_columns[1]} = v.run_time "
            f"AND r.{quote('status')} IN ({in_sources}) "
            # The ids again, for the (job id, run time) index: joined to the arrays alone,
            # the planner hashed every unfinished run of the table for each flush.
            f"AND r.{key_columns[0]} = ANY(%s::text[])"
        )
        ids = pg_array(job_ids)
        params: list[Any] = [
            transition.target,
            *scalars,
            ids,
            pg_array(run_times),
            *array_values,
            *sources,
            ids,
        ]
    elif vendor == "mysql":
        selects = [
            "%s AS job_id",
            "CAST(%s AS DATETIME(6)) AS run_time",
            *(
                f"CAST(%s AS DATETIME(6)) AS c{i}"
                if field.get_internal_type() == "DateTimeField"
                else f"%s AS c{i}"
                for i, field in enumerate(fields)
            ),
        ]
        one = "SELECT " + ", ".join(selects)
        derived = " UNION ALL ".join([one] * len(table_rows))
        sets = ", ".join(f"r.{col} = v.c{i}" for i, col in enumerate(columns))
        listed_ids = sorted({row[0] for row in table_rows})
        sql = (
            f"UPDATE {table} AS r FORCE INDEX ({quote(ONE_RUN_PER_TIME)}) JOIN ({derived}) AS v "
            f"ON r.{key_columns[0]} = v.job_id AND r.{key_columns[1]} = v.run_time "
            f"SET r.{quote('status')} = %s, {sets} WHERE r.{quote('status')} IN ({in_sources}) "
            # The job ids again, and the (job id, run time) index forced: a multi-table UPDATE
            # locks every row it reads, and InnoDB may read the whole ledger, other writers'
            # runs included (flushes deadlocked so in the reliability tests on MariaDB).
            f"AND r.{key_columns[0]} IN ({', '.join(['%s'] * len(listed_ids))})"
        )
        params = [value for row in table_rows for value in row]
        params += [transition.target, *sources, *listed_ids]
    elif connection.Database.sqlite_version_info >= (3, 33):
        width = 2 + len(names)
        listed = ", ".join(["(" + ", ".join(["%s"] * width) + ")"] * len(table_rows))
        sets = ", ".join(f"{col} = v.column{i + 3}" for i, col in enumerate(columns))
        sql = (
            f"UPDATE {table} SET {quote('status')} = %s, {sets} FROM (VALUES {listed}) AS v "
            f"WHERE {table}.{key_columns[0]} = v.column1 "
            f"AND {table}.{key_columns[1]} = v.column2 "
            f"AND {table}.{quote('status')} IN ({in_sources})"
        )
        params = [transition.target, *(value for row in table_rows for value in row), *sources]
    else:
        return _one_by_one(connection, transition, table_rows, columns, key_columns)
    return [(sql, params)]


def _one_by_one(
    connection: Any,
    transition: Transition,
    table_rows: list[list[Any]],
    columns: list[str],
    key_columns: list[str],
) -> list[Statement]:
    """One ``UPDATE`` per run (SQLite before 3.33)."""
    quote = connection.ops.quote_name
    table = quote(JobExecution._meta.db_table)
    sources = sorted(transition.sources)
    sets = ", ".join(f"{col} = %s" for col in columns)
    sql = (
        f"UPDATE {table} SET {quote('status')} = %s, {sets} WHERE {key_columns[0]} = %s "
        f"AND {key_columns[1]} = %s AND {quote('status')} IN ({', '.join(['%s'] * len(sources))})"
    )
    return [
        (sql, [transition.target, *values, job_id, run_time, *sources])
        for job_id, run_time, *values in table_rows
    ]
