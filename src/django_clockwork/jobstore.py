"""``DjangoJobStore``: an APScheduler 3 job store with claim-and-advance.

Several schedulers may share one table. ``get_due_jobs`` claims due rows in one
transaction (row locks with SKIP LOCKED where the database has them, else a
version compare-and-set), advances their ``next_run_time`` itself and writes one
ledger row per run time, so that a run time is handed to exactly one scheduler.
The scheduler's own write-back of the same pass is then a no-op.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any, TypeVar

from apscheduler.job import Job as APJob
from apscheduler.jobstores.base import (
    BaseJobStore,
    ConflictingIdError,
    JobLookupError,
    TransientJobError,
)
from apscheduler.util import ref_to_obj
from django.db import IntegrityError, InterfaceError, OperationalError, connections, transaction
from django.db.models import Case, Count, DateTimeField, F, Q, Value, When
from django.db.models.functions import Cast
from django.utils import timezone

from django_clockwork.conf import get_conf
from django_clockwork.models import (
    ExecutionStatus,
    Job,
    JobExecution,
    JobSource,
    SchedulerNode,
)
from django_clockwork.serialization import (
    SerializationError,
    check_json_arguments,
    trigger_from_json,
    trigger_to_json,
)
from django_clockwork.wakeups import CLAIMING_SETTING

logger = logging.getLogger(__name__)

#: How often rows flagged as broken are tried again (a deploy may have fixed them).
BROKEN_RECHECK_SECONDS = 60.0
#: Rows per UPDATE statement when advancing a claimed batch (bounded host parameters).
ADVANCE_CHUNK = 200


#: Pauses before retrying a store call that failed on a dropped connection.
RETRY_DELAYS = (0.05, 0.5, 2.0)

_T = TypeVar("_T")


def retry_on_disconnect(method: Callable[..., _T]) -> Callable[..., _T]:
    """Retry a method of an object with a ``database`` attribute, on a fresh connection,
    when the database connection failed.

    A restarted server, ``wait_timeout`` or ``pg_terminate_backend`` leaves Django with a
    dead connection that only the next query discovers. Inside the caller's own
    transaction nothing is retried: that transaction is lost and the caller must know.
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> _T:
        for delay in (*RETRY_DELAYS, None):
            try:
                return method(self, *args, **kwargs)
            except (OperationalError, InterfaceError) as exc:
                connection = connections[self.database]
                if delay is None or connection.in_atomic_block:
                    raise
                logger.warning(
                    "%s on database %r failed (%s); retrying in %ss on a new connection",
                    method.__name__,
                    self.database,
                    str(exc).strip(),
                    delay,
                )
                connection.close()
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    return wrapper


@dataclass(frozen=True)
class Claim:
    """What one claim handed to this process: the run times it owns in the ledger."""

    database: str
    run_times: tuple[datetime, ...]
    #: Run times recorded ``skipped``: the job had ``max_instances`` unfinished runs fleet-wide.
    skipped: tuple[datetime, ...] = ()


class StoredJob(APJob):  # type: ignore[misc]
    """An APScheduler job loaded from the table; remembers the row version it was read at."""

    __slots__ = ("_clockwork_claim", "_clockwork_version")


class SyncedRunTimes:
    """The ``next_run_time`` each job object carried when it last matched its row.

    Objects are remembered when the store adds, loads or writes them. ``update_job`` writes a
    job's ``next_run_time`` only if the writer changed it since then, so that a copy read
    before a claim advanced the row never restores the old time. Keyed by identity and held
    weakly: APScheduler's ``Job`` compares by id and cannot be hashed, and the store must not
    keep the scheduler's job objects alive.
    """

    def __init__(self) -> None:
        self._times: dict[int, tuple[weakref.ref[APJob], datetime | None]] = {}

    def remember(self, job: APJob) -> None:
        key = id(job)

        def forget(ref: weakref.ref[APJob]) -> None:
            entry = self._times.get(key)
            if entry is not None and entry[0] is ref:
                self._times.pop(key, None)

        self._times[key] = (weakref.ref(job, forget), job.next_run_time)

    def changed(self, job: APJob) -> bool | None:
        """Whether the job's ``next_run_time`` changed since it was remembered; None for an
        object this store never saw."""
        now_carried = job.next_run_time
        entry = self._times.get(id(job))
        if entry is None or entry[0]() is not job:
            return None
        return bool(now_carried != entry[1])


