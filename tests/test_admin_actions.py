"""Operating jobs from the admin: every change goes through ``api``, needs the change
permission, is logged with the user, and only asks (a scheduler runs the job)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from django_clockwork import api
from django_clockwork.models import Job, JobExecution, SchedulerNode

from .admin_helpers import run
from .conftest import utc

pytestmark = pytest.mark.django_db

JOBS = reverse("admin:django_clockwork_job_changelist")


def operate(job_id: str, operation: str) -> str:
    return reverse("admin:django_clockwork_job_operate", args=[job_id, operation])


def page(job_id: str) -> str:
    return reverse("admin:django_clockwork_job_change", args=[job_id])


def act(client: Client, action: str, *job_ids: str) -> object:
    return client.post(JOBS, {"action": action, "_selected_action": list(job_ids)}, follow=True)


@pytest.fixture
def viewer(client: Client) -> Client:
    """A staff user with only the view permissions of the scheduler's models."""
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="django_clockwork", codename__startswith="view_"
        )
    )
    client.force_login(user)
    return client


@pytest.fixture
def nightly() -> api.ScheduledJob:
    return api.add_job("tests.jobs:noop", "cron", hour=3, id="nightly", name="Nightly")


def test_the_actions_have_stable_names(admin_client: Client, nightly: api.ScheduledJob) -> None:
    choices = admin_client.get(JOBS).context["action_form"].fields["action"].choices
    names = [name for name, _ in choices if name]
    assert names == ["delete_selected", "run_now", "run_now_skip_next", "pause", "resume"]


def test_run_now_records_a_request_and_logs_who_asked(
    admin_client: Client, nightly: api.ScheduledJob
) -> None:
    response = act(admin_client, "run_now", "nightly")
    assert b"The runs appear in the history" in response.content  # type: ignore[attr-defined]
    request = JobExecution.objects.get(job_id="nightly")
    assert (request.status, request.trigger_source, request.requested_by) == (
        "scheduled",
        "run-now",
        "admin",
    )
    assert api.get_job("nightly").next_run_time == nightly.next_run_time  # type: ignore[union-attr]
    entry = LogEntry.objects.get()
    assert (entry.user.username, entry.action_flag, entry.object_id) == ("admin", CHANGE, "nightly")
    assert entry.change_message == "Asked a scheduler to run it now"


def test_run_now_and_skip_next(admin_client: Client, nightly: api.ScheduledJob) -> None:
    act(admin_client, "run_now_skip_next", "nightly")
    statuses = set(JobExecution.objects.filter(job_id="nightly").values_list("status", flat=True))
    assert statuses == {"scheduled", "skipped"}
    assert api.get_job("nightly").next_run_time > nightly.next_run_time  # type: ignore[operator,union-attr]


def test_pause_and_resume_go_through_api(admin_client: Client, nightly: api.ScheduledJob) -> None:
    act(admin_client, "pause", "nightly")
    paused = api.get_job("nightly")
    assert paused is not None
    assert paused.paused
    assert paused.version == nightly.version + 1
    act(admin_client, "resume", "nightly")
    resumed = api.get_job("nightly")
    assert resumed is not None
    assert resumed.next_run_time is not None
    assert resumed.version == nightly.version + 2
    assert list(LogEntry.objects.order_by("id").values_list("change_message", flat=True)) == [
        "Paused",
        "Resumed",
    ]


def test_an_operation_a_job_refuses_is_reported(admin_client: Client) -> None:
    api.add_job("tests.jobs:noop", "interval", minutes=5, id="broken")
    Job.objects.filter(id="broken").update(load_error="LookupError: gone")
    response = act(admin_client, "run_now", "broken")
    assert b"was not changed" in response.content  # type: ignore[attr-defined]
    assert not JobExecution.objects.exists()
    assert not LogEntry.objects.exists()


