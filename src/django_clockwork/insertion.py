"""Adding a job row in one statement.

An id is free when no row holds it or when the row holding it is a finished job (a one-off
whose trigger is done: ``finished_at`` is set, the row kept for the admin). Adding a job
takes a free id with a single ``INSERT`` whose conflict on the primary key overwrites the
row only if that row is finished, and otherwise leaves it untouched and says so:

- PostgreSQL and SQLite: ``ON CONFLICT (id) DO UPDATE ... WHERE finished_at IS NOT NULL``;
  the row count is 0 when a live job kept the id.
- MySQL and MariaDB: ``ON DUPLICATE KEY UPDATE`` with every assignment conditional on the
  existing row being finished (``finished_at`` assigned last, since later assignments see
  earlier ones). Django's connections count found rows, so the row count cannot tell a new
  row from an untouched live one; the live branch sets ``LAST_INSERT_ID(1)``, which the
  server reports back as the statement's insert id (the table has no auto-increment
  column, so it is 0 otherwise).
- Any other backend: the portable form, delete a finished row then insert in a savepoint.

Overwriting writes every column, as a fresh insert would: the replaced job starts again at
version 1 with no trace of the finished one (its history stays in the ledger).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, connections, transaction

from django_clockwork.models import Job

#: The backends (``connection.vendor``) with a one-statement form.
_FAST = frozenset({"postgresql", "sqlite", "mysql"})
#: The insert id the MySQL statement reports when a live job kept the id.
_KEPT = 1


def insert_row(database: str, row: Job) -> bool:
    """Write ``row`` (unsaved) as a new job; False, writing nothing, if a live job has its id.

    ``row`` gets the values written (``created_at`` and ``updated_at``).
    """
    connection = connections[database]
    if connection.vendor not in _FAST:
        return _insert_portably(database, row)
    fields = [field for field in Job._meta.local_concrete_fields if not field.generated]
    quote = connection.ops.quote_name
    table = quote(Job._meta.db_table)
    columns = [quote(str(field.column)) for field in fields]  # concrete: never None
    params = [field.get_db_prep_save(field.pre_save(row, True), connection) for field in fields]
    placeholders = ", ".join(["%s"] * len(columns))
    insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            cursor.execute(f"{insert} {_on_duplicate_key(quote, columns)}", params)
            return bool(cursor.lastrowid != _KEPT)
        cursor.execute(f"{insert} {_on_conflict(quote, table, columns)}", params)
        return bool(cursor.rowcount == 1)


def _on_conflict(quote: Any, table: str, columns: list[str]) -> str:
    key = quote(Job._meta.pk.column)
    finished = quote("finished_at")
    updates = ", ".join(f"{column} = excluded.{column}" for column in columns if column != key)
    return f"ON CONFLICT ({key}) DO UPDATE SET {updates} WHERE {table}.{finished} IS NOT NULL"


def _on_duplicate_key(quote: Any, columns: list[str]) -> str:
    finished = quote("finished_at")
    version = quote("version")
    # The id too: the collation may match it case-insensitively, and a fresh insert would
    # have written the new spelling.
    others = [column for column in columns if column not in (version, finished)]
    assignments = [
        f"{version} = IF({finished} IS NULL, {version} + 0 * LAST_INSERT_ID({_KEPT}), "
        f"VALUES({version}))",
        *(f"{c} = IF({finished} IS NULL, {c}, VALUES({c}))" for c in others),
        f"{finished} = IF({finished} IS NULL, {finished}, VALUES({finished}))",
    ]
    return "ON DUPLICATE KEY UPDATE " + ", ".join(assignments)


def _insert_portably(database: str, row: Job) -> bool:
    rows = Job.objects.using(database)
    with transaction.atomic(using=database):
        rows.filter(id=row.id, finished_at__isnull=False).delete()
        try:
            with transaction.atomic(using=database):
                row.save(using=database, force_insert=True)
        except IntegrityError:
            return False
    return True
