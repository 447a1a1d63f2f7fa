"""Tasks of Django's tasks framework that the tests schedule (importable by workers)."""

import os
import time
import uuid
from pathlib import Path

from django_clockwork import taskframework

task = taskframework.require().task


@task()
def add(a: int, b: int) -> int:
    return a + b


@task(queue_name="emails")
def send_digest(user_id: int, *, subject: str = "digest") -> str:
    return f"{user_id}:{subject}"


@task()
def fail() -> None:
    raise RuntimeError("this task fails on purpose")


@task()
def record_hit(tag: str) -> None:
    """Append ``tag`` and this process's pid to the file named by CLOCKWORK_HITS."""
    with Path(os.environ["CLOCKWORK_HITS"]).open("a") as hits:
        hits.write(f"{tag}\t{os.getpid()}\n")


def not_a_task() -> None:
    """A plain function: a task job may not name it."""


#: A Task bound to a name other than its function's: a path must name it where it is defined.
alias = add


def result_id() -> uuid.UUID:
    """The ``id_function`` of the tests' database backend: a new UUID, as its default.

    When ``CLOCKWORK_SLOW_ENQUEUE`` names a directory holding a file ``once``, the first process
    to take that file (a rename, so only one does) writes its pid to ``in-claim`` and sleeps:
    it is inside its claim's transaction, where a test kills it.
    """
    slow = os.environ.get("CLOCKWORK_SLOW_ENQUEUE")
    if slow:
        try:
            os.rename(Path(slow) / "once", Path(slow) / "taken")
        except FileNotFoundError:
            pass
        else:
            (Path(slow) / "in-claim").write_text(str(os.getpid()))
            time.sleep(60)
    return uuid.uuid4()
