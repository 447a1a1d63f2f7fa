"""The demo's jobs, declared next to their functions (the recommended way: see the README's
"Jobs declared in code"). Every scheduler syncs them when it starts; ``manage.py seed_demo``
syncs them at once and adds a one-off job through ``api``. Jobs are stored as references
("demo_app.jobs:heartbeat"), so these stay module-level functions."""

from __future__ import annotations

import asyncio
import logging
import random
import time

from django.utils import timezone

from django_clockwork import current_execution, job_function, scheduled_job

logger = logging.getLogger(__name__)


class DemoFailure(RuntimeError):
    """Raised on purpose by :func:`always_fails`, so the ledger shows a failed run."""


@scheduled_job("interval", seconds=10, id="demo-heartbeat", name="Heartbeat (every 10 s)")
def heartbeat() -> None:
    """Log one line: proof the scheduler is alive."""
    run = current_execution()
    scheduled = timezone.localtime(run.scheduled_run_time) if run else timezone.localtime()
    logger.info("heartbeat: alive (run scheduled for %s)", f"{scheduled:%H:%M:%S}")


@scheduled_job(
    "cron",
    minute="*",
    kwargs={"title": "minutely report"},
    id="demo-report",
    name="Minutely report (cron, second 0)",
)
def report(title: str = "report") -> str:
    """Pretend to build a report: takes 1-2 s, so the ledger shows a real duration."""
    seconds = random.uniform(1.0, 2.0)
    logger.info("%s: building (%.1fs)...", title, seconds)
    time.sleep(seconds)
    logger.info("%s: done", title)
    return f"{title} built in {seconds:.1f}s"


@scheduled_job("interval", seconds=15, id="demo-fails", name="Fails on purpose (every 15 s)")
def always_fails() -> None:
    """Fail on purpose: the run is recorded as failed with this message and a traceback."""
    raise DemoFailure("This demo job fails on purpose; see its traceback in the admin.")


@job_function  # no schedule of its own: seed_demo adds a one-off run of it through api
async def async_greeting(name: str = "world") -> None:
    """A coroutine function: the scheduler runs it to completion on an event loop."""
    await asyncio.sleep(0.5)
    logger.info("hello, %s, from a coroutine", name)