def test_delete_keeps_history(admin_client: Client, nightly: api.ScheduledJob) -> None:
    run("nightly", "succeeded", utc(2030, 1, 1))
    api.add_job("tests.jobs:noop", "interval", minutes=5, id="other")
    admin_client.post(
        JOBS, {"action": "delete_selected", "_selected_action": ["other"], "post": "yes"}
    )
    delete = reverse("admin:django_clockwork_job_delete", args=["nightly"])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert not Job.objects.exists()
    assert JobExecution.objects.filter(job_id="nightly").count() == 1
    assert LogEntry.objects.filter(action_flag=DELETION).count() == 2


def test_buttons_on_a_jobs_page(admin_client: Client, nightly: api.ScheduledJob) -> None:
    html = admin_client.get(page("nightly")).content.decode()
    for label in ("Run now", "Run now and skip the next run", "Pause"):
        assert f'value="{label}"' in html
    assert 'value="Resume"' not in html
    assert f"{reverse('admin:django_clockwork_jobexecution_changelist')}?job_id=nightly" in html
    assert admin_client.get(operate("nightly", "pause")).status_code == 405
    assert admin_client.post(operate("nightly", "pause")).status_code == 302
    assert api.get_job("nightly").paused  # type: ignore[union-attr]
    html = admin_client.get(page("nightly")).content.decode()
    assert 'value="Resume"' in html
    assert 'value="Pause"' not in html
    assert admin_client.post(operate("nightly", "explode")).status_code == 404
    assert admin_client.post(operate("nobody", "pause")).status_code in (302, 404)


def test_the_request_never_runs_the_job(admin_client: Client, nightly: api.ScheduledJob) -> None:
    admin_client.post(operate("nightly", "run_now"))
    assert list(JobExecution.objects.values_list("status", flat=True)) == ["scheduled"]
    assert not SchedulerNode.objects.exists()


def test_a_view_only_user_sees_everything_and_changes_nothing(
    viewer: Client, nightly: api.ScheduledJob
) -> None:
    done = run("nightly", "failed", utc(2030, 1, 1), traceback="Traceback ...")
    for url in (
        JOBS,
        page("nightly"),
        reverse("admin:django_clockwork_jobexecution_changelist"),
        reverse("admin:django_clockwork_jobexecution_change", args=[done.pk]),
        reverse("admin:django_clockwork_schedulernode_changelist"),
    ):
        response = viewer.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert 'name="action"' not in html, url
        assert "/operate/" not in html, url
    html = viewer.get(page("nightly")).content.decode()
    assert "Run now" not in html
    assert "Delete" not in html
    for operation in ("run_now", "run_now_skip_next", "pause", "resume"):
        assert viewer.post(operate("nightly", operation)).status_code == 403
        act(viewer, operation, "nightly")
    delete = reverse("admin:django_clockwork_job_delete", args=["nightly"])
    assert viewer.post(delete, {"post": "yes"}).status_code == 403
    assert viewer.get(reverse("admin:django_clockwork_job_add")).status_code == 403
    assert viewer.post(page("nightly"), {"name": "changed"}).status_code == 403
    assert api.get_job("nightly") == nightly
    assert list(JobExecution.objects.values_list("status", flat=True)) == ["failed"]
    assert not LogEntry.objects.exists()


def test_our_model_admins_pass_djangos_own_checks() -> None:
    """Django's contract for a ModelAdmin: its system checks (admin.E0xx) find nothing."""
    from django_clockwork.models import JobExecution as Run

    for model in (Job, Run, SchedulerNode):
        model_admin = admin.site._registry[model]
        assert model_admin.check() == [], model


def test_djangos_permission_map_for_a_view_only_user(viewer: Client) -> None:
    """What Django's admin index and templates read: view yes, add / change / delete no."""
    from django.test import RequestFactory

    from django_clockwork.models import JobExecution as Run

    request = RequestFactory().get("/")
    request.user = User.objects.get(username="viewer")
    for model in (Job, Run, SchedulerNode):
        perms = admin.site._registry[model].get_model_perms(request)
        assert perms == {"add": False, "change": False, "delete": False, "view": True}, model
