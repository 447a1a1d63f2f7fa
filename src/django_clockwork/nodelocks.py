"""Session locks that die with their process: how peers see a dead node within a second.

On PostgreSQL and MySQL/MariaDB each node holds a session-level lock named after its id
on a dedicated connection (not Django's, which closes and reconnects). The server releases
it the moment that session ends: a process killed with ``kill -9`` or crashing closes its
sockets, so its lock is free at once. A peer that finds a node's lock free declares the
node dead without waiting for ``NODE_TIMEOUT``. Heartbeats stay the rule on SQLite and
the fallback everywhere (a node whose lock could not be taken, a lock taken before the
server last started).

A free lock proves that the session ended, not that the process did: a live node whose
lock connection dropped alone (``pg_terminate_backend``, a proxy) may be declared dead; it
sees that on its next heartbeat and registers again (see ``nodes``). The same connection
answers the probes, so a node whose own session is gone judges nobody.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection
from datetime import datetime, timedelta, timezone
from typing import Any

from django.db import connections

logger = logging.getLogger(__name__)

#: MySQL/MariaDB lock names are at most 64 characters.
MYSQL_NAME_LENGTH = 64


def supported(database: str) -> bool:
    return connections[database].vendor in ("postgresql", "mysql")


def for_database(database: str, node_id: str) -> SessionLock | None:
    """The lock of ``node_id`` on ``database``'s server; None where locks are not supported."""
    vendor = connections[database].vendor
    if vendor == "postgresql":
        return PostgresLock(database, node_id)
    if vendor == "mysql":
        return MysqlLock(database, node_id)
    return None


