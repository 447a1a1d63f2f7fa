"""The admin's list filters: each offers only values that can occur."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest

from django_clockwork.models import ExecutionStatus, JobExecution, SchedulerNode
from django_clockwork.triggers import ALIASES

Lookups = list[tuple[str, str]]


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"
    WHERE = {
        "scheduled": Q(next_run_time__isnull=False, finished_at__isnull=True, load_error=""),
        "paused": Q(next_run_time__isnull=True, finished_at__isnull=True, load_error=""),
        "finished": Q(finished_at__isnull=False),
        "broken": Q(finished_at__isnull=True) & ~Q(load_error=""),
        "undeclared": Q(undeclared_at__isnull=False),
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> Lookups:
        return [
            ("scheduled", "scheduled"),
            ("paused", "paused"),
            ("finished", "finished (one-off done)"),
            ("broken", "broken (cannot be loaded)"),
            ("undeclared", "no longer declared in code"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        where = self.WHERE.get(self.value() or "")
        return queryset if where is None else queryset.filter(where)


class BrokenFilter(admin.SimpleListFilter):
    title = "broken"
    parameter_name = "broken"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Lookups:
        return [("yes", "broken"), ("no", "loadable")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.exclude(load_error="")
        if self.value() == "no":
            return queryset.filter(load_error="")
        return queryset


#: Outcomes a job's last run can have (a run waiting for a thread is not a last run).
LAST_OUTCOMES = [s for s in ExecutionStatus if s != ExecutionStatus.SCHEDULED]


class LastOutcomeFilter(admin.SimpleListFilter):
    title = "last outcome"
    parameter_name = "last_outcome"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Lookups:
        return [(s.value, str(s.label)) for s in LAST_OUTCOMES] + [("never", "never ran")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        last = (
            JobExecution.objects.filter(job_id=OuterRef("id"))
            .exclude(status=ExecutionStatus.SCHEDULED)
            .order_by("-scheduled_run_time")
            .values("status")[:1]
        )
        annotated: QuerySet[Any] = queryset.annotate(last_outcome=Subquery(last))
        if value == "never":
            return annotated.filter(last_outcome__isnull=True)
        return annotated.filter(last_outcome=value)


class TriggerTypeFilter(admin.SimpleListFilter):
    title = "trigger type"
    parameter_name = "trigger_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Lookups:
        kinds = [*ALIASES, "and", "or"]
        return [(kind, kind) for kind in kinds]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(trigger__type=value) if value else queryset


class FunctionFilter(admin.SimpleListFilter):
    """The functions and tasks jobs name (one query on the job table)."""

    title = "function"
    parameter_name = "func"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Lookups:
        model = model_admin.model
        pairs = model.objects.order_by("task", "func").values_list("func", "task").distinct()
        return [(f"task:{task}", f"task {task}") if task else (func, func) for func, task in pairs]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value and value.startswith("task:"):
            return queryset.filter(task=value.removeprefix("task:"))
        return queryset.filter(func=value, task="") if value else queryset


class JobFilter(admin.SimpleListFilter):
    """History of one job: the jobs that exist (any job id can be typed in the URL)."""

    title = "job"
    parameter_name = "job_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Lookups:
        from django_clockwork.models import Job

        rows = Job.objects.order_by("name", "id").values_list("id", "name")
        return [(job_id, f"{name} ({job_id})" if name else job_id) for job_id, name in rows]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(job_id=value) if value else queryset


class NodeFilter(admin.SimpleListFilter):
    """Runs of one scheduler node (the nodes still registered)."""

    title = "node"
    parameter_name = "node_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Lookups:
        return [(node.id, str(node)) for node in SchedulerNode.objects.all()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(node_id=value) if value else queryset


class WarnedFilter(admin.SimpleListFilter):
    """Runs the watchdog noted: long running, or holding a worker while due runs waited."""

    title = "warning"
    parameter_name = "warned"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Lookups:
        return [("yes", "with a warning"), ("no", "without")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.exclude(warning="")
        if self.value() == "no":
            return queryset.filter(warning="")
        return queryset
