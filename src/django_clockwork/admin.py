"""Read-only admin pages for jobs and their history (the full admin comes later)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

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
    list_display = ["id", "name", "func", "next_run_time", "is_paused", "load_error", "source"]
    list_filter = ["source", "executor"]
    search_fields = ["id", "name", "func"]


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
    ]
    list_filter = ["status", "trigger_source"]
    search_fields = ["job_id", "job_name", "exception"]
    date_hierarchy = "scheduled_run_time"
