"""The jobs page: what runs when, what failed, what is late."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from django_clockwork import api
from django_clockwork.admin import actions as job_actions
from django_clockwork.admin import display, filters, trigger_form
from django_clockwork.admin import job_form as form_preview
from django_clockwork.admin.chart import runs_chart
from django_clockwork.admin.job_form import JobForm
from django_clockwork.admin.overview import STRIP, attach, overview_of
from django_clockwork.admin.pages import scheduler_context
from django_clockwork.admin.preview import FireTime, fire_times
from django_clockwork.admin.schedule import raw_expression, zone
from django_clockwork.conf import get_conf
from django_clockwork.exceptions import JobNotFoundError
from django_clockwork.jsoncolumn import UndecodableJSONError, decoded
from django_clockwork.models import Job, JobExecution, JobSource
from django_clockwork.serialization import (
    SerializationError,
    trigger_from_json,
    trigger_to_json,
    zone_from_json,
)


class JobChangeList(ChangeList):
    """Fetches the page's recent runs in two queries, whatever the page size."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.result_list = list(self.result_list)
        attach(self.result_list)


#: What a job's page shows when its form does not edit (view-only, or declared in code).
READ_ONLY_FIELDS = [
    "id",
    "name",
    "source",
    "function_ref",
    "schedule",
    "trigger",
    "args",
    "kwargs",
    "misfire_grace_time",
    "coalesce",
    "max_instances",
    "executor",
    "long_running_after",
    "next_run_at",
    "finished",
    "load_error",
    "undeclared",
    "created",
    "updated",
    "version",
]
TYPE_SECTIONS = [
    ("cron", "Cron trigger", "Used when the trigger type is cron."),
    ("crontab", "Crontab trigger", "Used when the trigger type is crontab."),
    ("interval", "Interval trigger", "Used when the trigger type is interval."),
    ("calendarinterval", "Calendar interval trigger", "Used when the type is calendar interval."),
    ("date", "Date trigger", "Used when the trigger type is date."),
]

#: Runs a job's page lists (and charts); the rest are a link away.
RUNS = 50


def upcoming(row: Job) -> tuple[list[FireTime], str]:
    """The job's next fire times in its zone (none if finished), or why they are unknown."""
    if row.finished_at is not None:
        return [], ""
    try:
        data = decoded(row.trigger, "trigger")
        trigger = trigger_from_json(data)
        zone = zone_from_json(data.get("timezone") or get_conf().timezone)
    except (SerializationError, UndecodableJSONError) as exc:
        return [], str(exc)
    return fire_times(trigger, zone), ""


