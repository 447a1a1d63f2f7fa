"""Read-only admin pages for jobs and their history (the full admin comes later)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from django_clockwork.describe import describe
from django_clockwork.models import Job, JobExecution


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "name",
        "func",
        "schedule",
        "next_run_time",
        "is_paused",
        "long_running_after",
        "load_error",
        "source",
    ]
    list_filter = ["source", "executor"]
    search_fields = ["id", "name", "func"]

    @admin.display(description="schedule")
    def schedule(self, obj: Job) -> str:
        """The trigger in words (see ``describe``)."""
        return describe(obj.trigger)


class WarnedFilter(admin.SimpleListFilter):
    """Runs the watchdog noted: long running, or holding a worker while due runs waited."""

    title = "warning"
    parameter_name = "warned"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "with a warning"), ("no", "without")]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() == "yes":
            return queryset.warned()
        if self.value() == "no":
            return queryset.filter(warning="")
        return queryset


@admin.register(JobExecution)
class JobExecutionAdmin(ReadOnlyAdmin):
    list_display = [
        "job_id",
        "scheduled_run_time",
        "status",
        "started_at",
        "duration",
        "hostname",
        "pid",
        "trigger_source",
        "warning",
    ]
    list_filter = ["status", "trigger_source", WarnedFilter]
    search_fields = ["job_id", "job_name", "exception", "warning"]
    date_hierarchy = "scheduled_run_time"
