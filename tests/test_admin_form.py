"""Adding and editing jobs in the admin: registered functions only, the trigger edited per
type with a preview, JSON arguments checked against the signature, saved through ``api``."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.test import Client
from django.urls import reverse

from django_clockwork import api
from django_clockwork.declarations import register_function
from django_clockwork.models import Job

from . import jobs

pytestmark = pytest.mark.django_db

ADD = reverse("admin:django_clockwork_job_add")
CRON = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")


def change(job_id: str) -> str:
    return reverse("admin:django_clockwork_job_change", args=[job_id])


@pytest.fixture(autouse=True)
def _registered() -> None:
    for func in (jobs.noop, jobs.sleep, jobs.echo):
        register_function(func)


def form(**values: Any) -> dict[str, Any]:
    data = {
        "id": "report",
        "name": "Report",
        "func": "tests.jobs:noop",
        "trigger_type": "cron",
        "timezone": "Europe/Paris",
        "args": "[]",
        "kwargs": "{}",
        "misfire_grace_time": "60",
        "coalesce": "on",
        "max_instances": "1",
    }
    data.update(values)
    return {key: value for key, value in data.items() if value is not None}


def errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200, response.status_code
    form = response.context["adminform"].form
    return {name: list(messages) for name, messages in form.errors.items()}


def test_only_registered_functions_are_offered_and_accepted(admin_client: Client) -> None:
    page = admin_client.get(ADD).content.decode()
    offered = re.findall(r'<option value="(tests\.jobs:[^"]+)"', page)
    assert offered == ["tests.jobs:echo", "tests.jobs:noop", "tests.jobs:sleep"]
    found = errors(admin_client.post(ADD, form(func="tests.jobs:fail", cron_hour="9")))
    assert "func" in found
    assert not Job.objects.exists()


def test_an_invalid_cron_field_is_shown_next_to_it_then_preview_then_save(
    admin_client: Client,
) -> None:
    bad = admin_client.post(ADD, form(cron_hour="25", cron_minute="0"))
    assert list(errors(bad)) == ["cron_hour"]
    assert "25" in errors(bad)["cron_hour"][0]
    assert not Job.objects.exists()

    preview = admin_client.post(ADD, form(cron_hour="9", cron_minute="0", _preview="1"))
    assert "Preview only: nothing was saved yet" in preview.content.decode()
    assert "Please correct" not in preview.content.decode()
    times = preview.context["clockwork_preview"]
    assert len(times) == 10
    assert all(" 09:00:00 " in t.local_text for t in times)
    assert not Job.objects.exists()

    saved = admin_client.post(ADD, form(cron_hour="9", cron_minute="0"))
    assert saved.status_code == 302
    job = api.get_job("report")
    assert job is not None
    assert (job.source, job.func, job.name) == ("admin", "tests.jobs:noop", "Report")
    assert job.trigger["hour"] == "9"
    assert job.trigger["timezone"] == "Europe/Paris"
    assert job.next_run_time is not None
    entry = LogEntry.objects.get()
    assert (entry.action_flag, entry.object_id, entry.user.username) == (
        ADDITION,
        "report",
        "admin",
    )


def test_crontab_text_counts_sunday_as_0_and_7(admin_client: Client) -> None:
    response = admin_client.post(ADD, form(trigger_type="crontab", crontab="30 6 * * 0"))
    assert response.status_code == 302
    assert api.get_job("report").trigger["day_of_week"] == "sun"  # type: ignore[union-attr]
    bad = admin_client.post(ADD, form(id="x", trigger_type="crontab", crontab="30 6 * *"))
    assert "crontab" in errors(bad)


@pytest.mark.parametrize(
    ("values", "stored"),
    [
        (
            {"trigger_type": "interval", "interval_minutes": "15"},
            {"type": "interval", "minutes": 15},
        ),
        (
            {"trigger_type": "calendarinterval", "calendar_months": "1", "calendar_hour": "3"},
            {"type": "calendarinterval", "months": 1, "hour": 3},
        ),
        (
            {"trigger_type": "date", "run_date": "2099-06-01 09:00:00"},
            {"type": "date", "run_date": "2099-06-01T09:00:00+02:00"},
        ),
        (
            {
                "trigger_type": "cron",
                "cron_minute": "*/5",
                "jitter": "10",
                "end_date": "2099-01-01 00:00:00",
            },
            {
                "type": "cron",
                "minute": "*/5",
                "jitter": 10,
                "end_date": "2099-01-01T00:00:00+01:00",
            },
        ),
    ],
)
def test_each_trigger_type(
    admin_client: Client, values: dict[str, str], stored: dict[str, Any]
) -> None:
    response = admin_client.post(ADD, form(**values))
    assert response.status_code == 302, errors(response)
    trigger = Job.objects.get(id="report").trigger
    assert {key: trigger[key] for key in stored} == stored


def test_a_trigger_that_never_fires_is_refused(admin_client: Client) -> None:
    past = admin_client.post(ADD, form(trigger_type="date", run_date="2001-01-01 00:00:00"))
    assert "has passed" in errors(past)["run_date"][0]
    ended = admin_client.post(ADD, form(cron_hour="3", end_date="2001-01-01 00:00:00"))
    assert "trigger_type" in errors(ended)
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("values", "field", "says"),
    [
        ({"args": "[1,"}, "args", "valid JSON"),
        ({"args": '{"a": 1}'}, "args", "JSON list"),
        ({"kwargs": "[1]"}, "kwargs", "JSON object"),
        ({"func": "tests.jobs:noop", "args": "[1]"}, "args", "cannot be called"),
        ({"func": "tests.jobs:sleep", "args": "[]"}, "args", "missing a required argument"),
        (
            {"func": "tests.jobs:sleep", "args": "[1]", "kwargs": '{"nope": 1}'},
            "kwargs",
            "unexpected keyword",
        ),
    ],
)
def test_arguments_are_json_and_fit_the_signature(
    admin_client: Client, values: dict[str, str], field: str, says: str
) -> None:
    found = errors(admin_client.post(ADD, form(cron_hour="3", **values)))
    assert field in found, found
    assert says in found[field][0]
    assert not Job.objects.exists()


def test_arguments_that_fit_are_stored(admin_client: Client) -> None:
    response = admin_client.post(
        ADD, form(func="tests.jobs:sleep", cron_hour="3", kwargs='{"seconds": 0.5}')
    )
    assert response.status_code == 302
    assert api.get_job("report").kwargs == {"seconds": 0.5}  # type: ignore[union-attr]


def test_an_existing_id_is_refused(admin_client: Client) -> None:
    api.add_job("tests.jobs:noop", "interval", minutes=5, id="report")
    assert "id" in errors(admin_client.post(ADD, form(cron_hour="3")))


def test_edit_goes_through_api_and_keeps_a_pause(admin_client: Client) -> None:
    admin_client.post(ADD, form(cron_hour="3", cron_minute="0"))
    api.pause_job("report")
    before = api.get_job("report")
    assert before is not None
    page = admin_client.get(change("report"))
    initial = page.context["adminform"].form.initial
    assert (initial["trigger_type"], initial["cron_hour"], initial["timezone"]) == (
        "cron",
        "3",
        "Europe/Paris",
    )
    unchanged = {f"cron_{key}": value for key, value in before.trigger.items() if key in CRON}
    edited = form(id=None, name="Renamed", **{**unchanged, "cron_hour": "4"})
    response = admin_client.post(change("report"), edited)
    assert response.status_code == 302, errors(response)
    after = api.get_job("report")
    assert after is not None
    assert (after.name, after.trigger["hour"], after.paused) == ("Renamed", "4", True)
    assert after.version > before.version
    assert LogEntry.objects.filter(action_flag=CHANGE).count() == 1


def test_an_unchanged_trigger_keeps_its_next_run(admin_client: Client) -> None:
    admin_client.post(ADD, form(trigger_type="interval", interval_hours="6"))
    before = api.get_job("report")
    assert before is not None
    initial = admin_client.get(change("report")).context["adminform"].form.initial
    data = {key: ("" if value is None else value) for key, value in initial.items()}
    data.update(name="Renamed", args="[]", kwargs="{}", coalesce="on", func="tests.jobs:noop")
    data["start_date"] = initial["start_date"].strftime("%Y-%m-%d %H:%M:%S.%f")
    response = admin_client.post(change("report"), data)
    assert response.status_code == 302, errors(response)
    after = api.get_job("report")
    assert after is not None
    assert after.name == "Renamed"
    assert after.next_run_time == before.next_run_time


def test_a_job_declared_in_code_is_read_only_but_can_be_paused(admin_client: Client) -> None:
    api.add_job("tests.jobs:noop", "interval", minutes=5, id="declared")
    Job.objects.filter(id="declared").update(source="code")
    page = admin_client.get(change("declared")).content.decode()
    assert "Declared in code" in page
    assert 'name="func"' not in page
    assert 'name="_save"' not in page
    assert 'value="Pause"' in page
    before = api.get_job("declared")
    admin_client.post(
        change("declared"), form(id=None, trigger_type="interval", interval_minutes="1")
    )
    assert api.get_job("declared") == before
    operate = reverse("admin:django_clockwork_job_operate", args=["declared", "pause"])
    admin_client.post(operate)
    assert api.get_job("declared").paused  # type: ignore[union-attr]


def test_the_form_repairs_a_row_whose_trigger_cannot_be_decoded(admin_client: Client) -> None:
    admin_client.post(ADD, form(cron_hour="3"))
    from django.db import connection

    table, column = (connection.ops.quote_name(n) for n in (Job._meta.db_table, "trigger"))
    with connection.cursor() as cursor:
        broken = '{"type": "interval", "seconds": ' + "1" * 5000 + "}"
        cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [broken, "report"])
    page = admin_client.get(change("report")).content.decode()
    assert "Stored now: (stored JSON that cannot be decoded" in page
    response = admin_client.post(
        change("report"), form(id=None, trigger_type="interval", interval_minutes="5")
    )
    assert response.status_code == 302, errors(response)
    job = api.get_job("report")
    assert job is not None
    assert (job.trigger["type"], job.load_error) == ("interval", "")
