"""Before a test session: print the versions under test, and fail unless the database answers.

noxfile.py runs it in each session's virtualenv: `python scripts/preflight.py DATABASE`, where
DATABASE is sqlite, postgres or mariadb. The server's address comes from tests/settings.py
(PGHOST, PGPORT, PGUSER; MYSQL_HOST, MYSQL_PORT, MYSQL_USER, MYSQL_PASSWORD). A database that
does not answer fails the session: it is never skipped.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHOWN = ("Django", "APScheduler", "pytest", "psycopg", "mysqlclient")
HOW_TO_START = {
    "postgres": "pg_ctlcluster --skip-systemctl-redirect <version> main start",
    "mariadb": "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
}


def installed() -> str:
    found = [f"Python {platform.python_version()}"]
    for name in SHOWN:
        with contextlib.suppress(PackageNotFoundError):  # drivers only where they are used
            found.append(f"{name} {version(name)}")
    return ", ".join(found)


def server_version(database: str, conf: dict[str, Any]) -> str:
    host, port, user, password = conf["HOST"], int(conf["PORT"]), conf["USER"], conf.get("PASSWORD")
    if database == "postgres":
        import psycopg

        with psycopg.connect(
            host=host, port=port, user=user, password=password, dbname="postgres", connect_timeout=5
        ) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return f"PostgreSQL {row[0] if row else '?'}"
    import MySQLdb

    password = password or ""
    conn = MySQLdb.connect(host=host, port=port, user=user, passwd=password, connect_timeout=5)
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT VERSION()")
        return str(cursor.fetchone()[0])
    finally:
        conn.close()


def unreachable(database: str, where: str, exc: Exception) -> str:
    error = " ".join(f"{type(exc).__name__}: {exc}".split())
    return (
        f"{database} is not reachable at {where} ({error}).\n"
        f"The {database} tests cannot run, and a database that does not answer fails the run.\n"
        f"Start the server (e.g. {HOW_TO_START[database]}, or `bash .ci/run` as root), point the "
        "tests at it (see tests/settings.py), or leave it out: bash scripts/test.sh -t sqlite"
    )


def main(database: str) -> int:
    print(f"{database}: {installed()}")
    if database == "sqlite":
        return 0
    os.environ["CLOCKWORK_TEST_DB"] = database
    sys.path.insert(0, str(ROOT))
    from tests.settings import DATABASES

    conf = DATABASES["default"]
    where = f"{conf['USER']}@{conf['HOST']}:{conf['PORT']}"
    try:
        print(f"{database} server at {where}: {server_version(database, conf)}")
    except Exception as exc:  # any driver error means the tests cannot connect either
        print(f"\nERROR: {unreachable(database, where, exc)}\n", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("sqlite", "postgres", "mariadb"):
        sys.exit("usage: python scripts/preflight.py sqlite|postgres|mariadb")
    sys.exit(main(sys.argv[1]))
