"""JSON columns whose rows always load, even when Python cannot decode what the database holds.

A database accepts JSON that Python's decoder refuses: an integer of 5,000 digits (``ValueError``,
Python's limit on integer digits) or arrays nested a thousand deep (``RecursionError``). Django's
``JSONField`` raises while the query is being iterated, so one such row would stop every query
that loads the column: every claim, ``api.get_jobs()``, the admin's job list. Here the value of
that one row becomes an :class:`Undecodable` marker instead; the code that uses the value
(``decoded``) raises for that row only, and the store flags it like any other broken row.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from django_clockwork.storedtext import LOAD_ERROR_MAX, head


class Undecodable:
    """Stands for a stored JSON value that Python could not decode; says why."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = head(f"{type(error).__name__}: {error}", LOAD_ERROR_MAX // 2)

    def __str__(self) -> str:
        return f"(stored JSON that cannot be decoded: {self.error})"

    def __repr__(self) -> str:
        return f"<Undecodable {self.error!r}>"


class UndecodableJSONError(ValueError):
    """A column of a row holds JSON that the database accepted but Python cannot decode."""


#: Stored JSON that decodes to a new empty container: no decoder needed.
_EMPTY: dict[Any, type] = {"[]": list, "{}": dict}


class TolerantJSONField(models.JSONField):
    """``JSONField`` whose rows load whatever the column holds (see the module's docstring).

    The column is the same as ``JSONField``'s, so migrations see a ``JSONField``.
    """

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if type(value) is str and value in _EMPTY and self.decoder is None:  # most args, kwargs
            return _EMPTY[value]()
        try:
            return super().from_db_value(value, expression, connection)
        except (ValueError, RecursionError) as exc:
            return Undecodable(exc)

    def deconstruct(self) -> Any:
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.JSONField", args, kwargs


def decoded(value: Any, column: str) -> Any:
    """``value`` itself, or raises ``UndecodableJSONError`` naming ``column`` if it is a marker."""
    if isinstance(value, Undecodable):
        fix = "api.reschedule_job" if column == "trigger" else f"api.modify_job({column}=...)"
        raise UndecodableJSONError(
            f"{column}: the stored JSON cannot be decoded in Python ({value.error}); "
            f"give the job a new {column} with {fix}, or remove it"
        )
    return value


def undecodable_columns(**values: Any) -> str:
    """Why some of ``values`` (column name -> loaded value) cannot be used; empty if none."""
    return "; ".join(
        f"{column}: the stored JSON cannot be decoded ({value.error})"
        for column, value in values.items()
        if isinstance(value, Undecodable)
    )
