"""``create_scheduler()``: an APScheduler scheduler wired to our store, executor and settings."""

from __future__ import annotations

from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from django_clockwork.conf import get_conf
from django_clockwork.executor import ClockworkExecutor
from django_clockwork.jobstore import DjangoJobStore


def create_scheduler(*, blocking: bool = False, **options: Any) -> BaseScheduler:
    """A configured scheduler (not started) using ``DjangoJobStore`` and ``ClockworkExecutor``.

    :param blocking: a ``BlockingScheduler`` (for a dedicated process) instead of a
        ``BackgroundScheduler`` (a thread inside another process)
    :param options: passed on to APScheduler, overriding what the settings give
    """
    conf = get_conf()
    config: dict[str, Any] = {
        "jobstores": {"default": DjangoJobStore(database=conf.database)},
        "executors": {"default": ClockworkExecutor(max_workers=conf.max_workers)},
        "job_defaults": {
            "misfire_grace_time": conf.job_defaults.misfire_grace_time,
            "coalesce": conf.job_defaults.coalesce,
            "max_instances": conf.job_defaults.max_instances,
        },
        "timezone": conf.timezone,
        "jobstore_retry_interval": conf.retry_interval,
        **options,
    }
    cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler: BaseScheduler = cls(**config)
    for listener in conf.listener_callables():
        scheduler.add_listener(listener)
    return scheduler
