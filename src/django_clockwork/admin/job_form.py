"""The job form of the admin: a registered function, a trigger edited per type, arguments as
JSON checked against the function's signature, and the job's options.

Nothing here writes: the form validates and previews; :class:`~django_clockwork.admin.jobs.
JobAdmin` saves through ``api``. A trigger that never fires is refused; a valid trigger's next
fire times are kept on the form (``preview``) for the page to show.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from typing import Any, cast

from apscheduler.triggers.base import BaseTrigger
from django import forms
from django.utils import timezone

from django_clockwork import inputs, taskframework, tasktargets
from django_clockwork.admin import trigger_form
from django_clockwork.admin.preview import FireTime, fire_times
from django_clockwork.conf import get_conf
from django_clockwork.declarations import registered_functions, registered_tasks
from django_clockwork.exceptions import InvalidJobError
from django_clockwork.jsoncolumn import Undecodable
from django_clockwork.models import Job
from django_clockwork.serialization import SerializationError, check_json_arguments

#: The submit button that validates and previews without saving.
PREVIEW = "_preview"
PREVIEW_NOTE = "Preview: nothing was saved. Check the fire times below, then save."


#: How the target field names a Task (its path follows): functions are named by reference.
TASK_PREFIX = "task:"
#: The form's fields for a Task target's options, by option name.
TASK_FIELDS = {
    "backend": "task_backend",
    "queue_name": "task_queue_name",
    "priority": "task_priority",
    "run_after": "task_run_after",
}


def _labelled(name: str, func: Any) -> str:
    doc = (inspect.getdoc(func) or "").strip().splitlines()
    return f"{name} - {doc[0]}" if doc else name


def function_choices() -> list[Any]:
    """The registered and declared functions, with the first line of their docstring; then
    the registered and declared Tasks (enqueued on a task backend when the job fires)."""
    choices: list[Any] = [("", "---------")]
    functions = [(ref, _labelled(ref, f)) for ref, f in sorted(registered_functions().items())]
    tasks = [
        (TASK_PREFIX + path, _labelled(path, tasktargets.function_of(task)))
        for path, task in sorted(registered_tasks().items())
    ]
    if not tasks:
        return choices + functions
    return [*choices, ("Functions (run by the scheduler)", functions), ("Tasks (enqueued)", tasks)]


def backend_choices() -> list[tuple[str, str]]:
    """The task backends of ``settings.TASKS`` (empty: the Task's own)."""
    if taskframework.FRAMEWORK is None:
        return [("", "---------")]
    aliases = sorted(taskframework.require().task_backends.settings)
    return [("", "the Task's own"), *((alias, alias) for alias in aliases)]


class BaseJobForm(forms.ModelForm):  # type: ignore[type-arg]
    """The job's own fields; :class:`JobForm` adds the trigger's."""

    func = forms.ChoiceField(
        label="Function",
        help_text="Only registered functions (@job_function, register_function) and functions "
        "of jobs declared in code can be chosen.",
    )
    args = forms.JSONField(
        required=False,
        initial=list,
        help_text='Positional arguments as a JSON list, e.g. [1, "two"].',
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
    )
    kwargs = forms.JSONField(
        required=False,
        initial=dict,
        help_text='Keyword arguments as a JSON object, e.g. {"full": true}.',
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
    )
    task_backend = forms.ChoiceField(label="Backend", required=False)
    task_queue_name = forms.CharField(
        label="Queue", required=False, help_text="Empty: the Task's own queue."
    )
    task_priority = forms.IntegerField(
        label="Priority", required=False, help_text="Empty: the Task's own priority."
    )
    task_run_after = forms.FloatField(
        label="Run after (s)",
        required=False,
        min_value=0,
        help_text="Seconds after the scheduled time before the task may run (if the backend "
        "can defer).",
    )

    class Meta:
        model = Job
        fields = ["id", "name", "misfire_grace_time", "coalesce", "max_instances"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.preview: list[FireTime] = []
        self.trigger: BaseTrigger | None = None
        if "func" in self.fields:
            cast(forms.ChoiceField, self.fields["func"]).choices = function_choices()
            self.fields["func"].label = "Function or task"
        if "task_backend" in self.fields:
            cast(forms.ChoiceField, self.fields["task_backend"]).choices = backend_choices()
        if "timezone" in self.fields:
            self.fields["timezone"].initial = get_conf().timezone
        if "id" in self.fields:
            self.fields["id"].required = False
            self.fields["id"].help_text = "Empty: a random id."
        defaults = get_conf().job_defaults
        if self.instance._state.adding:
            self.initial.setdefault("misfire_grace_time", defaults.misfire_grace_time)
            self.initial.setdefault("coalesce", defaults.coalesce)
            self.initial.setdefault("max_instances", defaults.max_instances)
        else:
            self._initial_from_row(self.instance)

    def _initial_from_row(self, row: Job) -> None:
        """The stored job as the form's values; a column whose JSON cannot be decoded starts
        empty, and its field says what is stored (a new value repairs the row)."""
        self.initial["func"] = TASK_PREFIX + row.task if row.task else row.func
        options = row.task_options if isinstance(row.task_options, dict) else {}
        for option, field in TASK_FIELDS.items():
            self.initial[field] = options.get(option)
        self.initial.update(trigger_form.initial_from(row.trigger))
        for column, field in (("args", "args"), ("kwargs", "kwargs"), ("trigger", "trigger_type")):
            value = getattr(row, column)
            if isinstance(value, Undecodable):
                self.initial.pop(column, None)  # ModelForm put the marker there
                if field in self.fields:
                    self.fields[field].help_text = f"Stored now: {value}; give a new value."
            elif column != "trigger":
                self.initial[column] = value

    def clean_id(self) -> str:
        job_id = str(self.cleaned_data.get("id") or "").strip() or uuid.uuid4().hex
        try:
            return inputs.check_id(job_id)
        except InvalidJobError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean_func(self) -> str:
        ref = str(self.cleaned_data.get("func") or "")
        if ref.startswith(TASK_PREFIX):
            if ref.removeprefix(TASK_PREFIX) not in registered_tasks():
                raise forms.ValidationError(
                    f"{ref.removeprefix(TASK_PREFIX)!r} is not a registered Task: decorate it "
                    "with @job_function (above @task) to make it schedulable."
                )
            return ref
        if ref not in registered_functions():
            raise forms.ValidationError(
                f"{ref!r} is not registered: decorate it with @job_function (or call "
                "register_function) to make it schedulable."
            )
        return ref

    def clean_args(self) -> list[Any]:
        value = self.cleaned_data.get("args")
        if value in (None, ""):
            return []
        if not isinstance(value, list):
            raise forms.ValidationError("Positional arguments must be a JSON list, e.g. [1, 2].")
        return value

    def clean_kwargs(self) -> dict[str, Any]:
        value = self.cleaned_data.get("kwargs")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError('Keyword arguments must be a JSON object, e.g. {"a": 1}.')
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None
        self._check_json(cleaned)
        self._check_signature(cleaned)
        self._check_task(cleaned)
        self._check_trigger(cleaned)
        if PREVIEW in self.data and not self.errors:
            raise forms.ValidationError(PREVIEW_NOTE, code="preview")
        return cleaned

    def _check_json(self, cleaned: dict[str, Any]) -> None:
        try:
            check_json_arguments(cleaned.get("args", []), cleaned.get("kwargs", {}))
        except SerializationError as exc:
            self.add_error("args", str(exc))

    def task_options(self) -> dict[str, Any]:
        """The Task options given (empty fields left out)."""
        data = self.cleaned_data
        return {
            option: data[field]
            for option, field in TASK_FIELDS.items()
            if data.get(field) not in (None, "")
        }

    def _check_task(self, cleaned: dict[str, Any]) -> None:
        """A Task target's options and arguments, checked against its backend."""
        if "func" not in cleaned:
            return  # refused already
        ref = cleaned["func"]
        if not ref.startswith(TASK_PREFIX):
            if self.task_options():
                self.add_error("task_backend", "Task options apply only to a Task target.")
            return
        if "args" not in cleaned or "kwargs" not in cleaned:
            return
        try:
            tasktargets.check(
                ref.removeprefix(TASK_PREFIX),
                self.task_options(),
                cleaned["args"],
                cleaned["kwargs"],
            )
        except InvalidJobError as exc:
            self.add_error("func", str(exc))

    def _check_signature(self, cleaned: dict[str, Any]) -> None:
        ref = cleaned.get("func") or ""
        task = registered_tasks().get(ref.removeprefix(TASK_PREFIX))
        func: Callable[..., Any] | None = (
            tasktargets.function_of(task)
            if task is not None and not task.takes_context
            else registered_functions().get(ref)
        )
        if func is None or "args" not in cleaned or "kwargs" not in cleaned:
            return
        try:
            inspect.signature(func).bind(*cleaned["args"], **cleaned["kwargs"])
        except TypeError as exc:
            field = "kwargs" if cleaned["kwargs"] and "keyword" in str(exc) else "args"
            self.add_error(field, f"{cleaned['func']} cannot be called with these arguments: {exc}")
        except ValueError:
            return  # no signature to check (some builtins)

    def _check_trigger(self, cleaned: dict[str, Any]) -> None:
        try:
            trigger = trigger_form.build(cleaned)
        except trigger_form.TriggerErrors as exc:
            for field, message in exc.errors.items():
                self.add_error(field, message)
            return
        zone = trigger_form.zone_named(cleaned.get("timezone") or "UTC")
        self.preview = fire_times(trigger, zone)
        if not self.preview:
            self.add_error("trigger_type", "This trigger never fires (after now): it is refused.")
            return
        if cleaned.get("trigger_type") == "date" and self.preview[0].local < timezone.now():
            # A recurring trigger whose first fire time is just behind now (a calendar
            # interval at 03:00, saved at 03:30) runs it at once, as APScheduler does.
            self.add_error("run_date", "This time has passed: the job would never run on time.")
            return
        self.trigger = trigger


#: The job form with every trigger type's fields declared (the admin lays them out by type).
JobForm = type("JobForm", (BaseJobForm,), trigger_form.trigger_fields("UTC"))
