"""The running side of a scheduler: one owner for the store, executor, node and waker.

:class:`Runtime` is made with everything it needs and makes the rest by constructor;
starting its APScheduler scheduler starts the node's heartbeat and the PostgreSQL
listener, and shutting it down stops them. ``runscheduler`` and embedded mode stop it
through :meth:`Runtime.stop_gracefully` and :meth:`Runtime.abandon_in_flight`.
:func:`create_scheduler` is the public entry point.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN, EVENT_SCHEDULER_STARTED, SchedulerEvent
from apscheduler.schedulers.base import BaseScheduler

from django_clockwork import aps, wakeups
from django_clockwork.conf import Conf, get_conf
from django_clockwork.executor import ClockworkExecutor
from django_clockwork.jobstore import DjangoJobStore
from django_clockwork.nodes import Node
from django_clockwork.wakeups import PostgresWaker
from django_clockwork.watchdog import Watchdog

logger = logging.getLogger(__name__)


class Runtime:
    """One scheduler process's parts, wired at construction.

    :param conf: the parsed settings (default: ``get_conf()``)
    :param blocking: a ``BlockingScheduler`` (for a dedicated process) instead of a
        ``BackgroundScheduler`` (a thread inside another process)
    :param options: passed on to APScheduler, overriding what the settings give
    """

    def __init__(self, conf: Conf | None = None, *, blocking: bool = False, **options: Any):
        self.conf = conf = conf or get_conf()
        #: Set once a shutdown has stopped the heartbeat and recorded the node stopped.
        self.stopped = threading.Event()
        self.node = Node(conf.database)
        self.executor = ClockworkExecutor(
            conf.max_workers, node_id=self.node.id, on_slot_freed=self._slot_freed
        )
        self.store = DjangoJobStore(
            database=conf.database,
            node_id=self.node.id,
            capacity=self.executor.claim_capacity,
            submitted=self.executor.submitted_runs,
            claim_ahead=conf.claim_ahead,
            wants_runs=self.executor.wants_runs,
        )
        self.watchdog = Watchdog(
            self.executor,
            lambda: self.store.runs_waiting,
            long_running_after=conf.long_running_after,
            no_free_worker_after=conf.no_free_worker_after,
            node=f"{self.node.hostname} pid {self.node.pid} ({self.node.id[:8]})",
        )
        self.waker = (
            PostgresWaker(self._wake, conf.database) if wakeups.supported(conf.database) else None
        )
        self.scheduler: BaseScheduler = aps.scheduler_class(blocking=blocking)(
            runtime=self, **self._scheduler_config(options)
        )
        self.scheduler.add_listener(
            self._on_lifecycle, EVENT_SCHEDULER_STARTED | EVENT_SCHEDULER_SHUTDOWN
        )
        for listener in conf.listener_callables():
            self.scheduler.add_listener(listener)

    def __repr__(self) -> str:
        return f"<Runtime {self.node!r} database={self.conf.database!r}>"

    def _scheduler_config(self, options: dict[str, Any]) -> dict[str, Any]:
        defaults = self.conf.job_defaults
        return {
            "jobstores": {"default": self.store},
            "executors": {"default": self.executor},
            "job_defaults": {
                "misfire_grace_time": defaults.misfire_grace_time,
                "coalesce": defaults.coalesce,
                "max_instances": defaults.max_instances,
            },
            "timezone": self.conf.timezone,
            "jobstore_retry_interval": self.conf.retry_interval,
            **options,
        }

    # -- wiring -----------------------------------------------------------------------------

    def _wake(self) -> None:
        self.scheduler.wakeup()

    def _slot_freed(self) -> None:
        """The last claim took all it could (due jobs may be left, for want of room or by the
        batch size): claim again once a thread is idle or a thread's worth of runs has room
        (not a pass for every run that ends). A starved claim is a full one."""
        if self.store.full and self.executor.wants_runs():
            self.scheduler.wakeup()

    def _on_lifecycle(self, event: SchedulerEvent) -> None:
        """Start the heartbeat, the watchdog and the listener with the scheduler; stop them
        with it."""
        if event.code == EVENT_SCHEDULER_STARTED:
            at_exit(_stop_at_exit(weakref.ref(self)))
            self._sync_declarations()
            self.node.start()
            self.watchdog.start()
            if self.waker is not None:
                self.waker.start()
        else:
            if self.waker is not None:
                self.waker.stop()
            self.watchdog.stop()
            try:
                self.node.stop()
            finally:
                self.stopped.set()

    def _sync_declarations(self) -> None:
        """Make the table match the jobs declared in code (never fatal: logged, and the next
        start or ``manage.py clockwork sync`` tries again)."""
        from django_clockwork import declarations

        try:
            report = declarations.sync()
        except Exception:
            logger.exception("Could not sync the jobs declared in code")
            return
        for line in report.lines():
            logger.info("Declared jobs: %s", line)

    # -- stopping ---------------------------------------------------------------------------

    @property
    def running_jobs(self) -> int:
        """Runs handed to the executor and not finished (executing or waiting for a thread)."""
        return self.executor.running

    def stop_claiming(self) -> None:
        """Claim no more runs; the runs already claimed go on."""
        self.store.stop_claiming()

    def wait_for_jobs(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds for running jobs; True if none is left running."""
        return self.executor.wait(timeout)

    def abandon_in_flight(self, reason: str) -> int:
        """Record the runs still executing as ``abandoned``; returns how many."""
        return self.executor.abandon_in_flight(reason)

    def stop_gracefully(self, timeout: float) -> bool:
        """Stop claiming, wait up to ``timeout`` seconds for running jobs, then shut down.

        Returns True if every job finished; otherwise the runs still executing are recorded
        ``abandoned`` and the scheduler is shut down without waiting for them.
        """
        self.stop_claiming()
        drained = self.wait_for_jobs(timeout)
        if not drained:
            count = self.abandon_in_flight(
                f"The scheduler was stopped: shutdown timeout of {timeout}s reached"
            )
            logger.error(
                "Shutdown timeout of %ss reached; %d running job(s) marked abandoned",
                timeout,
                count,
            )
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        return drained


