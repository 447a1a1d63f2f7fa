"""Fixed SQL statements: run in one round trip where the driver can, their rows converted
column by column as the ORM converts them.

The claim's statements run many times a second in a burst; building them with the ORM and
a model instance per row cost more than the database took to answer. Their SQL is fixed
(built once) and their rows are plain tuples, each value passed through the converters the
ORM would apply to that column on this database (``from_db_value``, the backend's date,
boolean and JSON converters).

:func:`batch` runs several statements in one round trip to the server where the driver can
(psycopg 3 binding parameters on the client, Django's default on PostgreSQL: one
simple-query string, a result per statement), else one after the other. A claim's round
trips were most of its time in a burst, each also waiting for the GIL to come back.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, NamedTuple

from django.db import models

#: A statement and its parameters (``%s`` placeholders).
Statement = tuple[str, Sequence[Any]]


class Result(NamedTuple):
    """What one statement of a batch answered."""

    #: Rows the statement changed (as the driver reports it; -1 when it does not).
    rowcount: int
    #: The rows it returned (None for a statement that returns none).
    rows: list[tuple[Any, ...]] | None


def can_batch(connection: Any) -> bool:
    """Whether :func:`batch` sends several statements in one round trip on ``connection``."""
    if connection.vendor != "postgresql":
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    options = connection.settings_dict.get("OPTIONS") or {}
    return bool(is_psycopg3) and not options.get("server_side_binding")


def batch(connection: Any, statements: Sequence[Statement]) -> list[Result]:
    """Run ``statements`` in order (in one round trip where :func:`can_batch`); a result
    each. An error stops the batch and propagates (the caller's transaction rolls back)."""
    results: list[Result] = []
    if not statements:
        return results
    with connection.cursor() as cursor:
        if len(statements) > 1 and can_batch(connection):
            sql = ";\n".join(text for text, _params in statements)
            cursor.execute(sql, [value for _text, params in statements for value in params])
            for index in range(len(statements)):
                if index and not cursor.nextset():
                    raise RuntimeError(f"the batch answered {index} of {len(statements)} results")
                rows = list(cursor.fetchall()) if cursor.description is not None else None
                results.append(Result(cursor.rowcount, rows))
            return results
        for text, params in statements:
            cursor.execute(text, params)
            rows = list(cursor.fetchall()) if cursor.description is not None else None
            results.append(Result(cursor.rowcount, rows))
    return results


#: Per column: the ``(converter, expression)`` pairs the ORM applies, in order.
Converters = tuple[tuple[tuple[Callable[..., Any], Any], ...], ...]


def converters_for(
    connection: Any,
    model: type[models.Model],
    names: Sequence[str],
    raw: Collection[str] = (),
) -> Converters:
    """The converters of these fields' columns on ``connection`` (none for those in ``raw``:
    their values stay as the driver answers them)."""
    found: list[tuple[tuple[Callable[..., Any], Any], ...]] = []
    for name in names:
        if name in raw:
            found.append(())
            continue
        expression = model._meta.get_field(name).get_col(model._meta.db_table)  # type: ignore[union-attr]
        pairs = connection.ops.get_db_converters(expression)
        pairs += expression.get_db_converters(connection)
        found.append(tuple((convert, expression) for convert in pairs))
    return tuple(found)


def converted(
    rows: Sequence[Sequence[Any]], converters: Converters, connection: Any
) -> list[list[Any]]:
    """``rows`` with each non-NULL value converted (NULL stays ``None``); only the columns
    that have converters are touched."""
    active = [(index, chain) for index, chain in enumerate(converters) if chain]
    result = []
    for values in rows:
        row = list(values)
        for index, chain in active:
            value = row[index]
            if value is not None:
                row[index] = _convert(value, chain, connection)
        result.append(row)
    return result


def _convert(value: Any, chain: Any, connection: Any) -> Any:
    for convert, expression in chain:
        value = convert(value, expression, connection)
    return value