class ClaimConflictError(Exception):
    """Another scheduler changed a row between our read and our write; retry the pass."""


class DjangoJobStore(BaseJobStore):  # type: ignore[misc]
    """Stores jobs in ``django_clockwork.Job`` rows; safe for many schedulers at once.

    :param database: database alias (default: ``CLOCKWORK['DATABASE']``)
    :param poll_interval: cap on ``get_next_run_time`` in seconds, so that changes made by
        other processes are seen (default: ``CLOCKWORK['POLL_INTERVAL']``); ``None`` disables it
    :param batch_size: rows claimed per pass (default: ``CLOCKWORK['CLAIM_BATCH_SIZE']``)
    :param source: recorded on rows this store creates
    """

    _UNSET: Any = object()

    def __init__(
        self,
        database: str | None = None,
        poll_interval: float | None = _UNSET,
        batch_size: int | None = None,
        source: str = JobSource.API,
    ) -> None:
        super().__init__()
        conf = get_conf()
        self.database = database or conf.database
        self.poll_interval = conf.poll_interval if poll_interval is self._UNSET else poll_interval
        self.batch_size = batch_size or conf.claim_batch_size
        self.retry_interval = conf.retry_interval
        self.source = source
        self._closed = False
        self._post_claim: set[str] = set()
        self._last_recheck = float("-inf")
        self._lock = threading.RLock()
        #: Set by ``create_scheduler()``: the node this store claims for (ledger ``node_id``),
        #: which turns on fleet-wide ``max_instances`` counting over live nodes.
        self.node_id = ""
        self.node_timeout = conf.node_timeout
        #: Set by ``create_scheduler()``: how many runs this process can start now. A claim
        #: takes no more, so a busy scheduler leaves due jobs to idle ones.
        self.capacity: Callable[[], int] | None = None
        #: True while a claim was cut short for want of capacity.
        self.starved = False
        #: Set by ``create_scheduler()``: the runs the executor has and has not finished.
        self.submitted: Callable[[], set[tuple[str, datetime]]] | None = None
        self._claim_failed = False
        self._synced = SyncedRunTimes()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} database={self.database!r}>"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        self._closed = False

    def shutdown(self) -> None:
        """Hand out nothing more: APScheduler runs one last pass after shutdown."""
        self._closed = True

    def stop_claiming(self) -> None:
        """Keep answering lookups but claim no more runs (graceful shutdown)."""
        self._closed = True

    # -- reads -------------------------------------------------------------------------------

    def _rows(self) -> Any:
        drop_broken_connection(self.database)
        return Job.objects.using(self.database)

    @retry_on_disconnect
    def lookup_job(self, job_id: str) -> StoredJob | None:
        row = self._rows().active().filter(id=job_id).first()
        if row is None:
            return None
        try:
            return self._restore(row)
        except Exception as exc:
            self._flag(row, exc)
            return None

    @retry_on_disconnect
    def get_all_jobs(self) -> list[StoredJob]:
        rows = self._rows().active().order_by(F("next_run_time").asc(nulls_last=True), "id")
        jobs = []
        for row in rows:
            try:
                jobs.append(self._restore(row))
            except Exception as exc:
                self._flag(row, exc)
        return jobs

    def get_next_run_time(self) -> datetime | None:
        """The earliest due time this store would hand out, capped at the poll interval.

        Never raises: after a database error it answers ``now + retry interval``.
        """
        with self._lock:
            self._post_claim.clear()
        if self._closed:
            return None
        now = timezone.now()
        try:
            self._recheck_broken(now)
            earliest: datetime | None = (
                self._rows()
                .loadable()
                .filter(next_run_time__isnull=False)
                .order_by("next_run_time")
                .values_list("next_run_time", flat=True)
                .first()
            )
        except Exception:
            logger.exception(
                "Could not read the next run time from database %r; retrying in %ss",
                self.database,
                self.retry_interval,
            )
            return now + timedelta(seconds=self.retry_interval)
        if self.poll_interval is None:
            return earliest
        cap = now + timedelta(seconds=self.poll_interval)
        if self.starved:
            return cap  # due jobs wait for a free thread: the executor wakes us, else the poll
        return cap if earliest is None else min(earliest, cap)

    # -- claim-and-advance -------------------------------------------------------------------

    @retry_on_disconnect
    def get_due_jobs(self, now: datetime) -> list[StoredJob]:
        with self._lock:
            self._post_claim.clear()
            if self._closed:
                return []
            try:
                jobs = self._claim(now)
            except ClaimConflictError:
                logger.debug("Claim lost a race with another scheduler; retrying next pass")
                return []
            except (OperationalError, InterfaceError):
                self._claim_failed = True  # its commit may have reached the server anyway
                raise
            if self._claim_failed:
                jobs = jobs + self._recover(now, {job.id for job in jobs})
                self._claim_failed = False
            self._post_claim.update(job.id for job in jobs)
            return jobs

    def _recover(self, now: datetime, claimed_now: set[str]) -> list[StoredJob]:
        """Hand out again the runs of a claim whose commit succeeded but whose answer was lost.

        A connection that drops during COMMIT leaves this node's ledger rows ``scheduled``
        with nobody to run them (and counting against ``max_instances`` for ever). They are
        this node's ``scheduled`` rows that its executor does not have.
        """
        if not self.node_id or self.submitted is None:
            return []
        known = self.submitted()
        orphans: dict[str, list[datetime]] = {}
        for job_id, run_time in (
            JobExecution.objects.using(self.database)
            .filter(node_id=self.node_id, status=ExecutionStatus.SCHEDULED)
            .exclude(job_id__in=claimed_now)
            .values_list("job_id", "scheduled_run_time")
        ):
            if (job_id, run_time) not in known:
                orphans.setdefault(job_id, []).append(run_time)
        jobs = []
        for row in Job.objects.using(self.database).loadable().filter(id__in=orphans):
            try:
                job = self._load(row)
            except Exception as exc:
                self._flag(row, exc)
                continue
            times = tuple(sorted(orphans.pop(row.id)))
            logger.warning(
                "Recovered %d run(s) of job %r claimed by a commit whose answer was lost",
                len(times),
                row.id,
            )
            job._modify(next_run_time=times[0])  # so the scheduler submits it now
            job._clockwork_claim = Claim(self.database, times)
            jobs.append(job)
        for job_id, lost in orphans.items():  # their job was removed or is broken meanwhile
            JobExecution.objects.using(self.database).filter(
                job_id=job_id, scheduled_run_time__in=lost, status=ExecutionStatus.SCHEDULED
            ).update(
                status=ExecutionStatus.ABANDONED,
                finished_at=now,
                exception="Claimed, but its job could not be loaded when the claim was recovered",
            )
        return jobs

    def _claim(self, now: datetime) -> list[StoredJob]:
        connection = connections[self.database]
        drop_broken_connection(self.database)
        if connection.vendor == "sqlite" and not Job.objects.using(self.database).due(now).exists():
            return []  # idle: don't take the write lock every poll (read outside the transaction:
            # SQLite refuses, without waiting, to upgrade a transaction that has read)
        with transaction.atomic(using=self.database):
            if connection.vendor == "sqlite":
                self._take_sqlite_write_lock(connection)
            rows = self._select_due(now, connection)
            planned = [plan for row in rows if (plan := self._plan(row, now)) is not None]
            if not planned:
                return []
            if connection.vendor == "postgresql":
                # The claim's own updates wake no other scheduler (see wakeups.TRIGGER_SQL).
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config(%s, 'on', true)", [CLAIMING_SETTING])
            self._advance(planned, now)
            owned, skipped = self._write_ledger(planned, now)
        jobs = []
        for row, job, run_times, _next in planned:
            mine = tuple(t for t in run_times if (row.id, t) in owned)
            refused = tuple(t for t in run_times if (row.id, t) in skipped)
            job._clockwork_claim = Claim(self.database, mine, refused)
            job._clockwork_version = row.version + 1
            jobs.append(job)
        return jobs

    @staticmethod
    def _take_sqlite_write_lock(connection: Any) -> None:
        # A write as the first statement makes SQLite take its write lock now (waiting for
        # other writers up to the busy timeout), so the SELECT below reads settled rows.
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {Job._meta.db_table} SET version = version WHERE 1 = 0")

    def _select_due(self, now: datetime, connection: Any) -> list[Job]:
        limit = self.batch_size
        if self.capacity is not None:
            limit = min(limit, self.capacity())
        query = Job.objects.using(self.database).due(now).order_by("next_run_time", "id")
        if connection.features.has_select_for_update_skip_locked:
            query = query.select_for_update(skip_locked=True)
        rows = list(query[:limit]) if limit > 0 else []
        self.starved = limit < self.batch_size and len(rows) == limit
        return rows

    def _plan(
        self, row: Job, now: datetime
    ) -> tuple[Job, StoredJob, list[datetime], datetime | None] | None:
        """What the scheduler will compute for this row: its run times and next fire time."""
        try:
            job = self._load(row)
            computed: list[datetime] = job._get_run_times(now)
            if job.coalesce:
                computed = computed[-1:]
            # The next fire time comes from the trigger's own (zone-local) form of the last run:
            # from its UTC form, a cron trigger can answer the same instant again in a DST fold.
            next_time = job.trigger.get_next_fire_time(computed[-1], now) if computed else None
            # Compare run times as UTC instants: a zone-local time in a fold or gap never
            # equals or hashes like its UTC form, and the same instant may appear in both.
            run_times = sorted({t.astimezone(dt_timezone.utc) for t in computed})
        except Exception as exc:
            self._flag(row, exc)
            return None
        if not run_times:
            return None
        return row, job, run_times, next_time

    def _advance(self, planned: Sequence[tuple[Job, StoredJob, Any, Any]], now: datetime) -> None:
        features = connections[self.database].features
        cast = features.requires_casted_case_in_updates
        for start in range(0, len(planned), ADVANCE_CHUNK):
            chunk = planned[start : start + ADVANCE_CHUNK]
            owned = Q()
            next_times = []
            finished = []
            for row, _job, _times, next_time in chunk:
                owned |= Q(id=row.id, version=row.version)
                value = Value(next_time, output_field=DateTimeField())
                next_times.append(
                    When(id=row.id, then=Cast(value, DateTimeField()) if cast else value)
                )
                if next_time is None:
                    finished.append(row.id)
            updated = (
                Job.objects.using(self.database)
                .filter(owned)
                .update(
                    next_run_time=Case(*next_times, output_field=DateTimeField()),
                    finished_at=Case(
                        When(id__in=finished, then=Value(now, output_field=DateTimeField())),
                        default=None,
                        output_field=DateTimeField(),
                    ),
                    version=F("version") + 1,
                    updated_at=now,
                )
            )
            if updated != len(chunk):
                raise ClaimConflictError

    def _write_ledger(
        self, planned: Sequence[tuple[Job, StoredJob, list[datetime], Any]], now: datetime
    ) -> tuple[set[tuple[str, datetime]], set[tuple[str, datetime]]]:
        """Insert the claimed run times; returns (to run, recorded as skipped)."""
        wanted = {
            (row.id, t.astimezone(dt_timezone.utc)) for row, _j, times, _n in planned for t in times
        }
        existing = set(
            JobExecution.objects.using(self.database)
            .filter(
                job_id__in={job_id for job_id, _ in wanted},
                scheduled_run_time__in={t for _, t in wanted},
            )
            .values_list("job_id", "scheduled_run_time")
        )
        if existing:
            logger.warning(
                "Not running %d run time(s) already in the ledger: %s",
                len(existing),
                sorted(existing),
            )
        names = {row.id: (row.name, row.func) for row, *_ in planned}
        busy = self._at_max_instances(planned)
        new = wanted - existing
        skipped = {(job_id, t) for job_id, t in new if job_id in busy}
        JobExecution.objects.using(self.database).bulk_create(
            JobExecution(
                job_id=job_id,
                job_name=names[job_id][0],
                func=names[job_id][1],
                scheduled_run_time=run_time,
                node_id=self.node_id,
                **(
                    {
                        "status": ExecutionStatus.SKIPPED,
                        "finished_at": now,
                        "exception": f"max_instances ({busy[job_id]}) reached: that many runs "
                        "were unfinished on live schedulers; this run was skipped",
                    }
                    if job_id in busy
                    else {}
                ),
            )
            for job_id, run_time in sorted(new)
        )
        return new - skipped, skipped

    def _at_max_instances(
        self, planned: Sequence[tuple[Job, StoredJob, list[datetime], Any]]
    ) -> dict[str, int]:
        """Jobs whose unfinished runs on live nodes already reach ``max_instances``.

        Runs inside the claim, which holds these jobs' rows, so two schedulers cannot both
        count below the limit for the same job.
        """
        if not self.node_id:
            return {}
        live = SchedulerNode.objects.using(self.database).live(self.node_timeout).values("id")
        counts = dict(
            JobExecution.objects.using(self.database)
            .unfinished()
            .filter(job_id__in=[row.id for row, *_ in planned], node_id__in=live)
            .values_list("job_id")
            .annotate(unfinished=Count("id"))
            .order_by()
        )
        return {
            row.id: row.max_instances
            for row, *_ in planned
            if counts.get(row.id, 0) >= row.max_instances
        }

    # -- writes ------------------------------------------------------------------------------

    @retry_on_disconnect
    def add_job(self, job: APJob) -> None:
        fields = row_fields(job)
        rows = self._rows()
        with transaction.atomic(using=self.database):
            rows.filter(id=job.id, finished_at__isnull=False).delete()
            try:
                with transaction.atomic(using=self.database):
                    rows.create(id=job.id, source=self.source, **fields)
            except IntegrityError:
                raise ConflictingIdError(job.id) from None
        if isinstance(job, StoredJob):
            job._clockwork_version = 1
        self._synced.remember(job)

    @retry_on_disconnect
    def update_job(self, job: APJob) -> None:
        with self._lock:
            if job.id in self._post_claim:
                # The scheduler writing back the pass we claimed: the claim already advanced it.
                self._post_claim.discard(job.id)
                self._synced.remember(job)
                return
        fields = row_fields(job)
        rows = self._rows()
        for _attempt in range(5):
            current = rows.active().filter(id=job.id).values("version", "trigger").first()
            if current is None:
                raise JobLookupError(job.id)
            values = dict(fields)
            if not self._writer_changed_next_run_time(job, current, values):
                del values["next_run_time"]
            updated = rows.filter(id=job.id, version=current["version"]).update(
                **values, version=F("version") + 1, load_error="", updated_at=timezone.now()
            )
            if updated:
                if isinstance(job, StoredJob):
                    job._clockwork_version = current["version"] + 1
                self._synced.remember(job)
                return
        raise ClaimConflictError(f"Job {job.id!r} kept changing while it was being updated")

    def _writer_changed_next_run_time(
        self, job: APJob, current: dict[str, Any], values: dict[str, Any]
    ) -> bool:
        """Whether a write means to set next_run_time, or would only restore a stale copy's.

        A job object this store added, loaded or wrote sets the time only if its writer
        changed the time since (a pause, a reschedule); otherwise the row keeps its own, which
        a claim may have advanced meanwhile. A job object the store never saw (a job re-added
        with ``replace_existing`` at start-up) keeps the row's time if its trigger is
        unchanged, so restarts neither re-fire nor skip runs.
        """
        changed = self._synced.changed(job)
        if changed is None:
            return bool(values["trigger"] != current["trigger"])
        return changed

    @retry_on_disconnect
    def remove_job(self, job_id: str) -> None:
        with self._lock:
            if job_id in self._post_claim:
                # The scheduler removing a job whose trigger is done: the claim marked it finished.
                self._post_claim.discard(job_id)
                return
        deleted, _ = self._rows().active().filter(id=job_id).delete()
        if not deleted:
            raise JobLookupError(job_id)

    @retry_on_disconnect
    def remove_all_jobs(self) -> None:
        self._rows().all().delete()

    # -- rows <-> jobs -----------------------------------------------------------------------

    def _load(self, row: Job) -> StoredJob:
        """Restore a row for running: it must also name an executor the scheduler has."""
        job = self._restore(row)
        executors = getattr(self._scheduler, "_executors", None)
        if executors is not None and job.executor not in executors:
            raise LookupError(f"no executor named {job.executor!r} is configured")
        return job

    def _restore(self, row: Job) -> StoredJob:
        if not isinstance(row.args, list) or not isinstance(row.kwargs, dict):
            raise SerializationError("args must be a JSON list and kwargs a JSON object")
        job = StoredJob.__new__(StoredJob)
        job.__setstate__(
            {
                "version": 1,
                "id": row.id,
                "func": row.func,
                "trigger": trigger_from_json(row.trigger),
                "executor": row.executor,
                "args": tuple(row.args),
                "kwargs": row.kwargs,
                "name": row.name or row.func,
                "misfire_grace_time": row.misfire_grace_time,
                "coalesce": row.coalesce,
                "max_instances": row.max_instances,
                "next_run_time": row.next_run_time,
            }
        )
        if not callable(job.func):
            raise TypeError(f"{row.func!r} is not callable")
        job._scheduler = self._scheduler
        job._jobstore_alias = self._alias
        job._clockwork_version = row.version
        job._clockwork_claim = None
        self._synced.remember(job)
        return job

    def _flag(self, row: Job, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        logger.error(
            "Job %r cannot be loaded and is skipped until fixed (row kept): %s", row.id, message
        )
        if row.load_error != message:
            Job.objects.using(self.database).filter(id=row.id, version=row.version).update(
                load_error=message
            )

    def _recheck_broken(self, now: datetime) -> None:
        """Give rows flagged as broken another chance: a deploy may have fixed them."""
        if time.monotonic() - self._last_recheck < BROKEN_RECHECK_SECONDS:
            return
        self._last_recheck = time.monotonic()
        for row in self._rows().broken():
            try:
                self._load(row)
            except Exception:
                continue
            logger.info("Job %r loads again; it is scheduled from now on", row.id)
            Job.objects.using(self.database).filter(id=row.id, version=row.version).update(
                load_error="", version=F("version") + 1, updated_at=now
            )


def drop_broken_connection(database: str) -> None:
    """Replace a connection that failed and is no longer usable, before using it again.

    Only a connection that saw an error is checked: unlike ``close_old_connections()`` this
    never closes a healthy connection (with ``CONN_MAX_AGE=0`` that would break a caller
    iterating a queryset), nor one inside the caller's transaction.
    """
    connection = connections[database]
    if connection.connection is None or connection.in_atomic_block:
        return
    if connection.errors_occurred:
        if connection.is_usable():
            connection.errors_occurred = False
        else:
            connection.close()


def check_reference(job: APJob) -> None:
    """Refuse a job whose ``func_ref`` does not import back to its callable.

    APScheduler names a bound method by its class (``"mod:Class.method"``), which imports
    back to the plain function: the instance would be lost. A reference to a method of a
    module-level instance (``"mod:instance.method"``) imports back to an equal bound method
    and is accepted.
    """
    try:
        same = ref_to_obj(job.func_ref) == job.func
    except (LookupError, ValueError):
        same = False
    if not same:
        raise SerializationError(
            f"Job {job.id!r}: {job.func_ref!r} does not import back to the callable given "
            f"({job.func!r}): a bound method of an instance, or a callable instance, cannot be "
            "stored as JSON. Use a module-level function, a staticmethod or a classmethod, or "
            "name a method of a module-level instance as 'module:instance.method'."
        )


def row_fields(job: APJob) -> dict[str, Any]:
    """The column values for an APScheduler job; refuses anything that is not plain JSON."""
    if not job.func_ref:
        raise TransientJobError(job.id)
    check_reference(job)
    try:
        check_json_arguments(job.args, job.kwargs)
    except SerializationError as exc:
        raise SerializationError(f"Job {job.id!r}: {exc}") from None
    return {
        "name": job.name,
        "func": job.func_ref,
        "trigger": trigger_to_json(job.trigger),
        "args": list(job.args),
        "kwargs": dict(job.kwargs),
        "executor": job.executor,
        "misfire_grace_time": job.misfire_grace_time,
        "coalesce": job.coalesce,
        "max_instances": job.max_instances,
        "next_run_time": job.next_run_time,
    }