def at_exit(callback: Callable[[], None]) -> None:
    """Call ``callback`` at interpreter exit, before non-daemon threads are joined.

    ``threading``'s exit hooks run first (last registered first), then the interpreter
    joins non-daemon threads, then ``atexit`` hooks run.
    """
    register = getattr(threading, "_register_atexit", None)
    try:
        if register is not None:
            register(callback)
            return
    except RuntimeError:  # already shutting down
        pass
    atexit.register(callback)


def _stop_at_exit(ref: weakref.ref[Runtime]) -> Callable[[], None]:
    """At interpreter exit, a runtime whose scheduler still runs stops gracefully, and runs
    still executing after a shutdown get up to ``SHUTDOWN_TIMEOUT`` to finish: job threads are
    daemons, which the interpreter does not wait for."""

    def stop() -> None:
        runtime = ref()
        if runtime is None:
            return
        timeout = runtime.conf.shutdown_timeout
        if runtime.scheduler.running:
            runtime.stop_gracefully(timeout)
        elif runtime.running_jobs and not runtime.wait_for_jobs(timeout):
            # Shut down already, but runs handed over just before still execute.
            runtime.abandon_in_flight(f"The process exited: shutdown timeout of {timeout}s reached")

    return stop


def create_scheduler(*, blocking: bool = False, **options: Any) -> BaseScheduler:
    """A configured scheduler (not started) using ``DjangoJobStore`` and ``ClockworkExecutor``.

    When it starts, it registers a scheduler node and heartbeats (and on PostgreSQL listens
    for changes); when it shuts down, the node is marked stopped. Its ``runtime`` attribute
    is the :class:`Runtime` that owns those parts.

    :param blocking: a ``BlockingScheduler`` (for a dedicated process) instead of a
        ``BackgroundScheduler`` (a thread inside another process)
    :param options: passed on to APScheduler, overriding what the settings give
    """
    return Runtime(blocking=blocking, **options).scheduler