def run_link(run: Any) -> str:
    return reverse("admin:django_clockwork_jobexecution_change", args=[run.pk])


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "job",
        "function",
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
    search_fields = ["id", "name", "func", "task"]
    ordering = [F("next_run_time").asc(nulls_last=True), "id"]
    list_per_page = 100
    #: The overview's one query per page joins one index range per job: SQLite allows 500.
    list_max_show_all = 200
    show_full_result_count = False
    actions = [
        job_actions.run_now,
        job_actions.run_now_skip_next,
        job_actions.pause,
        job_actions.resume,
    ]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return JobChangeList

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return super().changelist_view(request, {**scheduler_context(), **(extra_context or {})})

    form = JobForm

    # -- the form (saved through api) -----------------------------------------------------------

    def editable(self, request: HttpRequest, obj: Job | None) -> bool:
        """Whether the form edits: adding, or changing a job not declared in code (the code
        owns those) with the change permission."""
        if obj is None:
            return self.has_add_permission(request)
        return obj.source != JobSource.CODE and self.has_change_permission(request, obj)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if not self.editable(request, obj):
            return [(None, {"fields": READ_ONLY_FIELDS})]
        return [
            (None, {"fields": ["id", "name", "func"]}),
            ("Schedule", {"fields": trigger_form.COMMON_FIELDS}),
            *(
                (title, {"fields": trigger_form.TYPE_FIELDS[kind], "description": note})
                for kind, title, note in TYPE_SECTIONS
            ),
            ("Arguments", {"fields": ["args", "kwargs"]}),
            (
                "Task",
                {
                    "fields": list(form_preview.TASK_FIELDS.values()),
                    "description": "For a Task target only: enqueued on a task backend "
                    "(django.tasks) when the job fires, with these options.",
                },
            ),
            ("Options", {"fields": ["misfire_grace_time", "coalesce", "max_instances"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if not self.editable(request, obj):
            return READ_ONLY_FIELDS
        return ["id"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Job, form: Any, change: bool) -> None:
        """Save through ``api``: add (source ``admin``), or modify and, if the trigger changed,
        reschedule (a paused job stays paused)."""
        if not self.editable(request, obj if change else None):
            raise PermissionDenied
        data = form.cleaned_data
        options = {
            "args": data["args"],
            "kwargs": data["kwargs"],
            "misfire_grace_time": data["misfire_grace_time"],
            "coalesce": data["coalesce"],
            "max_instances": data["max_instances"],
        }
        target: dict[str, Any] = {"func": data["func"]}
        if data["func"].startswith(form_preview.TASK_PREFIX):
            target = {
                "task": data["func"].removeprefix(form_preview.TASK_PREFIX),
                "task_options": form.task_options(),
            }
        if not change:
            name = data["name"] or None
            job = api.add_job(
                trigger=form.trigger, id=data["id"], name=name, source="admin", **target, **options
            )
            obj.pk = job.id
            return
        stored = Job.objects.get(pk=obj.pk)
        with transaction.atomic(using=get_conf().database):
            # The trigger first: a stored trigger that cannot be decoded is replaced before
            # modify_job needs to read it.
            if trigger_to_json(form.trigger) != stored.trigger:
                api.reschedule_job(obj.pk, form.trigger)
                if stored.is_paused:
                    api.pause_job(obj.pk)
            name = data["name"] or target.get("task") or data["func"]
            api.modify_job(obj.pk, name=name, **target, **options)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        context["clockwork_editable"] = self.editable(request, obj)
        context["clockwork_declared"] = obj is not None and obj.source == JobSource.CODE
        form = context["adminform"].form
        context["clockwork_preview"] = getattr(form, "preview", [])
        only_preview = [e.code for e in form.non_field_errors().as_data()] == ["preview"]
        if only_preview and len(form.errors) == 1:
            context["errors"] = []  # not an error: the preview button's answer
            context["clockwork_previewing"] = True
        context["clockwork_preview_button"] = form_preview.PREVIEW
        return super().render_change_form(request, context, add, change, form_url, obj)

    # -- operations (through api only) ----------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        operate = self.admin_site.admin_view(self.operate_view)
        name = f"{self.opts.app_label}_{self.opts.model_name}_operate"
        return [
            path("<path:object_id>/operate/<str:operation>/", operate, name=name),
            *super().get_urls(),
        ]

    def operate_view(self, request: HttpRequest, object_id: str, operation: str) -> HttpResponse:
        """A button of a job's page: POST only, with the change permission."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        job = self.get_object(request, unquote(object_id))
        if job is None:
            raise Http404(f"No job {object_id!r}")
        if operation not in job_actions.OPERATIONS:
            raise Http404(f"No operation {operation!r}")
        if not self.has_change_permission(request, job):
            raise PermissionDenied
        job_actions.apply(self, request, operation, [job])
        change = f"admin:{self.opts.app_label}_{self.opts.model_name}_change"
        return HttpResponseRedirect(reverse(change, args=[quote(job.pk)]))

    def delete_model(self, request: HttpRequest, obj: Job) -> None:
        """Delete through ``api`` (its history stays)."""
        with suppress(JobNotFoundError):
            api.remove_job(obj.id)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        for job_id in queryset.values_list("id", flat=True):
            with suppress(JobNotFoundError):
                api.remove_job(job_id)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = {**scheduler_context(), **(extra_context or {})}
        row = self.get_object(request, unquote(object_id))
        if row is not None:
            context.update(self.page_context(request, row))
        return super().change_view(request, object_id, form_url, context)

    def page_context(self, request: HttpRequest, row: Job) -> dict[str, Any]:
        """What a job's page shows besides its fields: the operations it allows, its last
        runs with a chart, its next fire times."""
        job = overview_of(row).job
        can_change = self.has_change_permission(request, row)
        runs = list(JobExecution.objects.for_job(row.id).order_by("-scheduled_run_time")[:RUNS])
        fire_times, trigger_error = upcoming(row)
        return {
            "clockwork_runs": [display.run_cells(run) for run in runs],
            "clockwork_runs_shown": RUNS,
            "clockwork_chart": runs_chart(runs),
            "clockwork_fire_times": fire_times,
            "clockwork_trigger_error": trigger_error,
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "clockwork_job": job,
            "clockwork_operations": job_actions.available(job) if can_change else [],
            "clockwork_runs_url": f"{reverse('admin:django_clockwork_jobexecution_changelist')}"
            f"?job_id={row.id}",
        }

    # -- columns ------------------------------------------------------------------------------

    @admin.display(description="job", ordering="name")
    def job(self, obj: Job) -> SafeString:
        ident = format_html('<span class="cw-small cw-job-id">{}</span>', obj.id)
        if obj.name and obj.name != obj.id:
            return format_html("{}<br>{}", obj.name, ident)
        return ident

    @admin.display(description="function", ordering="func")
    def function(self, obj: Job) -> SafeString:
        if obj.task:
            module, _, name = obj.task.rpartition(".")
            options = obj.task_options if isinstance(obj.task_options, dict) else {}
            return format_html(
                '{} <span class="cw-small">(task)</span><br><span class="cw-small">{} \u00b7 '
                "backend: {} \u00b7 source: {}</span>",
                name,
                module,
                options.get("backend") or "the Task's own",
                obj.get_source_display(),
            )
        module, _, name = obj.func.partition(":")
        return format_html(
            '{}<br><span class="cw-small">{} \u00b7 source: {}</span>',
            name or module,
            module if name else "",
            obj.get_source_display(),
        )

    @admin.display(description="function or task")
    def function_ref(self, obj: Job) -> str:
        if obj.task:
            options = obj.task_options if isinstance(obj.task_options, dict) else {}
            shown = ", ".join(f"{key}={value!r}" for key, value in sorted(options.items()))
            return f"task {obj.task}" + (f" ({shown})" if shown else "")
        return obj.func

    @admin.display(description="next run time")
    def next_run_at(self, obj: Job) -> str:
        return display.moment(obj.next_run_time)

    @admin.display(description="finished at")
    def finished(self, obj: Job) -> str:
        return display.moment(obj.finished_at)

    @admin.display(description="no longer declared since")
    def undeclared(self, obj: Job) -> str:
        return display.moment(obj.undeclared_at)

    @admin.display(description="created")
    def created(self, obj: Job) -> str:
        return display.moment(obj.created_at)

    @admin.display(description="updated")
    def updated(self, obj: Job) -> str:
        return display.moment(obj.updated_at)

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
