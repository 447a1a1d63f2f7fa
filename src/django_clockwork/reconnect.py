"""Surviving dropped database connections: retry on a fresh connection, never close a healthy one.

A restarted server, ``wait_timeout`` or ``pg_terminate_backend`` leaves Django with a
dead connection that only the next query discovers. Every long-lived thread of a
scheduler (the scheduling loop, heartbeats, job threads) goes through these two.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import InterfaceError, OperationalError, connections

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
