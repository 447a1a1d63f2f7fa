"""The admin and Task targets: offered in the form, checked against the backend, saved
through ``api``; the list, the job page and a run's page show the task and its result."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_clockwork import api, taskframework, tasktargets
from django_clockwork.declarations import job_function
from django_clockwork.models import Job, JobExecution

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(taskframework.FRAMEWORK is None, reason="no tasks framework"),
]

ADD = reverse("admin:django_clockwork_job_add")


@pytest.fixture(autouse=True)
def _registered() -> None:
    from tests import tasks

    job_function(tasks.send_digest)
    job_function(tasks.add)


def form(**values: Any) -> dict[str, Any]:
    data = {
        "id": "digest",
        "name": "",
        "func": "task:tests.tasks.send_digest",
        "trigger_type": "cron",
        "timezone": "UTC",
        "cron_hour": "7",
        "cron_minute": "0",
        "args": "[42]",
        "kwargs": '{"subject": "weekly"}',
        "misfire_grace_time": "60",
        "coalesce": "on",
        "max_instances": "1",
        "task_backend": "dummy",
        "task_queue_name": "emails",
        "task_priority": "10",
        "task_run_after": "",
    }
    data.update(values)
    return {key: value for key, value in data.items() if value is not None}


def errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200, response.status_code
    return {
        name: list(messages) for name, messages in response.context["adminform"].form.errors.items()
    }


def test_registered_tasks_are_offered_and_a_task_job_is_added(admin_client: Client) -> None:
    page = admin_client.get(ADD).content.decode()
    offered = re.findall(r'<option value="(task:[^"]+)"', page)
    assert offered == ["task:tests.tasks.add", "task:tests.tasks.send_digest"]
    response = admin_client.post(ADD, form())
    assert response.status_code == 302, errors(response)
    job = api.get_job("digest")
    assert job is not None
    assert (job.task, job.func, job.source) == (
        "tests.tasks.send_digest",
        tasktargets.ENQUEUER,
        "admin",
    )
    assert job.task_options == {"backend": "dummy", "queue_name": "emails", "priority": 10}
    assert (job.args, job.kwargs) == ((42,), {"subject": "weekly"})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"task_queue_name": "sms"}, "queue 'sms'"),
        (
            {"task_backend": "plain", "task_queue_name": "default", "task_priority": "3"},
            "does not support priorities",
        ),
        (
            {
                "task_backend": "plain",
                "task_queue_name": "default",
                "task_priority": "",
                "task_run_after": "5",
            },
            "cannot defer",
        ),
        ({"task_backend": "plain"}, "queue 'emails' is not one of backend 'plain''s queues"),
        ({"args": "[]", "kwargs": "{}"}, "cannot be called with these arguments"),
        ({"func": "task:tests.tasks.fail"}, "is not one of the available choices"),
    ],
)
def test_a_bad_task_job_is_refused_with_the_reason(
    admin_client: Client, values: dict[str, str], message: str
) -> None:
    found = errors(admin_client.post(ADD, form(**values)))
    assert message in str(found), found
    assert not Job.objects.exists()


def test_task_options_for_a_function_are_refused(admin_client: Client) -> None:
    from django_clockwork.declarations import register_function
    from tests import jobs

    register_function(jobs.noop)
    found = errors(admin_client.post(ADD, form(func="tests.jobs:noop", args="[]", kwargs="{}")))
    assert "Task options apply only to a Task target." in found["task_backend"]


def test_a_task_job_is_edited_and_shown(admin_client: Client) -> None:
    api.add_job(
        task="tests.tasks.send_digest",
        trigger="cron",
        hour=7,
        id="digest",
        args=[1],
        task_options={"backend": "dummy"},
    )
    page = admin_client.get(reverse("admin:django_clockwork_job_change", args=["digest"]))
    assert page.context["adminform"].form.initial["func"] == "task:tests.tasks.send_digest"
    assert page.context["adminform"].form.initial["task_backend"] == "dummy"
    response = admin_client.post(
        reverse("admin:django_clockwork_job_change", args=["digest"]),
        form(task_priority="", task_queue_name="", args="[2]"),
    )
    assert response.status_code == 302, errors(response)
    job = api.get_job("digest")
    assert job is not None
    assert (job.task_options, job.args) == ({"backend": "dummy"}, (2,))
    listing = admin_client.get(reverse("admin:django_clockwork_job_changelist")).content.decode()
    assert "send_digest <span" in listing
    assert "(task)" in listing
    assert "backend: dummy" in listing


def test_a_run_page_shows_the_task_result(admin_client: Client) -> None:
    run = JobExecution.objects.create(
        job_id="digest",
        func="tests.tasks.send_digest",
        scheduled_run_time=timezone.now(),
        status="enqueued",
        task_backend="dummy",
        task_result_id="abc123",
    )
    page = admin_client.get(reverse("admin:django_clockwork_jobexecution_change", args=[run.pk]))
    text = page.content.decode()
    assert "abc123 on backend dummy" in text
    assert "tests.tasks.send_digest" in text


@pytest.mark.skipif(
    tasktargets._database_backend_class() is None, reason="django-tasks-db is not installed"
)
def test_a_database_result_links_to_its_admin_page(admin_client: Client) -> None:
    from tests.tasks import add

    result = add.using(backend="database").enqueue(1, 2)
    run = JobExecution.objects.create(
        job_id="adding",
        func="tests.tasks.add",
        scheduled_run_time=timezone.now(),
        status="enqueued",
        task_backend="database",
        task_result_id=str(result.id),
    )
    page = admin_client.get(reverse("admin:django_clockwork_jobexecution_change", args=[run.pk]))
    link = reverse("admin:django_tasks_database_dbtaskresult_change", args=[result.id])
    assert f'<a href="{link}">{result.id}</a> on backend database' in page.content.decode()


def test_the_function_filter_lists_tasks_by_path(admin_client: Client) -> None:
    from django_clockwork.declarations import register_function
    from tests import jobs

    register_function(jobs.noop)
    api.add_job("tests.jobs:noop", "cron", hour=7, id="plain")
    api.add_job(task="tests.tasks.add", trigger="cron", hour=7, id="adding", args=[1, 2])
    listing = reverse("admin:django_clockwork_job_changelist")
    page = admin_client.get(listing)
    assert "?func=task%3Atests.tasks.add" in page.content.decode()
    only_task = admin_client.get(listing, {"func": "task:tests.tasks.add"})
    assert [row.id for row in only_task.context["cl"].result_list] == ["adding"]
    only_plain = admin_client.get(listing, {"func": "tests.jobs:noop"})
    assert [row.id for row in only_plain.context["cl"].result_list] == ["plain"]
