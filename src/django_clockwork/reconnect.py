"""Surviving dropped database connections: retry on a fresh connection, never close a healthy one.

A restarted server, ``wait_timeout`` or ``pg_terminate_backend`` leaves Django with a
dead connection that only the next query discovers. Every long-lived thread of a
scheduler (the scheduling loop, heartbeats, job threads) goes through these. Job threads
keep their connections from one run to the next (``CONN_MAX_AGE`` is for requests):
:func:`replace_dead_connections` before a run, :func:`end_transactions` after it.
"""

from __future__ import annotations

import functools
import logging
import select
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import InterfaceError, OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Pauses before retrying a store call that failed on a dropped connection.
RETRY_DELAYS = (0.05, 0.5, 2.0)


def retry_on_disconnect(method: Callable[..., _T]) -> Callable[..., _T]:
    """Retry a method of an object with a ``database`` attribute, on a fresh connection,
    when the database connection failed.

    A restarted server, ``wait_timeout`` or ``pg_terminate_backend`` leaves Django with a
    dead connection that only the next query discovers. Inside the caller's own
    transaction nothing is retried: that transaction is lost and the caller must know.
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> _T:
        for delay in (*RETRY_DELAYS, None):
            try:
                return method(self, *args, **kwargs)
            except (OperationalError, InterfaceError) as exc:
                connection = connections[self.database]
                if delay is None or connection.in_atomic_block:
                    raise
                logger.warning(
                    "%s on database %r failed (%s); retrying in %ss on a new connection",
                    method.__name__,
                    self.database,
                    str(exc).strip(),
                    delay,
                )
                connection.close()
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    return wrapper


def drop_broken_connection(database: str) -> None:
    """Replace a connection that failed and is no longer usable, before using it again.

    Only a connection that saw an error is checked: unlike ``close_old_connections()`` this
    never closes a healthy connection (with ``CONN_MAX_AGE=0`` that would break a caller
    iterating a queryset), nor one inside the caller's transaction.
    """
    connection = connections[database]
    if connection.connection is None or connection.in_atomic_block:
        return
    if connection.errors_occurred:
        if connection.is_usable():
            connection.errors_occurred = False
        else:
            connection.close()


def replace_dead_connections() -> None:
    """Close this thread's connections that failed, or that the server ended while they
    were idle, so that the next query opens a new one: before a job runs.

    An idle connection has nothing to read; one whose socket is readable was ended by the
    server (``pg_terminate_backend``, ``KILL``, ``wait_timeout``, a restart), or was told
    something unasked, and is replaced. This costs no round trip.
    """
    for connection in connections.all(initialized_only=True):
        if connection.connection is None or connection.in_atomic_block:
            continue
        if connection.errors_occurred:
            drop_broken_connection(connection.alias)
        elif _hung_up(connection):
            logger.info(
                "The connection to database %r was ended by the server; replacing it",
                connection.alias,
            )
            connection.close()


def end_transactions() -> None:
    """Leave no transaction open on this thread's connections, keeping them open: after a
    job. A connection a job left inside a transaction (an ``atomic`` block not exited,
    autocommit turned off) is rolled back by closing it, and replaced."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        if connection.in_atomic_block or not connection.get_autocommit():
            logger.warning(
                "A job left a transaction open on database %r; it was rolled back and the "
                "connection replaced",
                connection.alias,
            )
            connection.close()
            del connections[connection.alias]  # a fresh wrapper, out of the job's atomic blocks
        elif connection.errors_occurred:
            drop_broken_connection(connection.alias)


def _hung_up(connection: BaseDatabaseWrapper) -> bool:
    fileno = getattr(connection.connection, "fileno", None)
    if fileno is None:  # SQLite: no server
        return False
    try:
        readable, _, _ = select.select([fileno()], [], [], 0)
    except (OSError, ValueError):  # the driver closed its socket already
        return True
    return bool(readable)
