"""What is measured: one class per target, all driven the same way by the workloads.

A target makes a fresh, unstarted APScheduler scheduler with 10 worker threads (``scheduler``),
puts jobs into its store quickly (``seed``: a bulk insert, so that set-up does not dominate),
adds jobs the way its users do (``add``), counts the SQL statements it sends (``counting``)
and empties its store (``clear``). Job specs are plain (id, trigger, first run time) tuples;
every job calls ``benchmarks.jobs:hit`` (or ``hit_file``) with its own id.
"""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job as APJob
from apscheduler.jobstores.base import BaseJobStore
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger

from benchmarks import databases

WORKERS = 10
FUNC = "benchmarks.jobs:hit"


@dataclass(frozen=True)
class Spec:
    """One job to store: every target gets the same ones."""

    id: str
    trigger: BaseTrigger
    next_run_time: datetime
    func: str = FUNC


def ap_job(scheduler: BaseScheduler, spec: Spec) -> APJob:
    """An APScheduler job for ``spec`` (no grace limit: every run of a burst must fire)."""
    return APJob(
        scheduler,
        id=spec.id,
        func=spec.func,
        trigger=spec.trigger,
        executor="default",
        args=(spec.id,),
        kwargs={},
        name=spec.id,
        misfire_grace_time=None,
        coalesce=True,
        max_instances=1,
        next_run_time=spec.next_run_time,
    )


def stock_scheduler(store: BaseJobStore) -> BackgroundScheduler:
    return BackgroundScheduler(
        jobstores={"default": store},
        executors={"default": ThreadPoolExecutor(WORKERS)},
        timezone="UTC",
    )


