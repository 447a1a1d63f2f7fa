"""``DjangoJobStore``: an APScheduler 3 job store with claim-and-advance.

Several schedulers may share one table. ``get_due_jobs`` claims due rows in one
transaction (row locks with SKIP LOCKED where the database has them, else a
version compare-and-set), advances their ``next_run_time`` itself and writes one
ledger row per run time, so that a run time is handed to exactly one scheduler.
The scheduler's own write-back of the same pass is then a no-op.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.job import Job as APJob
from apscheduler.jobstores.base import (
    BaseJobStore,
    ConflictingIdError,
    JobLookupError,
)
from django.db import InterfaceError, OperationalError
from django.db.models import F
from django.utils import timezone

from django_clockwork import allowed, aps
from django_clockwork.claim import ClaimConflictError, Claimer
from django_clockwork.conf import get_conf
from django_clockwork.insertion import insert_row
from django_clockwork.jsoncolumn import decoded
from django_clockwork.ledger import Ledger
from django_clockwork.logtext import user
from django_clockwork.models import Job, JobSource
from django_clockwork.reconnect import drop_broken_connection, retry_on_disconnect
from django_clockwork.rows import JOB_COLUMNS, StoredRow, SyncedRunTimes, row_fields
from django_clockwork.serialization import (
    SerializationError,
    trigger_from_json,
)
from django_clockwork.storedtext import LOAD_ERROR_MAX, head
from django_clockwork.tasktargets import ENQUEUER, TaskTarget

logger = logging.getLogger(__name__)

#: How often rows flagged as broken are tried again (a deploy may have fixed them).
BROKEN_RECHECK_SECONDS = 60.0
#: While claims are cut short for want of room, the next run time is read from the table
#: at most this often (seconds); in between the executor's wake-up ends the wait.
LOOK_EVERY = 0.5
#: Rows read per round trip when listing every job.
LIST_CHUNK = 1000


class StoredJob(aps.ClaimedJob):
    """An APScheduler job loaded from the table; carries the claim that handed it out."""

    __slots__ = ()


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
        *,
        node_id: str = "",
        capacity: Callable[[], int] | None = None,
        submitted: Callable[[], set[tuple[str, datetime]]] | None = None,
        claim_ahead: float = 0.0,
        wants_runs: Callable[[], bool] | None = None,
    ) -> None:
        """
        :param node_id: the scheduler node this store claims for (ledger ``node_id``); it
            turns on fleet-wide ``max_instances`` counting over live nodes
        :param capacity: how many runs this process can start now; a claim takes no more,
            so a busy scheduler leaves due jobs to idle ones
        :param submitted: the runs this process's executor has and has not finished (to
            recover a claim whose commit answer was lost)
        :param claim_ahead: seconds before their time that runs are claimed: a pass claims
            what is due up to ``now + claim_ahead`` and the next run time it answers is that
            much earlier (our executor starts such runs at their time). 0, APScheduler's
            contract, for a store in any other scheduler.
        :param wants_runs: whether a claim now would be worth it (with ``capacity``): after a
            claim that took all it could, the next run time is then now without a look at
            the table, else the executor wakes the scheduler when it is (see
            :meth:`get_next_run_time`)
        """
        super().__init__()
        conf = get_conf()
        self.database = database or conf.database
        self.poll_interval = conf.poll_interval if poll_interval is self._UNSET else poll_interval
        self.retry_interval = conf.retry_interval
        self.source = source
        self.node_id = node_id
        self.claim_ahead = timedelta(seconds=claim_ahead)
        self._submitted = submitted
        self._wants_runs = wants_runs
        self._closed = False
        self._post_claim: set[str] = set()
        self._last_recheck = float("-inf")
        self._lock = threading.RLock()
        self._claim_failed = False
        self._due_seen = False
        self._last_look = float("-inf")
        self._synced = SyncedRunTimes()
        self._claimer = Claimer(
            database=self.database,
            ledger=Ledger(self.database, node_id),
            batch_size=batch_size or conf.claim_batch_size,
            node_timeout=conf.node_timeout,
            load=self._load,
            flag=self._flag,
            capacity=capacity,
        )

    @property
    def starved(self) -> bool:
        """True while the last claim was cut short for want of free worker threads."""
        return self._claimer.starved

    @property
    def full(self) -> bool:
        """True while the last claim took all it could: more rows may be due at once."""
        return self._claimer.full

    @property
    def runs_waiting(self) -> bool:
        """True while due runs wait for a free worker thread here: the last claim was cut
        short for want of one, and the last look at the table saw a due row."""
        return self.starved and self._due_seen

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
        """Keep answering lookups but claim no more runs (graceful shutdown). Waits for a
        claim in progress: once this returns, no run is claimed."""
        with self._lock:
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
        """Every job that has not finished, soonest first, paused last (APScheduler's
        contract: a list). Rows are read ``LIST_CHUNK`` at a time with only the columns a
        job needs, so the jobs themselves are all this holds at the end."""
        rows = (
            self._rows()
            .active()
            .only(*JOB_COLUMNS)
            .order_by(F("next_run_time").asc(nulls_last=True), "id")
        )
        jobs = []
        failed: list[tuple[Job, Exception]] = []
        shared: dict[str, str] = {}  # one string object per distinct function and executor
        for row in rows.iterator(chunk_size=LIST_CHUNK):
            row.func = shared.setdefault(row.func, row.func)
            row.executor = shared.setdefault(row.executor, row.executor)
            try:
                jobs.append(self._restore(row))
            except Exception as exc:
                failed.append((row, exc))
        for row, error in failed:  # after the read: SQLite does not isolate a write from it
            self._flag(row, error)
        return jobs

    def get_next_run_time(self) -> datetime | None:
        """The earliest due time this store would hand out, capped at the poll interval;
        ``claim_ahead`` earlier, except for jobs the last claim left for their due time.

        Never raises: after a database error it answers ``now + retry interval``.
        """
        with self._lock:
            self._post_claim.clear()
        if self._closed:
            return None
        now = timezone.now()
        if self.poll_interval is not None and self._after_full_claim() and self._looked_recently():
            # The last claim took all it could (a burst): more rows are due. Claim again now
            # if the executor has room for a claim worth its round trips, else it wakes the
            # scheduler when it has; a look at the table would answer what the last one did.
            if self._wants_runs is not None and self._wants_runs():
                return now
            return now + timedelta(seconds=self.poll_interval)
        self._last_look = time.monotonic()
        deferred = dict(self._claimer.deferred)
        try:
            self._recheck_broken(now)
            rows = (
                self._rows()
                .loadable()
                .runnable(declared_jobs=get_conf().declared_jobs)
                .filter(next_run_time__isnull=False)
            )
            if deferred:
                rows = rows.exclude(id__in=deferred)
            earliest: datetime | None = (
                rows.order_by("next_run_time").values_list("next_run_time", flat=True).first()
            )
            if self.node_id and self._claimer.ledger.requests_waiting():
                earliest = now  # a run-now request waits (api.run_now)
        except Exception:
            logger.exception(
                "Could not read the next run time from database %r; retrying in %ss",
                self.database,
                self.retry_interval,
            )
            return now + timedelta(seconds=self.retry_interval)
        self._due_seen = earliest is not None and earliest <= now
        if earliest is not None:
            earliest -= self.claim_ahead
        if deferred:
            earliest = min(t for t in (earliest, *deferred.values()) if t is not None)
        if self.poll_interval is None:
            return earliest
        cap = now + timedelta(seconds=self.poll_interval)
        wanted = self._wants_runs
        if self.starved or (self.full and wanted is not None and not wanted()):
            return cap  # due jobs wait for a free thread: the executor wakes us, else the poll
        return cap if earliest is None else min(earliest, cap)

    def _after_full_claim(self) -> bool:
        """Whether the last claim left due rows for want of room (a claim cut short by
        ``capacity``), or, with ``wants_runs``, took all it could at all (the batch size)."""
        return self.starved or (self._wants_runs is not None and self.full)

    def _looked_recently(self) -> bool:
        """Whether the table was read for the next run time within the last :data:`LOOK_EVERY`
        seconds."""
        return time.monotonic() - self._last_look < LOOK_EVERY

    # -- claim-and-advance -------------------------------------------------------------------

    @retry_on_disconnect
    def get_due_jobs(self, now: datetime) -> list[StoredJob]:
        with self._lock:
            self._post_claim.clear()
            if self._closed:
                return []
            try:
                # In UTC: a local time in a fold (fold=1) loses its fold when added to.
                jobs = self._claimer.claim(now.astimezone(dt_timezone.utc), self.claim_ahead)
            except ClaimConflictError:
                logger.debug("Claim lost a race with another scheduler; retrying next pass")
                return []
            except (OperationalError, InterfaceError):
                self._claim_failed = True  # its commit may have reached the server anyway
                raise
            if self._claim_failed:
                jobs = jobs + self._recover({job.id for job in jobs})
                self._claim_failed = False
            self._report_backlogs(jobs)
            self._post_claim.update(job.id for job in jobs)
            return jobs

    def _report_backlogs(self, jobs: list[StoredJob]) -> None:
        """One ``EVENT_JOB_MISSED`` per backlog the claim recorded as one ``missed`` row."""
        scheduler = aps.store_scheduler(self)
        for job in jobs:
            claim = job._clockwork_claim
            if claim is not None and claim.backlog is not None:
                alias = aps.jobstore_alias(job)
                missed = JobExecutionEvent(EVENT_JOB_MISSED, job.id, alias, claim.backlog.last)
                aps.dispatch_event(scheduler, missed)

    def _recover(self, claimed_now: set[str]) -> list[StoredJob]:
        if not self.node_id or self._submitted is None:
            return []
        recovered: list[StoredJob] = self._claimer.recover(self._submitted(), claimed_now)
        return recovered

    # -- writes ------------------------------------------------------------------------------

    def add_job(self, job: APJob) -> None:
        self.insert(job)

    @retry_on_disconnect
    def insert(self, job: APJob, **columns: Any) -> Job:
        """Add ``job`` in one statement (see :mod:`~django_clockwork.insertion`), with
        ``columns``: options of ours that APScheduler's job does not carry (e.g.
        ``long_running_after``). Returns the row as written.

        Raises ``ConflictingIdError`` if a job that has not finished has the id; a finished
        one-off job's row is replaced.
        """
        fields = row_fields(job)
        if fields["next_run_time"] is not None:
            fields["next_run_time"] = fields["next_run_time"].astimezone(dt_timezone.utc)
        row = Job(id=job.id, source=self.source, **fields, **columns)
        drop_broken_connection(self.database)
        if not insert_row(self.database, row):
            raise ConflictingIdError(job.id)
        self._synced.remember(job)
        return row

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

    def _load(self, row: StoredRow) -> StoredJob:
        """Restore a row for running: it must also name an executor the scheduler has."""
        job = self._restore(row)
        executors = aps.executor_names(aps.store_scheduler(self))
        if executors is not None and job.executor not in executors:
            raise LookupError(f"no executor named {job.executor!r} is configured")
        return job

    def _restore(self, row: StoredRow) -> StoredJob:
        func = allowed.resolve(row.func)  # checks the reference before anything is imported
        target = TaskTarget.of_row(row.task, decoded(row.task_options, "task_options"))
        if target is not None:
            target.task()  # checks the task path before anything is imported
        elif row.func == ENQUEUER:
            raise LookupError(f"{row.func!r} names our task enqueuer but the row has no task")
        args, kwargs = (decoded(getattr(row, c), c) for c in ("args", "kwargs"))
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise SerializationError("args must be a JSON list and kwargs a JSON object")
        job: StoredJob = aps.restore_job(
            StoredJob,
            {
                "version": 1,
                "id": row.id,
                "func": row.func,
                "trigger": stored_trigger(row.trigger),
                "executor": row.executor,
                "args": tuple(args),
                "kwargs": kwargs,
                "name": row.name or row.func,
                "misfire_grace_time": row.misfire_grace_time,
                "coalesce": row.coalesce,
                "max_instances": row.max_instances,
                "next_run_time": row.next_run_time,
            },
            self,
            func,
        )
        if not callable(job.func):
            raise TypeError(f"{row.func!r} is not callable")
        job._clockwork_claim = None
        job._clockwork_task = target
        self._synced.remember(job)
        return job

    def _flag(self, row: StoredRow, exc: BaseException) -> None:
        """Record why ``row`` cannot be loaded (bounded); logged once, when the error changes."""
        message = head(f"{type(exc).__name__}: {exc}", LOAD_ERROR_MAX)
        if row.load_error == message:
            return
        flagged = (
            Job.objects.using(self.database)
            .filter(id=row.id, version=row.version, load_error=row.load_error)
            .update(load_error=message)
        )
        if flagged:
            logger.error(
                "Job %r cannot be loaded and is skipped until fixed (row kept): %s",
                row.id,
                user(message),
            )

    def _recheck_broken(self, now: datetime) -> None:
        """Give rows flagged as broken another chance: a deploy may have fixed them."""
        if time.monotonic() - self._last_recheck < BROKEN_RECHECK_SECONDS:
            return
        self._last_recheck = time.monotonic()
        # Unordered: ordered by next run time, SQLite walks that index over every row instead.
        for row in self._rows().broken().order_by():
            try:
                self._load(row)
            except Exception:
                continue
            logger.info("Job %r loads again; it is scheduled from now on", row.id)
            Job.objects.using(self.database).filter(id=row.id, version=row.version).update(
                load_error="", version=F("version") + 1, updated_at=now
            )


#: Triggers built from a ``trigger`` column's text, by text (see :func:`stored_trigger`).
_triggers: dict[str, Any] = {}
#: Distinct trigger texts kept at most.
_TRIGGERS_MAX = 1000


def stored_trigger(value: Any) -> Any:
    """The trigger a row's ``trigger`` column holds: its JSON text, as a claim reads it
    (``claim.select_due`` leaves the column undecoded), or the decoded value (a model's).

    A text is decoded and built once and its trigger shared by every job with that text
    (in a burst most due jobs share a handful: "every 5 minutes", one midnight): triggers
    are never changed in place (APScheduler's ``Job._modify`` replaces one). Raises like
    ``trigger_from_json``, or ``UndecodableJSONError`` for JSON Python cannot decode.
    """
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode()
    if not isinstance(value, str):
        return trigger_from_json(decoded(value, "trigger"))
    trigger = _triggers.get(value)
    if trigger is None:
        # The column's own decoder: what it cannot decode comes back as a marker.
        data = Job._meta.get_field("trigger").from_db_value(value, None, None)
        trigger = trigger_from_json(decoded(data, "trigger"))
        if len(_triggers) >= _TRIGGERS_MAX:
            _triggers.clear()
        _triggers[value] = trigger
    return trigger