class SessionLock:
    """One node's lock on a connection of its own, and probes of its peers' locks.

    Subclasses implement ``_setup``, ``_take``, ``_server_started_at`` and ``_held_by_anyone``.
    """

    def __init__(self, database: str, node_id: str) -> None:
        self.database = database
        self.node_id = node_id
        #: Increases each time the lock is taken on a new connection.
        self.generation = 0
        #: When the server (as this connection sees it) last started: locks recorded before
        #: then were released by the restart, not by their node's death.
        self.server_started_at: datetime | None = None
        self._connection: Any = None
        self._refused = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.node_id[:8]} held={self.held}>"

    @property
    def held(self) -> bool:
        return self._connection is not None

    def hold(self) -> bool:
        """Keep holding the lock, or take it on a new connection; True if held.

        Raises the database's error if the server cannot be reached.
        """
        if self._connection is not None:
            if self._answers():
                return True
            self.release()
        wrapper = connections[self.database]
        connection = wrapper.get_new_connection(wrapper.get_connection_params())
        try:
            self._setup(connection)
            if not self._take(connection):
                if not self._refused:
                    logger.warning(
                        "Node %s could not take its lock (held by another session); "
                        "heartbeats alone tell whether it is alive",
                        self.node_id,
                    )
                self._refused = True
                _close_quietly(connection)
                return False
            self._refused = False
            self.server_started_at = self._server_started_at(connection)
        except Exception:
            _close_quietly(connection)
            raise
        self._connection = connection
        self.generation += 1
        return True

    def free(self, node_ids: Collection[str]) -> set[str]:
        """The nodes among ``node_ids`` whose lock no session holds, asked on this lock's
        connection; raises (and lets go of the lock) if that connection failed."""
        if self._connection is None:
            raise RuntimeError(f"Node {self.node_id} holds no lock to probe with")
        if not node_ids:
            return set()
        try:
            return set(node_ids) - self._held_by_anyone(self._connection, list(node_ids))
        except Exception:
            if not self._answers():
                self.release()  # taken again on the next check
            raise

    def _answers(self) -> bool:
        """Whether this lock's connection still answers (so the lock is still held)."""
        try:
            self._query(self._connection, "SELECT 1")
        except Exception as exc:
            logger.warning("Node %s lost its lock's connection (%s)", self.node_id, exc)
            return False
        return True

    def release(self) -> None:
        """Close the lock's connection: the server releases the lock."""
        connection, self._connection = self._connection, None
        if connection is not None:
            _close_quietly(connection)

    @staticmethod
    def _query(connection: Any, sql: str, params: Collection[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = connection.cursor()
        try:
            cursor.execute(sql, tuple(params))
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    def _setup(self, connection: Any) -> None:
        raise NotImplementedError

    def _take(self, connection: Any) -> bool:
        raise NotImplementedError

    def _server_started_at(self, connection: Any) -> datetime:
        raise NotImplementedError

    def _held_by_anyone(self, connection: Any, node_ids: list[str]) -> set[str]:
        raise NotImplementedError


class PostgresLock(SessionLock):
    """``pg_try_advisory_lock(key)``, the key a 64-bit hash of the node id.

    Advisory locks are per database, so other databases on the server never collide. Two
    live nodes share a key with odds of about n^2 / 2^65 (n nodes at once), and another
    application's advisory lock matches a node's key with odds of 1 in 2^64 per key it
    uses; either way a lock that cannot be taken leaves that node on heartbeats alone.
    """

    def _setup(self, connection: Any) -> None:
        connection.autocommit = True
        # A session that idles between probes must not be ended by the server.
        self._query(connection, "SET idle_session_timeout = 0")

    def _take(self, connection: Any) -> bool:
        ((taken,),) = self._query(
            connection, "SELECT pg_try_advisory_lock(%s)", [advisory_key(self.node_id)]
        )
        return bool(taken)

    def _server_started_at(self, connection: Any) -> datetime:
        # A crash of one backend restarts every session without restarting the postmaster;
        # the checkpointer is started again then (its start is NULL if we may not see it).
        ((started,),) = self._query(
            connection,
            "SELECT greatest(pg_postmaster_start_time(), (SELECT max(backend_start) "
            "FROM pg_stat_activity WHERE backend_type = 'checkpointer'))",
        )
        return started.astimezone(timezone.utc)  # type: ignore[no-any-return]

    def _held_by_anyone(self, connection: Any, node_ids: list[str]) -> set[str]:
        rows = self._query(
            connection,
            "SELECT classid::bigint, objid::bigint FROM pg_locks WHERE locktype = 'advisory' "
            "AND objsubid = 1 AND granted AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        held = {(high << 32) | low for high, low in rows}
        return {n for n in node_ids if advisory_key(n) % 2**64 in held}


class MysqlLock(SessionLock):
    """``GET_LOCK(name, 0)``, the name from the node id and the database name.

    MySQL's lock names are server-wide: the database name (cut to fit 64 characters) keeps
    two projects on one server apart, and node ids are random (UUID4) anyway.
    """

    def _setup(self, connection: Any) -> None:
        connection.autocommit(True)
        # The longest wait_timeout the server accepts: a quiet lock session must not expire.
        self._query(connection, "SET SESSION wait_timeout = 31536000")

    def _take(self, connection: Any) -> bool:
        ((taken,),) = self._query(connection, "SELECT GET_LOCK(%s, 0)", [self.name(self.node_id)])
        return bool(taken == 1)

    def _server_started_at(self, connection: Any) -> datetime:
        # Uptime is whole seconds: the start computed from it is at or after the real one.
        ((now,),) = self._query(connection, "SELECT UTC_TIMESTAMP(6)")
        ((_, uptime),) = self._query(connection, "SHOW GLOBAL STATUS LIKE 'Uptime'")
        return now.replace(tzinfo=timezone.utc) - timedelta(seconds=int(uptime))  # type: ignore[no-any-return]

    def _held_by_anyone(self, connection: Any, node_ids: list[str]) -> set[str]:
        columns = ", ".join(["IS_USED_LOCK(%s)"] * len(node_ids))
        ((*holders,),) = self._query(
            connection, f"SELECT {columns}", [self.name(n) for n in node_ids]
        )
        return {n for n, holder in zip(node_ids, holders, strict=True) if holder is not None}

    def name(self, node_id: str) -> str:
        return mysql_lock_name(node_id, str(connections[self.database].settings_dict["NAME"]))


def mysql_lock_name(node_id: str, database_name: str) -> str:
    """``clockwork.<node id>.<database name>``, cut to MySQL's 64 characters."""
    return f"clockwork.{node_id}.{database_name}"[:MYSQL_NAME_LENGTH]


def advisory_key(node_id: str) -> int:
    """A signed 64-bit PostgreSQL advisory lock key for a node id."""
    digest = hashlib.blake2b(f"django-clockwork node {node_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _close_quietly(connection: Any) -> None:
    try:
        connection.close()
    except Exception:
        logger.debug("Closing a lock connection failed", exc_info=True)
