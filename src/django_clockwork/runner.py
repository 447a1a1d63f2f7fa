"""``create_scheduler()``: an APScheduler scheduler wired to our store, executor and settings."""

from __future__ import annotations

import logging
from typing import Any

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN, EVENT_SCHEDULER_STARTED, SchedulerEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from django.db import connections

from django_clockwork import wakeups
from django_clockwork.conf import get_conf
from django_clockwork.executor import ClockworkExecutor
from django_clockwork.jobstore import DjangoJobStore
from django_clockwork.nodes import Node
from django_clockwork.wakeups import PostgresWaker

logger = logging.getLogger(__name__)


class _Guarded:
    """Keeps APScheduler's scheduling thread alive whatever a pass raises.

    APScheduler 3 only catches errors of ``get_due_jobs``; one from ``update_job``,
    ``remove_job``, ``get_next_run_time`` or a listener's surroundings would end its loop.
    """

    jobstore_retry_interval: float

    def _main_loop(self) -> None:
        try:
            super()._main_loop()  # type: ignore[misc]
        finally:
            connections.close_all()  # this thread's connections; it ends here

    def _process_jobs(self) -> float | None:
        try:
            wait: float | None = super()._process_jobs()  # type: ignore[misc]
        except Exception:
            logger.exception(
                "A scheduling pass failed; retrying in %ss", self.jobstore_retry_interval
            )
            return self.jobstore_retry_interval
        return wait


class ClockworkBlockingScheduler(_Guarded, BlockingScheduler):  # type: ignore[misc]
    """APScheduler's BlockingScheduler with a guarded scheduling loop."""


class ClockworkBackgroundScheduler(_Guarded, BackgroundScheduler):  # type: ignore[misc]
    """APScheduler's BackgroundScheduler with a guarded scheduling loop."""


def create_scheduler(*, blocking: bool = False, **options: Any) -> BaseScheduler:
    """A configured scheduler (not started) using ``DjangoJobStore`` and ``ClockworkExecutor``.

    When it starts, it registers a scheduler node and heartbeats; when it shuts down, the
    node is marked stopped.

    :param blocking: a ``BlockingScheduler`` (for a dedicated process) instead of a
        ``BackgroundScheduler`` (a thread inside another process)
    :param options: passed on to APScheduler, overriding what the settings give
    """
    conf = get_conf()
    node = Node(conf.database)
    store = DjangoJobStore(database=conf.database)
    executor = ClockworkExecutor(max_workers=conf.max_workers)
    store.node_id = executor.node_id = node.id
    store.capacity = executor.free_slots
    store.submitted = lambda: set(executor.submitted)
    config: dict[str, Any] = {
        "jobstores": {"default": store},
        "executors": {"default": executor},
        "job_defaults": {
            "misfire_grace_time": conf.job_defaults.misfire_grace_time,
            "coalesce": conf.job_defaults.coalesce,
            "max_instances": conf.job_defaults.max_instances,
        },
        "timezone": conf.timezone,
        "jobstore_retry_interval": conf.retry_interval,
        **options,
    }
    cls = ClockworkBlockingScheduler if blocking else ClockworkBackgroundScheduler
    scheduler: BaseScheduler = cls(**config)
    scheduler.clockwork_node = node
    executor.on_slot_freed = lambda: scheduler.wakeup() if store.starved else None
    waker = PostgresWaker(scheduler, conf.database) if wakeups.supported(conf.database) else None
    scheduler.clockwork_waker = waker
    scheduler.add_listener(
        _lifecycle(node, waker), EVENT_SCHEDULER_STARTED | EVENT_SCHEDULER_SHUTDOWN
    )
    for listener in conf.listener_callables():
        scheduler.add_listener(listener)
    return scheduler


def _lifecycle(node: Node, waker: PostgresWaker | None) -> Any:
    """Start the node's heartbeat and the listener with the scheduler; stop them with it."""

    def on_event(event: SchedulerEvent) -> None:
        if event.code == EVENT_SCHEDULER_STARTED:
            node.start()
            if waker is not None:
                waker.start()
        else:
            if waker is not None:
                waker.stop()
            node.stop()

    return on_event
