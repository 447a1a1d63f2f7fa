"""Run history: every run of every job, read-only for everyone."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from django_clockwork.admin import display, filters
from django_clockwork.admin.counting import CappedPaginator
from django_clockwork.admin.pages import scheduler_context
from django_clockwork.models import JobExecution


class ReadOnly:
    """A page anyone with view permission reads and nobody changes."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(JobExecution)
class JobExecutionAdmin(ReadOnly, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "run",
        "job",
        "scheduled",
        "started",
        "late",
        "took",
        "outcome",
        "node",
        "source",
    ]
    list_display_links = ["run"]
    list_filter = [
        "status",
        filters.JobFilter,
        filters.NodeFilter,
        "trigger_source",
        filters.WarnedFilter,
    ]
    search_fields = ["job_id"]  # exact: see get_search_results
    date_hierarchy = "scheduled_run_time"
    ordering = ["-scheduled_run_time", "-id"]
    show_full_result_count = False
    paginator = CappedPaginator
    fieldsets = [
        (None, {"fields": ["job_link", "outcome", "source"]}),
        ("When", {"fields": ["scheduled", "started", "finished", "late", "took"]}),
        ("Error", {"fields": ["exception", "traceback_text", "warning"]}),
        ("Where", {"fields": ["node", "node_id", "function", "task_result"]}),
    ]
    readonly_fields = [
        "job_link",
        "outcome",
        "source",
        "scheduled",
        "started",
        "finished",
        "late",
        "took",
        "exception",
        "traceback_text",
        "warning",
        "node",
        "node_id",
        "function",
        "task_result",
    ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return super().changelist_view(request, {**scheduler_context(), **(extra_context or {})})

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[JobExecution], search_term: str
    ) -> tuple[QuerySet[JobExecution], bool]:
        """Search by exact job id (an index lookup; job ids are case-sensitive)."""
        term = search_term.strip()
        return (queryset.filter(job_id=term) if term else queryset), False

    @admin.display(description="run", ordering="id")
    def run(self, obj: JobExecution) -> str:
        return f"#{obj.pk}"

    @admin.display(description="job", ordering="job_id")
    def job(self, obj: JobExecution) -> SafeString:
        if obj.job_name and obj.job_name != obj.job_id:
            return format_html('{}<br><span class="cw-small">{}</span>', obj.job_name, obj.job_id)
        return format_html("{}", obj.job_id)

    @admin.display(description="job")
    def job_link(self, obj: JobExecution) -> SafeString:
        page = reverse("admin:django_clockwork_job_change", args=[obj.job_id])
        runs = reverse("admin:django_clockwork_jobexecution_changelist")
        return format_html(
            '<a href="{}">{}</a> (<a href="{}?job_id={}">all its runs</a>)',
            page,
            self.job(obj),
            runs,
            obj.job_id,
        )

    @admin.display(description="scheduled", ordering="scheduled_run_time")
    def scheduled(self, obj: JobExecution) -> str:
        return display.moment(obj.scheduled_run_time)

    @admin.display(description="started", ordering="started_at")
    def started(self, obj: JobExecution) -> str:
        return display.moment(obj.started_at)

    @admin.display(description="finished")
    def finished(self, obj: JobExecution) -> str:
        return display.moment(obj.finished_at)

    @admin.display(description="lateness")
    def late(self, obj: JobExecution) -> str:
        return display.lateness(obj.scheduled_run_time, obj.started_at)

    @admin.display(description="duration", ordering="duration")
    def took(self, obj: JobExecution) -> str:
        return display.duration(obj.duration)

    @admin.display(description="outcome", ordering="status")
    def outcome(self, obj: JobExecution) -> SafeString:
        return display.outcome(obj.status)

    @admin.display(description="node")
    def node(self, obj: JobExecution) -> str:
        return display.node(obj.hostname, obj.pid)

    @admin.display(description="triggered by")
    def source(self, obj: JobExecution) -> str:
        label = obj.get_trigger_source_display()
        return f"{label} ({obj.requested_by})" if obj.requested_by else str(label)

    @admin.display(description="function or task")
    def function(self, obj: JobExecution) -> str:
        return obj.func or display.EMPTY

    @admin.display(description="task result")
    def task_result(self, obj: JobExecution) -> SafeString | str:
        """The backend and result id of an enqueued run; linked to the result's admin page
        where the backend's results are in this admin (django-tasks-db's)."""
        if not obj.task_result_id:
            return display.EMPTY
        page = _result_page(self.admin_site, obj.task_backend, obj.task_result_id)
        result = format_html('<a href="{}">{}</a>', page, obj.task_result_id) if page else None
        return format_html(
            "{} on backend {}", result or obj.task_result_id, obj.task_backend or "?"
        )

    @admin.display(description="traceback")
    def traceback_text(self, obj: JobExecution) -> SafeString | str:
        if not obj.traceback:
            return display.EMPTY
        return format_html('<pre class="cw-traceback">{}</pre>', obj.traceback)


def _result_page(site: admin.AdminSite, backend: str, result_id: str) -> str:
    """The admin page of a task result kept by django-tasks-db, or "" if there is none."""
    for model in site._registry:
        meta = model._meta
        if meta.app_label == "django_tasks_database" and meta.model_name == "dbtaskresult":
            try:
                found = model._default_manager.filter(pk=result_id, backend_name=backend).exists()
            except (ValueError, ValidationError):  # not an id of its kind
                return ""
            if not found:
                return ""
            return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[result_id])
    return ""
