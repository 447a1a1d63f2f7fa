"""``manage.py runscheduler``: run a blocking scheduler in the foreground."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from django_clockwork.conf import get_conf
from django_clockwork.logtext import ZoneFormatter
from django_clockwork.runtime import Runtime

logger = logging.getLogger("django_clockwork.runscheduler")

#: Seconds a forced stop waits to record its abandoned runs before exiting anyway.
FORCE_RECORD_TIMEOUT = 15.0

_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}

#: The lines ``runscheduler`` writes to stderr when the project's LOGGING leaves the root
#: logger without a handler: ``2026-03-29 03:30:00,123 CEST INFO myapp.jobs: ...``.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def seconds(value: str) -> float:
    """argparse type: a number of seconds >= 0."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be >= 0")
    return number


#: Seconds the main thread waits, after the scheduling loop ended, for the node to stop.
STOPPED_WAIT = 30.0


class GracefulStop:
    """First SIGINT/SIGTERM: stop claiming, wait for running jobs (bounded), stop.
    Second: stop now, recording the runs still executing as ``abandoned``."""

    def __init__(self, runtime: Runtime, timeout: float) -> None:
        self.runtime = runtime
        self.timeout = timeout
        self.reason: str | None = None

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self.on_signal)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.reason is not None:
            # Not here: the main thread may be inside a query on the connection we would use.
            threading.Thread(
                target=self.force, args=(f"second signal ({name})",), daemon=True
            ).start()
            return
        self.reason = f"received {name}"
        self.runtime.stop_claiming()
        logger.warning(
            "Stopping (%s): claiming no more runs, waiting up to %ss for %d running job(s); "
            "send the signal again to stop at once",
            name,
            self.timeout,
            self.runtime.running_jobs,
        )
        threading.Thread(target=self._drain, name="clockwork-shutdown", daemon=True).start()

    def _drain(self) -> None:
        if self.runtime.wait_for_jobs(self.timeout):
            self.runtime.scheduler.shutdown(wait=False)
        else:
            self.force(f"shutdown timeout of {self.timeout}s reached")

    def force(self, why: str) -> None:
        """Record the runs still executing as abandoned (bounded wait), then exit at once."""
        recorded: list[int] = []
        writer = threading.Thread(
            target=lambda: recorded.append(
                self.runtime.abandon_in_flight(f"The scheduler was stopped: {why}")
            ),
            daemon=True,
        )
        writer.start()
        writer.join(FORCE_RECORD_TIMEOUT)
        if recorded:
            logger.error(
                "Scheduler stopped at once (%s); %d run(s) marked abandoned", why, recorded[0]
            )
        else:
            logger.error(
                "Scheduler stopped at once (%s); the database did not answer within %ss, so "
                "its running runs will be marked abandoned by the other nodes",
                why,
                FORCE_RECORD_TIMEOUT,
            )
        logging.shutdown()
        sys.stdout.flush()
        os._exit(1)


class Command(BaseCommand):
    help = (
        "Run a django-clockwork scheduler in the foreground. Any number may run at once on one "
        "database; each scheduled run fires once. SIGINT/SIGTERM stops gracefully, a second "
        "signal at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--shutdown-timeout",
            type=seconds,
            default=None,
            help="Seconds to wait for running jobs after the first SIGINT/SIGTERM "
            "(default: CLOCKWORK['SHUTDOWN_TIMEOUT']).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        _configure_logging(options["verbosity"])
        conf = get_conf()
        timeout = options["shutdown_timeout"]
        runtime = Runtime(conf, blocking=True)
        stop = GracefulStop(runtime, conf.shutdown_timeout if timeout is None else timeout)
        stop.install()
        logger.info(
            "Scheduler starting on %s pid %d (database %r, time zone %s, poll every %ss, "
            "%d worker threads)",
            socket.gethostname(),
            os.getpid(),
            conf.database,
            conf.timezone,
            conf.poll_interval,
            conf.max_workers,
        )
        runtime.scheduler.start()
        # The loop ends as soon as the scheduler is marked stopped; the rest of the shutdown
        # (stopping the heartbeat, recording the node stopped, releasing its session lock)
        # runs in the thread that called shutdown(). Exiting before it ends would leave the
        # node to be declared dead, and its claimed runs abandoned.
        if not runtime.stopped.wait(STOPPED_WAIT):
            logger.warning("The node did not finish stopping within %ss", STOPPED_WAIT)
        logger.info("Scheduler stopped: %s", stop.reason or "shut down")


def _configure_logging(verbosity: int) -> None:
    """Show the project's log lines as well as ours, at the level ``--verbosity`` asks for.

    If the project's ``LOGGING`` gave the root logger no handler, the root logger gets one on
    stderr (times in the scheduler's zone), so ``logging.getLogger(__name__)`` in a job is
    seen: WARNING at ``-v 0``, INFO at 1 and 2, DEBUG at 3. A project whose root logger has a
    handler keeps its own configuration. Our loggers follow ``-v`` in both cases (DEBUG from
    ``-v 2``), APScheduler's too (DEBUG only at ``-v 3``).
    """
    level = _LEVELS.get(verbosity, logging.DEBUG)
    others = level if verbosity >= 3 else max(level, logging.INFO)
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(ZoneFormatter(LOG_FORMAT))
        root.addHandler(handler)
        root.setLevel(others)
    logging.getLogger("django_clockwork").setLevel(level)
    logging.getLogger("apscheduler").setLevel(others)
