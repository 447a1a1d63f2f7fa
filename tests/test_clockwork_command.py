"""``manage.py clockwork list|show|pause|resume|remove``: as a user runs them."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_clockwork import api, taskframework
from django_clockwork.models import ExecutionStatus, Job, JobExecution

from .test_retention import manage

pytestmark = pytest.mark.django_db


def clockwork(*args: str) -> str:
    out = StringIO()
    call_command("clockwork", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def jobs() -> None:
    api.add_job("tests.jobs:noop", crontab="0 9 * * 1-5", timezone="Europe/Paris", id="report")
    api.add_job("tests.jobs:noop", "interval", minutes=10, id="poll")
    api.pause_job("poll")
    api.add_job("tests.jobs:noop", "interval", minutes=5, id="broken")
    Job.objects.filter(id="broken").update(load_error="ImportError: gone")
    JobExecution.objects.create(
        job_id="report",
        scheduled_run_time=timezone.now() - timedelta(days=1),
        status=ExecutionStatus.SUCCEEDED,
    )


def test_list_shows_schedule_state_and_last_run(jobs: None) -> None:
    lines = clockwork("list").splitlines()
    assert lines[0].split() == ["ID", "SCHEDULE", "NEXT", "RUN", "STATE", "LAST", "RUN"]
    by_id = {line.split()[0]: line for line in lines[1:]}
    assert set(by_id) == {"report", "poll", "broken"}
    assert "At 09:00, Monday through Friday (Europe/Paris)" in by_id["report"]
    assert "active" in by_id["report"]
    assert "succeeded (" in by_id["report"]
    assert "paused" in by_id["poll"]
    assert "broken" in by_id["broken"]
    assert lines[-1].startswith("poll")  # paused last


def test_list_json(jobs: None) -> None:
    listed = {entry["id"]: entry for entry in json.loads(clockwork("list", "--json"))}
    assert listed["report"]["description"] == "At 09:00, Monday through Friday (Europe/Paris)"
    assert listed["report"]["last_outcome"] == "succeeded"
    assert listed["poll"]["state"] == "paused"
    assert listed["poll"]["next_run_time"] is None
    assert listed["broken"]["load_error"] == "ImportError: gone"


def test_list_with_no_jobs() -> None:
    assert clockwork("list") == "No jobs.\n"
    assert json.loads(clockwork("list", "--json")) == []


def test_show(jobs: None) -> None:
    text = clockwork("show", "report")
    assert "schedule:           At 09:00, Monday through Friday (Europe/Paris)" in text
    assert "function:           tests.jobs:noop" in text
    assert "state:              active" in text
    assert " succeeded" in text.split("latest runs:")[1]


def test_pause_resume_remove(jobs: None) -> None:
    assert clockwork("pause", "report") == "Paused 'report'.\n"
    assert Job.objects.get(id="report").next_run_time is None
    assert clockwork("resume", "report").startswith("Resumed 'report'; next run 20")
    assert Job.objects.get(id="report").next_run_time is not None
    assert clockwork("remove", "report") == "Removed 'report'; its history stays.\n"
    assert not Job.objects.filter(id="report").exists()
    assert JobExecution.objects.filter(job_id="report").exists()
    assert clockwork("pause", "poll", "-v", "0") == ""


@pytest.mark.parametrize("subcommand", ["show", "pause", "resume", "remove"])
def test_an_unknown_id_is_an_error(subcommand: str) -> None:
    with pytest.raises(CommandError, match="No job with id 'nope'") as error:
        call_command("clockwork", subcommand, "nope")
    assert error.value.returncode == 2


@pytest.mark.django_db(transaction=True)
def test_an_unknown_id_in_a_real_process_is_one_line_and_exit_2() -> None:
    done = manage("pause", "nope")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "CommandError: No job with id 'nope' (manage.py clockwork list shows the ids)."
    ]
    api.add_job("tests.jobs:noop", "interval", minutes=10, id="poll")
    done = manage("list")
    assert done.returncode == 0, done.stderr
    assert "Every 10 minutes" in done.stdout


def test_show_marks_a_pending_run_now_request_and_who_asked(jobs: None) -> None:
    api.run_now("report", requested_by="alice")
    text = clockwork("show", "report")
    assert "pending (no scheduler has taken it yet) [run-now by alice]" in text


@pytest.mark.skipif(taskframework.FRAMEWORK is None, reason="no tasks framework")
def test_show_and_list_name_a_task_job_s_task() -> None:
    api.add_job(
        task="tests.tasks.add",
        trigger="cron",
        hour=7,
        id="adding",
        args=[1, 2],
        task_options={"backend": "dummy"},
    )
    assert 'task:               tests.tasks.add {"backend": "dummy"}' in clockwork("show", "adding")
    (listed,) = json.loads(clockwork("list", "--json"))
    assert listed["task"] == "tests.tasks.add"
