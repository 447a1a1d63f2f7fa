"""``Watchdog``: makes hung jobs visible, from a thread of the runtime.

Every check (at most a second apart) it looks at the runs this scheduler executes:

- a run past its long-running threshold (the job's ``long_running_after``, else
  ``LONG_RUNNING_AFTER``) is logged once, at WARNING, and noted on its ledger row;
- when the executor has had no free worker thread for ``NO_FREE_WORKER_AFTER`` while due
  runs wait, that is logged once per episode, at WARNING, naming the runs that hold the
  workers, and noted on each of them (once per run); an INFO line follows when a worker
  is free again.

Notes go to ``JobExecution.warning`` through ``Ledger.warned``; a note that cannot be
written is logged, never retried (the log line was written already).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.db import connections

from django_clockwork.executor import ClockworkExecutor, Flight
from django_clockwork.logtext import format_time, user

logger = logging.getLogger(__name__)

#: The longest time between two checks; shorter when a threshold is (a quarter of it).
CHECK_INTERVAL = 1.0
#: The shortest time between two checks.
MIN_CHECK_INTERVAL = 0.05


class Watchdog:
    """Watches one executor's runs; ``start()`` with the scheduler, ``stop()`` after.

    :param executor: whose runs and worker threads to watch
    :param runs_waiting: whether due runs wait for a free worker (``DjangoJobStore.runs_waiting``)
    :param long_running_after: seconds, for jobs without their own threshold (None: never)
    :param no_free_worker_after: seconds (None: never)
    :param node: this scheduler, as log lines name it
    """

    def __init__(
        self,
        executor: ClockworkExecutor,
        runs_waiting: Callable[[], bool],
        *,
        long_running_after: float | None,
        no_free_worker_after: float | None,
        node: str,
    ) -> None:
        self.executor = executor
        self.runs_waiting = runs_waiting
        self.long_running_after = long_running_after
        self.no_free_worker_after = no_free_worker_after
        self.node = node
        thresholds = [t for t in (long_running_after, no_free_worker_after) if t is not None]
        self.interval = max(min([CHECK_INTERVAL, *(t / 4 for t in thresholds)]), MIN_CHECK_INTERVAL)
        self._long: set[tuple[str, str, datetime]] = set()
        self._held: set[tuple[str, str, datetime]] = set()
        self._full_since: float | None = None
        self._full_warned = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="clockwork-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(self.interval + 5)

    def _run(self) -> None:
        try:
            while not self._stopping.wait(self.interval):
                try:
                    self.check()
                except Exception:
                    logger.exception("The watchdog of node %s failed; checking again", self.node)
        finally:
            connections.close_all()  # this thread's connections only

    def check(self, now: float | None = None) -> None:
        """One round: ``now`` is ``time.monotonic()`` (injectable for tests)."""
        now = time.monotonic() if now is None else now
        flights = self.executor.flights()
        live = {flight.key for flight in flights}
        self._long &= live
        self._held &= live
        for flight in flights:
            self._check_long_running(flight, now)
        self._check_workers(flights, now)

    def _check_long_running(self, flight: Flight, now: float) -> None:
        threshold = flight.long_running_after
        if threshold is None:
            threshold = self.long_running_after
        took = now - flight.started
        if threshold is None or took < threshold or flight.key in self._long:
            return
        self._long.add(flight.key)
        logger.warning(
            'Job "%s" (id %s, scheduled at %s) has been running for %s on node %s, longer than '
            "its long-running threshold of %ss",
            flight.job,
            user(repr(flight.job_id)),
            format_time(flight.run_time),
            _duration(took),
            self.node,
            f"{threshold:g}",
        )
        self._note(
            flight,
            f"Long running: still running after {_duration(took)} (its long-running threshold "
            f"is {threshold:g}s)",
        )

    def _check_workers(self, flights: list[Flight], now: float) -> None:
        if self.executor.free_slots() > 0:
            if self._full_warned and self._full_since is not None:
                logger.info(
                    "A worker thread of node %s is free again, after %s with none free",
                    self.node,
                    _duration(now - self._full_since),
                )
            self._full_since, self._full_warned = None, False
            return
        if self._full_since is None:
            self._full_since = now
        limit = self.no_free_worker_after
        full_for = now - self._full_since
        if self._full_warned or limit is None or full_for < limit or not self.runs_waiting():
            return
        self._full_warned = True
        logger.warning(
            "No free worker thread on node %s for %s while due runs wait (MAX_WORKERS %d); "
            "the workers are held by: %s",
            self.node,
            _duration(full_for),
            self.executor.max_workers,
            "; ".join(
                f'"{flight.job}" (id {user(repr(flight.job_id))}, scheduled at '
                f"{format_time(flight.run_time)}, running for "
                f"{_duration(now - flight.started)})"
                for flight in sorted(flights, key=lambda f: f.started)
            )
            or "runs that have not started yet",
        )
        for flight in flights:
            if flight.key not in self._held:
                self._held.add(flight.key)
                self._note(
                    flight,
                    f"Held a worker thread while due runs waited: no worker of node {self.node} "
                    f"was free for {_duration(full_for)}",
                )

    def _note(self, flight: Flight, note: str) -> None:
        try:
            stamp = datetime.now(dt_timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            self.executor.ledger(flight.database).warned(
                flight.job_id, flight.run_time, f"{stamp} {note}"
            )
        except Exception:
            logger.exception(
                "Could not note on the run of job %r at %s: %s",
                user(flight.job_id),
                format_time(flight.run_time),
                note,
            )


def _duration(seconds: float) -> str:
    """``0:10:05`` for durations of a second or more, ``0.42s`` below."""
    if seconds < 1:
        return f"{seconds:.2f}s"
    return str(timedelta(seconds=round(seconds)))
