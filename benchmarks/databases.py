"""The benchmark's own database: created empty, migrated, dropped after; never a test database.

PostgreSQL and MariaDB get ``clockwork_bench_<pid>`` on the server the tests use; SQLite a
file in a temporary directory. Servers are never restarted.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

SERVERS = ("postgres", "mariadb")


def bench_name(database: str) -> str:
    if database == "sqlite":
        return str(Path(tempfile.gettempdir()) / f"clockwork_bench_{os.getpid()}.sqlite3")
    return f"clockwork_bench_{os.getpid()}"


def create(database: str, name: str) -> None:
    """Create (after dropping a leftover of the same name) and migrate the database."""
    from django.core.management import call_command
    from django.db import connection

    drop(database, name)
    if database in SERVERS:
        with _server_cursor() as cursor:
            charset = " CHARACTER SET utf8mb4" if database == "mariadb" else ""
            cursor.execute(f"CREATE DATABASE {name}{charset}")
    connection.close()
    call_command("migrate", verbosity=0)


def drop(database: str, name: str) -> None:
    from django.db import connections

    connections.close_all()
    if database not in SERVERS:
        for suffix in ("", "-wal", "-shm"):
            Path(name + suffix).unlink(missing_ok=True)
        return
    with _server_cursor() as cursor:
        force = " WITH (FORCE)" if database == "postgres" else ""
        cursor.execute(f"DROP DATABASE IF EXISTS {name}{force}")


def _server_cursor() -> Any:
    """A cursor on the server's maintenance database (Django's own, for CREATE/DROP DATABASE)."""
    from django.db import connection

    return connection._nodb_cursor()


def sqlalchemy_url(database: str, name: str) -> str:
    """The same database for SQLAlchemy (and so for APScheduler's SQLAlchemyJobStore)."""
    from django.conf import settings

    config = settings.DATABASES["default"]
    if database == "sqlite":
        return f"sqlite:///{name}"
    user, host, port = config["USER"], config["HOST"], config["PORT"]
    if database == "postgres":
        return f"postgresql+psycopg://{user}@{host}:{port}/{name}"
    password = config.get("PASSWORD", "")
    return f"mysql+mysqldb://{user}:{password}@{host}:{port}/{name}?charset=utf8mb4"


def truncate(*tables: str) -> None:
    """Empty tables between measurements (DELETE on SQLite)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            if connection.vendor == "sqlite":
                cursor.execute(f"DELETE FROM {table}")
            else:
                cursor.execute(f"TRUNCATE TABLE {table}")


def analyze() -> None:
    """Refresh the planner's statistics of every table (after a bulk seed, as autovacuum would)."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            for table in connection.introspection.table_names(cursor):
                cursor.execute(f"ANALYZE TABLE {table}")
                cursor.fetchall()
        else:
            cursor.execute("ANALYZE")
