"""Job functions used by the tests (importable by scheduler processes)."""

import logging
import os
import threading
from pathlib import Path

from django_clockwork import current_execution


def noop() -> None:
    pass


def fail() -> None:
    raise RuntimeError("this job fails on purpose")


async def async_job(value: int) -> int:
    return value * 2


def record_hit() -> None:
    """Append this run's (job id, scheduled time, pid) to the file named by CLOCKWORK_HITS."""
    execution = current_execution()
    assert execution is not None
    line = f"{execution.job_id}\t{execution.scheduled_run_time.timestamp():.6f}\t{os.getpid()}\n"
    with Path(os.environ["CLOCKWORK_HITS"]).open("a") as hits:
        hits.write(line)


def echo(*args: object, **kwargs: object) -> tuple[tuple[object, ...], dict[str, object]]:
    return args, kwargs


def sleep_then_hit(seconds: float) -> None:
    """Sleep, then record a hit like ``record_hit`` (for graceful-shutdown tests)."""
    import time

    time.sleep(seconds)
    record_hit()


def sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)


#: Ends every ``wait_for_release`` run: in-process tests of hung jobs set it when done.
RELEASE = threading.Event()


def wait_for_release(seconds: float) -> None:
    """A job that hangs until the test sets ``RELEASE`` (or ``seconds`` pass)."""
    RELEASE.wait(seconds)


def count_connections_closed() -> str:
    from django.db import connection

    return "open" if connection.connection is not None else "closed"


#: The database connection (DB-API object) each ``record_connection`` run used, in order.
CONNECTIONS: list[object] = []


def record_connection() -> None:
    """Query the default database and note the DB-API connection this run used."""
    from django.db import connection

    from django_clockwork.models import Job

    Job.objects.exists()
    CONNECTIONS.append(connection.connection)


def leave_transaction_open() -> None:
    """Enter an atomic block and never leave it (a job with a bug)."""
    from django.db import transaction

    from django_clockwork.models import Job

    transaction.atomic().__enter__()
    Job.objects.exists()


def whoami() -> object:
    return current_execution()


class Greeter:
    def greet(self) -> str:
        return "hello"


def broken_listener(event: object) -> None:
    raise RuntimeError("this listener fails on purpose")


def log_lines(message: str) -> None:
    """Log ``message`` at INFO and DEBUG, as a project's job does with its module logger."""
    logger = logging.getLogger(__name__)
    logger.info("info: %s", message)
    logger.debug("debug: %s", message)


def raise_message(message: str) -> None:
    raise ValueError(message)
