"""Rows of a fixed SQL statement, converted column by column as the ORM converts them.

The claim's statements run many times a second in a burst; building them with the ORM and
a model instance per row cost more than the database took to answer. Their SQL is fixed
(built once) and their rows are plain tuples, each value passed through the converters the
ORM would apply to that column on this database (``from_db_value``, the backend's date,
boolean and JSON converters).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import models

#: Per column: the ``(converter, expression)`` pairs the ORM applies, in order.
Converters = tuple[tuple[tuple[Callable[..., Any], Any], ...], ...]


def converters_for(connection: Any, model: type[models.Model], names: Sequence[str]) -> Converters:
    """The converters of these fields' columns on ``connection``."""
    found = []
    for name in names:
        expression = model._meta.get_field(name).get_col(model._meta.db_table)  # type: ignore[union-attr]
        pairs = connection.ops.get_db_converters(expression)
        pairs += expression.get_db_converters(connection)
        found.append(tuple((convert, expression) for convert in pairs))
    return tuple(found)


def converted(
    rows: Sequence[Sequence[Any]], converters: Converters, connection: Any
) -> list[list[Any]]:
    """``rows`` with each non-NULL value converted (NULL stays ``None``)."""
    return [
        [
            value if value is None or not chain else _convert(value, chain, connection)
            for value, chain in zip(row, converters, strict=True)
        ]
        for row in rows
    ]


def _convert(value: Any, chain: Any, connection: Any) -> Any:
    for convert, expression in chain:
        value = convert(value, expression, connection)
    return value
