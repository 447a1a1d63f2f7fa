"""The tables: jobs, the run ledger, scheduler nodes and fleet-wide leases.

A job row is readable and editable: nothing in it is pickled. ``JobExecution``
has no foreign key to ``Job`` so that history outlives the job.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from typing import Any

from django.db import models
from django.db.models import F
from django.db.models.functions import Now
from django.db.models.lookups import In

from django_clockwork.jsoncolumn import TolerantJSONField


class JobSource(models.TextChoices):
    CODE = "code", "code"
    ADMIN = "admin", "admin"
    API = "api", "API"


class RareIn(In):
    """``lhs IN (...)`` for a condition that holds for few rows, said so to SQLite's planner
    (``unlikely()``).

    With statistics (after ``ANALYZE``) SQLite sees a single value in the index of a column
    that is nearly always the same, and scans the table rather than use it. Written as IN
    because Django writes ``flag=True`` as the bare column, which SQLite cannot look up in an
    index; other databases get the lookup as it is.
    """

    def as_sqlite(self, compiler: Any, connection: Any) -> Any:
        sql, params = self.as_sql(compiler, connection)
        return f"unlikely({sql})", params


class JobQuerySet(models.QuerySet["Job"]):
    def active(self) -> JobQuerySet:
        """Jobs APScheduler can see: not finished (broken ones included)."""
        return self.filter(finished_at__isnull=True)

    def finished_before(self, when: object) -> JobQuerySet:
        """Jobs whose trigger had no further fire time before ``when``."""
        return self.filter(finished_at__lt=when)

    def loadable(self) -> JobQuerySet:
        return self.active().filter(load_error="")

    def broken(self) -> JobQuerySet:
        return self.active().filter(RareIn(F("broken"), [True]))  # its index, on every database

    def due(self, now: object) -> JobQuerySet:
        return self.loadable().filter(next_run_time__lte=now)

    def runnable(self, *, declared_jobs: bool) -> JobQuerySet:
        """Jobs schedulers may run: without ``code`` rows when declared jobs are off here."""
        return self if declared_jobs else self.exclude(source=JobSource.CODE)


class Job(models.Model):
    """One scheduled job, as APScheduler sees it, in plain columns."""

    id = models.CharField(primary_key=True, max_length=191)
    name = models.CharField(max_length=255, blank=True)
    func = models.CharField(
        max_length=255, help_text="Reference to the callable, as 'package.module:qualname'."
    )
    trigger = TolerantJSONField(help_text="The trigger as JSON; see the README's trigger format.")
    # JSON columns whose rows load even when Python cannot decode the value (see jsoncolumn).
    task = models.CharField(
        max_length=255,
        blank=True,
        help_text="For a job whose target is a Task: its path, 'package.module.task_name' "
        "(func then names our enqueuer).",
    )
    task_options = TolerantJSONField(
        default=dict, blank=True, help_text="backend, queue_name, priority, run_after (seconds)."
    )
    args = TolerantJSONField(default=list, blank=True)
    kwargs = TolerantJSONField(default=dict, blank=True)
    executor = models.CharField(max_length=100, default="default")
    misfire_grace_time = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds a run may start late; empty means no limit."
    )
    coalesce = models.BooleanField(default=True)
    max_instances = models.PositiveIntegerField(default=1)
    long_running_after = models.FloatField(
        null=True,
        blank=True,
        help_text="Seconds a run may execute before it is logged and noted as long running; "
        "empty means CLOCKWORK['LONG_RUNNING_AFTER'].",
    )
    next_run_time = models.DateTimeField(
        null=True, blank=True, help_text="Empty means paused (or finished)."
    )
    version = models.PositiveBigIntegerField(default=1)
    source = models.CharField(max_length=10, choices=JobSource.choices, default=JobSource.API)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when the trigger has no further fire time."
    )
    load_error = models.TextField(
        blank=True, help_text="Why this row cannot be loaded; it is skipped until fixed."
    )
    broken = models.GeneratedField(
        expression=models.ExpressionWrapper(
            ~models.Q(load_error=""), output_field=models.BooleanField()
        ),
        output_field=models.BooleanField(),
        db_persist=True,
        help_text="Computed by the database: whether load_error is set. Indexed, so that the "
        "periodic re-check of broken rows reads only them.",
    )
    declaration = models.CharField(
        max_length=64,
        blank=True,
        help_text="For a job declared in code: a hash of its declaration as last synced.",
    )
    undeclared_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="For a job declared in code: when a sync found it no longer declared (and "
        "paused it).",
    )

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["next_run_time", "id"]
        indexes = [
            # (next_run_time, id): the claim's order, so a claim reads only the rows it takes
            # (a sort of every due row under FOR UPDATE cannot stop at the LIMIT).
            models.Index(fields=["next_run_time", "id"], name="clockwork_job_next_run_id"),
            models.Index(fields=["broken"], name="clockwork_job_broken"),
        ]

    def __str__(self) -> str:
        return self.name or self.id

    @property
    def is_paused(self) -> bool:
        return self.next_run_time is None and self.finished_at is None


class ExecutionStatus(models.TextChoices):
    SCHEDULED = "scheduled", "scheduled"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    MISSED = "missed", "missed"
    SKIPPED = "skipped", "skipped (max instances)"
    ABANDONED = "abandoned", "abandoned"
    ENQUEUED = "enqueued", "enqueued (handed to a task queue)"


class TriggerSource(models.TextChoices):
    SCHEDULE = "schedule", "schedule"
    RUN_NOW = "run-now", "run now"
    API = "api", "API"


class JobExecutionQuerySet(models.QuerySet["JobExecution"]):
    def for_job(self, job_id: str) -> JobExecutionQuerySet:
        return self.filter(job_id=job_id)

    def running(self) -> JobExecutionQuerySet:
        return self.filter(status=ExecutionStatus.RUNNING)

    def unfinished(self) -> JobExecutionQuerySet:
        """Claimed runs that have not ended: waiting for a thread, or running."""
        from django_clockwork.ledger import UNFINISHED

        return self.filter(status__in=UNFINISHED)

    def failed(self) -> JobExecutionQuerySet:
        return self.filter(status=ExecutionStatus.FAILED)

    def warned(self) -> JobExecutionQuerySet:
        """Runs the watchdog noted (long running, or holding a worker while runs waited)."""
        return self.exclude(warning="")

    def recent_per_job(self, job_ids: Collection[str], count: int) -> list[JobExecution]:
        """The ``count`` most recent runs of each of ``job_ids``, newest first per job, in
        one query whatever the number of jobs (a ``UNION ALL`` of one bounded index range
        per job, so a long history is never scanned). Keep ``job_ids`` under SQLite's 500
        compound terms."""
        if not job_ids:
            return []
        parts: list[str] = []
        params: list[Any] = []
        for job_id in sorted(set(job_ids)):
            recent = self.filter(job_id=job_id).order_by("-scheduled_run_time")[:count]
            sql, part_params = recent.query.get_compiler(using=self.db).as_sql()
            parts.append(f"SELECT * FROM ({sql}) AS recent_{len(parts)}")
            params.extend(part_params)
        return list(self.raw(" UNION ALL ".join(parts), params))


class JobExecution(models.Model):
    """One scheduled (or manually triggered) run of a job: the ledger."""

    job_id = models.CharField(max_length=191)
    job_name = models.CharField(max_length=255, blank=True)
    func = models.CharField(max_length=255, blank=True)
    scheduled_run_time = models.DateTimeField()
    status = models.CharField(
        max_length=10, choices=ExecutionStatus.choices, default=ExecutionStatus.SCHEDULED
    )
    trigger_source = models.CharField(
        max_length=10, choices=TriggerSource.choices, default=TriggerSource.SCHEDULE
    )
    claimed_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True, help_text="Seconds.")
    exception = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    hostname = models.CharField(max_length=255, blank=True)
    requested_by = models.CharField(
        max_length=150, blank=True, help_text="Who asked for a run-now run (empty otherwise)."
    )
    pid = models.PositiveIntegerField(null=True, blank=True)
    task_backend = models.CharField(
        max_length=100, blank=True, help_text="The task backend an enqueued run went to."
    )
    task_result_id = models.CharField(
        max_length=255,
        blank=True,
        db_index=True,
        help_text="The task framework's result id of an enqueued run.",
    )
    node_id = models.CharField(
        max_length=32, blank=True, help_text="The scheduler node that claimed this run."
    )
    warning = models.TextField(
        blank=True,
        help_text="What the watchdog noticed while the run executed: it ran past its "
        "long-running threshold, or it held a worker thread while due runs waited.",
    )

    objects = JobExecutionQuerySet.as_manager()

    class Meta:
        ordering = ["-scheduled_run_time", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["job_id", "scheduled_run_time"], name="clockwork_one_run_per_time"
            )
        ]
        indexes = [
            models.Index(fields=["-scheduled_run_time"], name="clockwork_exec_recent"),
            models.Index(fields=["status", "-scheduled_run_time"], name="clockwork_exec_status"),
            models.Index(fields=["node_id", "status"], name="clockwork_exec_node"),
            # The admin's filters on rare values (runs not from the schedule, runs with a
            # warning) have partial indexes where the database has them: created by
            # migration 0011 on PostgreSQL only (see RARE_RUN_INDEXES there), so
            # that MySQL/MariaDB get neither a full-size copy nor Django's models.W037.
        ]

    def __str__(self) -> str:
        return f"{self.job_id} @ {self.scheduled_run_time:%Y-%m-%d %H:%M:%S%z} ({self.status})"


class DatabaseNow(Now):
    """The database's clock, in UTC on every backend (heartbeats and leases use it)."""

    def as_mysql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Django's Now() is CURRENT_TIMESTAMP there, which follows the session time zone.
        return self.as_sql(compiler, connection, template="UTC_TIMESTAMP(6)", **extra)


