"""Tasks of Django's tasks framework that the tests schedule (importable by workers)."""

import os
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
