"""The three tables: jobs, the run ledger and (later) scheduler nodes.

A job row is readable and editable: nothing in it is pickled. ``JobExecution``
has no foreign key to ``Job`` so that history outlives the job.
"""

from __future__ import annotations

from django.db import models


class JobSource(models.TextChoices):
    CODE = "code", "code"
    ADMIN = "admin", "admin"
    API = "api", "API"


class JobQuerySet(models.QuerySet["Job"]):
    def active(self) -> JobQuerySet:
        """Jobs APScheduler can see: not finished (broken ones included)."""
        return self.filter(finished_at__isnull=True)

    def loadable(self) -> JobQuerySet:
        return self.active().filter(load_error="")

    def broken(self) -> JobQuerySet:
        return self.active().exclude(load_error="")

    def due(self, now: object) -> JobQuerySet:
        return self.loadable().filter(next_run_time__lte=now)


class Job(models.Model):
    """One scheduled job, as APScheduler sees it, in plain columns."""

    id = models.CharField(primary_key=True, max_length=191)
    name = models.CharField(max_length=255, blank=True)
    func = models.CharField(
        max_length=255, help_text="Reference to the callable, as 'package.module:qualname'."
    )
    trigger = models.JSONField(help_text="The trigger as JSON; see the README's trigger format.")
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    executor = models.CharField(max_length=100, default="default")
    misfire_grace_time = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds a run may start late; empty means no limit."
    )
    coalesce = models.BooleanField(default=True)
    max_instances = models.PositiveIntegerField(default=1)
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

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["next_run_time", "id"]
        indexes = [models.Index(fields=["next_run_time"], name="clockwork_job_next_run")]

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


class TriggerSource(models.TextChoices):
    SCHEDULE = "schedule", "schedule"
    RUN_NOW = "run-now", "run now"
    API = "api", "API"


class JobExecutionQuerySet(models.QuerySet["JobExecution"]):
    def for_job(self, job_id: str) -> JobExecutionQuerySet:
        return self.filter(job_id=job_id)

    def running(self) -> JobExecutionQuerySet:
        return self.filter(status=ExecutionStatus.RUNNING)

    def failed(self) -> JobExecutionQuerySet:
        return self.filter(status=ExecutionStatus.FAILED)


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
    pid = models.PositiveIntegerField(null=True, blank=True)

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
        ]

    def __str__(self) -> str:
        return f"{self.job_id} @ {self.scheduled_run_time:%Y-%m-%d %H:%M:%S%z} ({self.status})"


__all__ = [
    "ExecutionStatus",
    "Job",
    "JobExecution",
    "JobSource",
    "TriggerSource",
]
