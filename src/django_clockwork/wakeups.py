"""Instant wake-ups on PostgreSQL: LISTEN for the NOTIFY that the jobs table's trigger sends.

Polling stays the truth (every ``POLL_INTERVAL``); a notification only wakes the
scheduler sooner. The listener uses its own connection, reconnects with backoff,
and wakes the scheduler once after every reconnect (it may have missed a
notification while it was away).
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable
from typing import Any

from django.db import connections

logger = logging.getLogger(__name__)

#: The channel that migration 0003's trigger notifies on every change to the jobs table.
CHANNEL = "clockwork_jobs"
#: The setting the claim transaction sets so that its own updates wake nobody (the trigger
#: checks it).
CLAIMING_SETTING = "clockwork.claiming"
BACKOFF_MAX = 30.0


def supported(database: str) -> bool:
    return connections[database].vendor == "postgresql"


def notify(database: str) -> None:
    """Wake the listening schedulers (PostgreSQL; elsewhere they see it at their next poll).

    Sent inside the caller's transaction: PostgreSQL delivers it at commit, and never if the
    transaction rolls back.
    """
    if supported(database):
        with connections[database].cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])


class PostgresWaker:
    """Calls ``wake()`` (a scheduler's ``wakeup``) when the jobs table changes (PostgreSQL)."""

    def __init__(self, wake: Callable[[], None], database: str) -> None:
        self.wake = wake
        self.database = database
        self.backoff = 0.5
        self.connected = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="clockwork-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        delay = self.backoff
        reconnecting = False
        while not self._stopping.is_set():
            connection = None
            try:
                connection = self._connect()
                if reconnecting:
                    logger.info("Listening for job changes again; waking the scheduler once")
                    self.wake()
                delay, reconnecting = self.backoff, True
                self.connected.set()
                self._listen(connection)
            except Exception as exc:
                self.connected.clear()
                if self._stopping.is_set():
                    break
                logger.warning(
                    "Listening for job changes failed (%s); polling meanwhile, reconnecting in %ss",
                    exc,
                    delay,
                )
                self._stopping.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX)
            finally:
                if connection is not None:
                    _close_quietly(connection)

    def _connect(self) -> Any:
        wrapper = connections[self.database]
        connection = wrapper.get_new_connection(wrapper.get_connection_params())
        connection.autocommit = True
        connection.cursor().execute(f"LISTEN {CHANNEL}")
        return connection

    def _listen(self, connection: Any) -> None:
        from django.db.backends.postgresql.psycopg_any import is_psycopg3

        while not self._stopping.is_set():
            if is_psycopg3:
                woke = any(True for _ in connection.notifies(timeout=1.0, stop_after=1))
                # drain what else arrived, without waiting
                for _ in connection.notifies(timeout=0):
                    pass
            else:  # psycopg2
                ready, _, _ = select.select([connection], [], [], 1.0)
                if ready:
                    connection.poll()
                woke = bool(connection.notifies)
                connection.notifies.clear()
            if woke:
                self.wake()


def _close_quietly(connection: Any) -> None:
    try:
        connection.close()
    except Exception:
        logger.debug("Closing the listening connection failed", exc_info=True)
