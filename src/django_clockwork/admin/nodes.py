"""Scheduler nodes: which schedulers run, since when, and whether they are alive."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import (
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    QuerySet,
)
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from django_clockwork.admin import display
from django_clockwork.admin.history import ReadOnly
from django_clockwork.admin.pages import scheduler_context
from django_clockwork.conf import get_conf
from django_clockwork.ledger import UNFINISHED
from django_clockwork.models import DatabaseNow, JobExecution, SchedulerNode


class NodeChangeList(ChangeList):
    """Counts the page's runs by node in two grouped queries, each on an index: the runs of
    the last hour (by scheduled time) and the runs in flight (by status)."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.result_list = list(self.result_list)
        ids = [node.id for node in self.result_list]
        runs = JobExecution.objects.filter(node_id__in=ids).order_by().values_list("node_id")
        since = timezone.now() - timedelta(hours=1)
        last_hour = dict(runs.filter(scheduled_run_time__gte=since).annotate(n=Count("id")))
        in_flight = dict(runs.filter(status__in=UNFINISHED).annotate(n=Count("id")))
        for node in self.result_list:
            node.clockwork_counts = (last_hour.get(node.id, 0), in_flight.get(node.id, 0))


@admin.register(SchedulerNode)
class SchedulerNodeAdmin(ReadOnly, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "node",
        "hostname",
        "pid",
        "version",
        "started",
        "heartbeat",
        "state",
        "runs_last_hour",
        "runs_in_flight",
    ]
    list_display_links = ["node"]
    ordering = ["-started_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[SchedulerNode]:
        rows: QuerySet[SchedulerNode] = super().get_queryset(request)
        return rows.annotate(
            heartbeat_age=ExpressionWrapper(
                DatabaseNow() - F("last_heartbeat"), output_field=DurationField()
            ),
        )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return NodeChangeList

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return super().changelist_view(request, {**scheduler_context(), **(extra_context or {})})

    @admin.display(description="node", ordering="id")
    def node(self, obj: SchedulerNode) -> str:
        return obj.id[:8]

    @admin.display(description="started", ordering="started_at")
    def started(self, obj: SchedulerNode) -> str:
        return display.moment(obj.started_at)

    @admin.display(description="last heartbeat", ordering="last_heartbeat")
    def heartbeat(self, obj: SchedulerNode) -> SafeString:
        age: timedelta | None = getattr(obj, "heartbeat_age", None)
        return format_html(
            '{}<br><span class="cw-small">{}</span>',
            display.moment(obj.last_heartbeat),
            display.age(age),
        )

    @admin.display(description="state")
    def state(self, obj: SchedulerNode) -> SafeString:
        if obj.stopped_at is not None:
            when = display.moment(obj.stopped_at)
            return format_html('<span class="cw-muted">\u25a0 stopped {}</span>', when)
        if obj.dead_at is not None:
            when = display.moment(obj.dead_at)
            return format_html('<span class="cw-outcome cw-bad">\u2716 dead ({})</span>', when)
        age: timedelta | None = getattr(obj, "heartbeat_age", None)
        if age is not None and age.total_seconds() > get_conf().node_timeout:
            return mark_safe('<span class="cw-outcome cw-bad">\u2716 dead (silent)</span>')
        return mark_safe('<span class="cw-outcome cw-ok">\u2714 alive</span>')

    @admin.display(description="runs in the last hour")
    def runs_last_hour(self, obj: SchedulerNode) -> SafeString:
        return self._runs_link(obj, getattr(obj, "clockwork_counts", (0, 0))[0], "")

    @admin.display(description="runs in flight")
    def runs_in_flight(self, obj: SchedulerNode) -> SafeString:
        count = getattr(obj, "clockwork_counts", (0, 0))[1]
        return self._runs_link(obj, count, "&status__exact=running")

    def _runs_link(self, obj: SchedulerNode, count: int, extra: str) -> SafeString:
        runs = reverse("admin:django_clockwork_jobexecution_changelist")
        return format_html('<a href="{}?node_id={}{}">{}</a>', runs, obj.id, extra, count)