def database_now_minus(seconds: float) -> models.Expression:
    return models.ExpressionWrapper(
        DatabaseNow() - timedelta(seconds=seconds), output_field=models.DateTimeField()
    )


class SchedulerNodeQuerySet(models.QuerySet["SchedulerNode"]):
    def live(self, timeout: float) -> SchedulerNodeQuerySet:
        """Nodes that heartbeat within ``timeout`` seconds, by the database clock."""
        return self.filter(
            stopped_at__isnull=True,
            dead_at__isnull=True,
            last_heartbeat__gte=database_now_minus(timeout),
        )

    def silent(self, timeout: float) -> SchedulerNodeQuerySet:
        """Nodes not stopped nor declared dead whose heartbeat is older than ``timeout``."""
        return self.filter(
            stopped_at__isnull=True,
            dead_at__isnull=True,
            last_heartbeat__lt=database_now_minus(timeout),
        )


class SchedulerNode(models.Model):
    """One running scheduler (a process), registered while it runs."""

    id = models.CharField(primary_key=True, max_length=32)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    version = models.CharField(max_length=40, help_text="django-clockwork version.")
    started_at = models.DateTimeField()
    last_heartbeat = models.DateTimeField(help_text="By the database clock.")
    stopped_at = models.DateTimeField(null=True, blank=True, help_text="Stopped gracefully.")
    dead_at = models.DateTimeField(
        null=True, blank=True, help_text="Declared dead by a peer after missed heartbeats."
    )
    locked_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When it took its session lock (PostgreSQL, MySQL/MariaDB), by the database "
        "clock; empty: it holds none, and heartbeats alone tell whether it is alive.",
    )

    objects = SchedulerNodeQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["last_heartbeat"], name="clockwork_node_heartbeat")]

    def __str__(self) -> str:
        return f"{self.hostname}:{self.pid} ({self.id[:8]})"


class Lease(models.Model):
    """A fleet-wide turn: whoever moves ``free_at`` forward first holds it until then.

    Taken with one conditional UPDATE on the database clock, so one node in the fleet
    does the work of an interval (history pruning) however many schedulers run.
    """

    name = models.CharField(primary_key=True, max_length=64)
    holder = models.CharField(max_length=32, blank=True, help_text="Node that took it last.")
    free_at = models.DateTimeField(help_text="By the database clock; free from this time on.")

    objects: models.Manager[Lease] = models.Manager()

    def __str__(self) -> str:
        return f"{self.name} (free at {self.free_at:%Y-%m-%d %H:%M:%S})"


__all__ = [
    "DatabaseNow",
    "ExecutionStatus",
    "Job",
    "JobExecution",
    "JobSource",
    "Lease",
    "SchedulerNode",
    "TriggerSource",
]