class Target:
    name: ClassVar[str]
    #: Whether the store keeps jobs in the database (lookups cost statements).
    persistent: ClassVar[bool] = True
    #: An optional reference: its failure leaves its cells empty instead of failing the run.
    optional: ClassVar[bool] = False

    def __init__(self, database: str, db_name: str) -> None:
        self.database = database
        self.db_name = db_name
        self.store: Any = None
        self._scheduler: BaseScheduler | None = None

    def scheduler(self) -> BaseScheduler:
        self.store = self.make_store()
        self._scheduler = stock_scheduler(self.store)
        return self._scheduler

    def make_store(self) -> Any:
        raise NotImplementedError

    def seed(self, specs: list[Spec]) -> None:
        """Put jobs into the store, as fast as possible (not what is measured)."""
        assert self._scheduler is not None, "call scheduler() first"
        for spec in specs:
            self.store.add_job(ap_job(self._scheduler, spec))

    def add(self, spec: Spec) -> None:
        """Add one job the way this target's users do (the add workload)."""
        assert self._scheduler is not None, "call scheduler() first"
        self.store.add_job(ap_job(self._scheduler, spec))

    def all_jobs(self) -> list[Any]:
        return list(self.store.get_all_jobs())

    def stream_jobs(self) -> Iterator[Any] | None:
        """Every job one at a time, where the target has a streaming form (else None)."""
        return None

    @contextlib.contextmanager
    def counting(self) -> Iterator[list[tuple[str, Any]]]:
        """The SQL statements (with their parameters) sent inside the block, in order."""
        yield []

    def clear(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections (end of the benchmark)."""


class Memory(Target):
    name = "memory"
    persistent = False

    def make_store(self) -> Any:
        return MemoryJobStore()

    def clear(self) -> None:
        self.store = None


class SQLAlchemy(Target):
    name = "sqlalchemy"

    def __init__(self, database: str, db_name: str) -> None:
        super().__init__(database, db_name)
        from sqlalchemy import create_engine

        self.engine = create_engine(databases.sqlalchemy_url(database, db_name))

    def make_store(self) -> Any:
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

        store = SQLAlchemyJobStore(engine=self.engine)
        store.jobs_t.create(self.engine, checkfirst=True)
        return store

    def seed(self, specs: list[Spec]) -> None:
        from apscheduler.util import datetime_to_utc_timestamp

        assert self._scheduler is not None, "call scheduler() first"
        rows = [
            {
                "id": spec.id,
                "next_run_time": datetime_to_utc_timestamp(spec.next_run_time),
                "job_state": pickle.dumps(
                    ap_job(self._scheduler, spec).__getstate__(), self.store.pickle_protocol
                ),
            }
            for spec in specs
        ]
        with self.engine.begin() as connection:
            for start in range(0, len(rows), 5000):
                connection.execute(self.store.jobs_t.insert(), rows[start : start + 5000])

    @contextlib.contextmanager
    def counting(self) -> Iterator[list[tuple[str, Any]]]:
        from sqlalchemy import event

        statements: list[tuple[str, Any]] = []

        def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
            statements.append((statement, parameters))

        event.listen(self.engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            event.remove(self.engine, "before_cursor_execute", record)

    def clear(self) -> None:
        if self.store is not None:
            with self.engine.begin() as connection:
                connection.execute(self.store.jobs_t.delete())

    def close(self) -> None:
        self.engine.dispose()


class DjangoCounting(Target):
    """Targets whose store talks to the database through Django."""

    @contextlib.contextmanager
    def counting(self) -> Iterator[list[tuple[str, Any]]]:
        from django.db import connections

        statements: list[tuple[str, Any]] = []

        def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            statements.append((sql, params))
            return execute(sql, params, many, context)

        with connections["default"].execute_wrapper(record):
            yield statements


class Store(DjangoCounting):
    """Our ``DjangoJobStore`` alone, in a stock ``BackgroundScheduler`` and thread pool."""

    name = "store"

    def make_store(self) -> Any:
        from django_clockwork import DjangoJobStore

        return DjangoJobStore()

    def seed(self, specs: list[Spec]) -> None:
        from django_clockwork.models import Job
        from django_clockwork.rows import row_fields

        assert self._scheduler is not None, "call scheduler() first"
        rows = (Job(id=spec.id, **row_fields(ap_job(self._scheduler, spec))) for spec in specs)
        batch: list[Job] = []
        for row in rows:
            batch.append(row)
            if len(batch) == 2000:
                Job.objects.bulk_create(batch)
                batch.clear()
        Job.objects.bulk_create(batch)

    def clear(self) -> None:
        databases.truncate("django_clockwork_job", "django_clockwork_jobexecution")


class Ours(Store):
    """Ours as users run it: ``create_scheduler()``, default settings, ``CONN_MAX_AGE=0``."""

    name = "ours"

    def scheduler(self) -> BaseScheduler:
        from django_clockwork import create_scheduler

        self._scheduler = create_scheduler()
        self.store = self._scheduler.runtime.store  # type: ignore[attr-defined]
        return self._scheduler

    def add(self, spec: Spec) -> None:
        from django_clockwork import api

        api.add_job(
            spec.func,
            spec.trigger,
            args=[spec.id],
            id=spec.id,
            name=spec.id,
            misfire_grace_time=None,
            next_run_time=spec.next_run_time,
        )

    def all_jobs(self) -> list[Any]:
        from django_clockwork import api

        return list(api.get_jobs())

    def stream_jobs(self) -> Iterator[Any] | None:
        from django_clockwork import api

        return api.iter_jobs()

    def clear(self) -> None:
        databases.truncate(
            "django_clockwork_job",
            "django_clockwork_jobexecution",
            "django_clockwork_schedulernode",
        )


class DjangoAPScheduler(DjangoCounting):
    """django-apscheduler's ``DjangoJobStore`` (only where that package is installed)."""

    name = "django-apscheduler"
    optional = True

    def make_store(self) -> Any:
        from django_apscheduler.jobstores import DjangoJobStore

        return DjangoJobStore()

    def seed(self, specs: list[Spec]) -> None:
        from django_apscheduler.models import DjangoJob

        assert self._scheduler is not None, "call scheduler() first"
        rows = [
            DjangoJob(
                id=spec.id,
                next_run_time=spec.next_run_time,
                job_state=pickle.dumps(ap_job(self._scheduler, spec).__getstate__()),
            )
            for spec in specs
        ]
        DjangoJob.objects.bulk_create(rows, batch_size=2000)

    def clear(self) -> None:
        databases.truncate("django_apscheduler_djangojobexecution")
        from django_apscheduler.models import DjangoJob

        DjangoJob.objects.all().delete()


ALL: tuple[type[Target], ...] = (Memory, SQLAlchemy, Store, Ours, DjangoAPScheduler)
#: The references the ratio column divides ours by.
REFERENCES = ("memory", "sqlalchemy", "store", "django-apscheduler")


def available(database: str, db_name: str) -> list[Target]:
    """The targets to measure; SQLAlchemy is required (requirements/bench.txt)."""
    import importlib.util

    from django.conf import settings

    if importlib.util.find_spec("sqlalchemy") is None:
        raise SystemExit("SQLAlchemy is missing: pip install -r requirements/bench.txt")

    return [
        cls(database, db_name)
        for cls in ALL
        if cls is not DjangoAPScheduler or settings.HAS_DJANGO_APSCHEDULER
    ]
