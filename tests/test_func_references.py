"""Which callables a row may name: any reference that imports back to the same callable."""

from __future__ import annotations

import pytest

from django_clockwork import DjangoJobStore, SerializationError
from django_clockwork.models import Job

from .conftest import MakeJob
from .jobs import Greeter


class Counter:
    def __init__(self) -> None:
        self.step = 2

    def add(self, value: int) -> int:
        return value + self.step

    @classmethod
    def make(cls) -> str:
        return cls.__name__

    @staticmethod
    def double(value: int) -> int:
        return value * 2

    def __call__(self) -> str:
        return "called"


#: A module-level instance: ``"tests.test_func_references:COUNTER.add"`` imports back to it.
COUNTER = Counter()

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("func", "args", "result"),
    [
        ("tests.test_func_references:COUNTER.add", (1,), 3),
        (Counter.make, (), "Counter"),
        ("tests.test_func_references:Counter.make", (), "Counter"),
        (Counter.double, (4,), 8),
        ("tests.jobs:noop", (), None),
    ],
    ids=["instance-text", "classmethod", "classmethod-text", "staticmethod", "function"],
)
def test_reference_that_imports_back_is_stored(
    store: DjangoJobStore, make_job: MakeJob, func: object, args: tuple[int, ...], result: object
) -> None:
    store.add_job(make_job("ref", func=func, args=args))
    loaded = store.lookup_job("ref")
    assert loaded is not None
    assert loaded.func(*loaded.args) == result


@pytest.mark.parametrize(
    "func",
    [Greeter().greet, COUNTER.add, COUNTER],
    ids=["method-of-new-instance", "method-given-as-object", "callable-instance"],
)
def test_reference_to_something_else_is_refused(
    store: DjangoJobStore, make_job: MakeJob, func: object
) -> None:
    # APScheduler names these by their class ("...:Counter.add", "...:Counter"), which
    # imports back to a function or a class: the instance would be lost.
    job = make_job("ref", func=func, args=(1,) if func == COUNTER.add else ())
    with pytest.raises(SerializationError, match="does not import back to the callable given"):
        store.add_job(job)
    assert not Job.objects.exists()
