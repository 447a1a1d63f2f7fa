"""The jobs page: what runs when, what failed, what is late."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from django_clockwork.admin import display, filters
from django_clockwork.admin.overview import STRIP, attach, overview_of
from django_clockwork.admin.pages import scheduler_context
from django_clockwork.admin.schedule import raw_expression, zone
from django_clockwork.models import Job


class JobChangeList(ChangeList):
    """Fetches the page's recent runs in two queries, whatever the page size."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.result_list = list(self.result_list)
        attach(self.result_list)


def run_link(run: Any) -> str:
    return reverse("admin:django_clockwork_jobexecution_change", args=[run.pk])


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "job",
        "source",
        "func",
        "schedule",
        "next_run",
        "last_run",
        "recent_runs",
        "running_now",
    ]
    list_filter = [
        filters.StateFilter,
        filters.LastOutcomeFilter,
        "source",
        filters.TriggerTypeFilter,
        filters.FunctionFilter,
        filters.BrokenFilter,
    ]
    search_fields = ["id", "name", "func"]
    ordering = [F("next_run_time").asc(nulls_last=True), "id"]
    list_per_page = 100
    #: The overview's one query per page joins one index range per job: SQLite allows 500.
    list_max_show_all = 200
    show_full_result_count = False

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return JobChangeList

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return super().changelist_view(request, {**scheduler_context(), **(extra_context or {})})

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # -- columns ------------------------------------------------------------------------------

    @admin.display(description="job", ordering="name")
    def job(self, obj: Job) -> SafeString:
        ident = format_html('<span class="cw-small cw-job-id">{}</span>', obj.id)
        if obj.name and obj.name != obj.id:
            return format_html("{}<br>{}", obj.name, ident)
        return ident

    @admin.display(description="schedule")
    def schedule(self, obj: Job) -> SafeString:
        job = overview_of(obj).job
        return format_html(
            '{}<br><code class="cw-small">{}</code> <span class="cw-small">{}</span>',
            job.description,
            raw_expression(obj.trigger),
            zone(obj.trigger),
        )

    @admin.display(description="next run", ordering=F("next_run_time").asc(nulls_last=True))
    def next_run(self, obj: Job) -> SafeString:
        job = overview_of(obj).job
        if job.load_error:
            return format_html(
                '<span class="cw-outcome cw-bad">\u2716 broken</span><br>'
                '<span class="cw-small">{}</span>',
                job.load_error,
            )
        if job.finished:
            return mark_safe('<span class="cw-muted">finished</span>')
        if job.next_run_time is None:
            why = " (no longer declared)" if job.undeclared else ""
            return format_html('<span class="cw-outcome cw-warn">\u23f8 paused{}</span>', why)
        return format_html(
            '{}<br><span class="cw-small">{}</span>',
            display.moment(job.next_run_time),
            display.relative(job.next_run_time, timezone.now()),
        )

    @admin.display(description="last run")
    def last_run(self, obj: Job) -> SafeString | str:
        run = overview_of(obj).last
        if run is None:
            return display.EMPTY
        return format_html(
            '<a href="{}">{}</a><br><span class="cw-small">{} \u00b7 {} \u00b7 {}</span>',
            run_link(run),
            display.outcome(run.status),
            display.moment(run.started_at or run.scheduled_run_time),
            display.duration(run.duration),
            display.lateness(run.scheduled_run_time, run.started_at),
        )

    @admin.display(description=f"last {STRIP} runs")
    def recent_runs(self, obj: Job) -> SafeString | str:
        overview = overview_of(obj)
        if not overview.recent:
            return display.EMPTY
        strip = format_html_join(
            "",
            '<a href="{}">{}</a>',
            (
                (run_link(run), display.outcome(run.status, symbol_only=True))
                for run in reversed(overview.recent)
            ),
        )
        rate = overview.success_rate
        text = "" if rate is None else f"{rate:.0%} succeeded"
        return format_html(
            '<span class="cw-strip">{}</span><br><span class="cw-small">{}</span>', strip, text
        )

    @admin.display(description="running now")
    def running_now(self, obj: Job) -> int:
        return overview_of(obj).running
