"""The admin's pages: the job list, run history and scheduler nodes, read as an operator reads
them (what runs when, what failed, what is late), with a fixed number of queries."""

from __future__ import annotations

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_clockwork import api
from django_clockwork.admin import display
from django_clockwork.admin.history import JobExecutionAdmin
from django_clockwork.models import Job, JobExecution

from .admin_helpers import node, run
from .conftest import utc

pytestmark = pytest.mark.django_db

JOBS = reverse("admin:django_clockwork_job_changelist")
RUNS = reverse("admin:django_clockwork_jobexecution_changelist")
NODES = reverse("admin:django_clockwork_schedulernode_changelist")


def listed(page: str) -> list[str]:
    """The job ids a job list shows."""
    return re.findall(r'cw-job-id">([^<]*)<', page)


def text(response: object) -> str:
    assert getattr(response, "status_code", None) == 200
    return getattr(response, "content", b"").decode()


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0006, "0.6 ms"),
        (0.048, "48 ms"),
        (2.34, "2.3 s"),
        (252, "4 min 12 s"),
        (3 * 3600 + 300, "3 h 5 min"),
        (None, "-"),
    ],
)
def test_durations_read_as_people_say_them(seconds: float | None, shown: str) -> None:
    assert display.duration(seconds) == shown


def test_relative_times() -> None:
    now = utc(2030, 1, 1, 12)
    assert display.relative(now + timedelta(minutes=4, seconds=10), now) == "in 4 min"
    assert display.relative(now - timedelta(seconds=12), now) == "12 s ago"
    assert display.lateness(now, now + timedelta(seconds=0.25)) == "250 ms late"


def test_job_list_shows_schedule_next_and_last_run(admin_client: Client) -> None:
    api.add_job(
        "tests.jobs:noop",
        "cron",
        hour=9,
        day_of_week="mon-fri",
        timezone="Europe/Paris",
        id="report",
        name="Morning report",
    )
    now = timezone.now()
    for minutes in range(25):
        status = "failed" if minutes == 3 else "succeeded"
        run("report", status, now - timedelta(minutes=minutes + 1))
    run("report", "running", now - timedelta(seconds=5))
    page = text(admin_client.get(JOBS))
    assert "Morning report" in page
    assert "report" in page
    assert "At 09:00, Monday through Friday (Europe/Paris)" in page
    assert "cron 0 0 9 * * mon-fri" in page
    assert "Europe/Paris" in page
    next_run = api.get_job("report").next_run_time  # type: ignore[union-attr]
    assert display.moment(next_run) in page  # with seconds
    assert "running" in page
    last = JobExecution.objects.filter(job_id="report", status="running").get()
    assert reverse("admin:django_clockwork_jobexecution_change", args=[last.pk]) in page
    assert "250 ms late" in page
    assert "95% succeeded" in page  # 19 of the last 19 finished runs in the strip of 20, 1 failed
    assert page.count('class="cw-dot') == 20


def test_paused_finished_broken_and_undeclared_jobs_say_so(admin_client: Client) -> None:
    api.add_job("tests.jobs:noop", "interval", minutes=5, id="paused", next_run_time=None)
    api.add_job("tests.jobs:noop", "interval", minutes=5, id="broken")
    Job.objects.filter(id="broken").update(load_error="LookupError: could not import module")
    api.add_job("tests.jobs:noop", "date", run_date=utc(2030, 1, 1), id="done")
    Job.objects.filter(id="done").update(next_run_time=None, finished_at=timezone.now())
    api.add_job("tests.jobs:noop", "interval", minutes=5, id="gone", next_run_time=None)
    Job.objects.filter(id="gone").update(source="code", undeclared_at=timezone.now())
    page = text(admin_client.get(JOBS))
    assert "could not import module" in page
    assert "broken" in page
    assert "finished" in page
    assert "paused (no longer declared)" in page
    only = text(admin_client.get(JOBS, {"state": "finished"}))
    assert listed(only) == ["done"]


def test_job_filters_offer_only_values_that_occur(admin_client: Client) -> None:
    api.add_job("tests.jobs:noop", "interval", minutes=5, id="a")
    api.add_job("tests.jobs:echo", "cron", hour=3, id="b", args=[1, 2])
    run("a", "failed", timezone.now() - timedelta(minutes=1))
    page = text(admin_client.get(JOBS))
    assert "?func=tests.jobs%3Anoop" in page
    assert "tests.jobs:fail" not in page
    assert "executor" not in page
    for query, shown in [
        ({"last_outcome": "failed"}, ["a"]),
        ({"last_outcome": "never"}, ["b"]),
        ({"trigger_type": "cron"}, ["b"]),
        ({"func": "tests.jobs:noop"}, ["a"]),
        ({"source": "api", "broken": "no"}, ["a", "b"]),
        ({"broken": "yes"}, []),
        ({"q": "tests.jobs:echo"}, ["b"]),
        ({"q": "a"}, ["a"]),
    ]:
        assert sorted(listed(text(admin_client.get(JOBS, query)))) == shown, query


@pytest.mark.parametrize("jobs", [10, 500])
def test_job_list_query_count_does_not_grow(
    admin_client: Client, jobs: int, django_assert_num_queries: object
) -> None:
    for n in range(jobs):
        api.add_job("tests.jobs:noop", "interval", minutes=5 + n, id=f"job-{n:03}")
    now = timezone.now()
    for n in range(0, jobs, 3):
        run(f"job-{n:03}", "succeeded", now - timedelta(minutes=1))
    node()
    admin_client.get(JOBS)  # warm the session and content types
    with CaptureQueriesContext(connection) as queries:
        page = text(admin_client.get(JOBS))
    assert "job-009" in page
    # session, user, banner node check, function filter, count, page, recent runs, running
    assert len(queries) == QUERIES_PER_JOB_LIST, [q["sql"][:120] for q in queries]


QUERIES_PER_JOB_LIST = 8


def test_show_all_lists_up_to_200_jobs_in_the_same_queries(admin_client: Client) -> None:
    for n in range(200):
        api.add_job("tests.jobs:noop", "interval", minutes=5, id=f"job-{n:03}")
    node()
    admin_client.get(JOBS)
    with CaptureQueriesContext(connection) as queries:
        page = text(admin_client.get(JOBS, {"all": ""}))
    assert "job-199" in page
    assert len(queries) == QUERIES_PER_JOB_LIST


def test_banner_when_no_scheduler_node_is_alive(admin_client: Client) -> None:
    warning = "No scheduler node is alive"
    for url in (JOBS, RUNS, NODES):
        assert warning in text(admin_client.get(url)), url
    node("dead", age=3600)
    assert warning in text(admin_client.get(JOBS))
    node("alive")
    for url in (JOBS, RUNS, NODES):
        assert warning not in text(admin_client.get(url)), url


def test_history_list_reads_like_a_log(admin_client: Client) -> None:
    api.add_job("tests.jobs:noop", "interval", minutes=5, id="nightly", name="Nightly")
    at = utc(2030, 1, 2, 3, 4, 5)
    run("nightly", "succeeded", at, duration=0.0006)
    run("nightly", "failed", at + timedelta(minutes=5), duration=252, exception="boom")
    run("gone", "succeeded", at, trigger_source="run-now", requested_by="alice", job_name="")
    page = text(admin_client.get(RUNS))
    assert "2030-01-02 03:04:05" in page  # seconds
    assert "0.6 ms" in page
    assert "4 min 12 s" in page
    assert "250 ms late" in page
    assert "cw-bad" in page
    assert "failed" in page
    assert "web-1:4242" in page
    assert "run now (alice)" in page
    assert ">gone<" in page or "gone" in page
    for query, count in [
        ({"status__exact": "failed"}, 1),
        ({"job_id": "nightly"}, 2),
        ({"node_id": "n1"}, 3),
        ({"trigger_source__exact": "run-now"}, 1),
        ({"q": "gone"}, 1),
        ({"scheduled_run_time__year": "2030", "scheduled_run_time__month": "1"}, 3),
    ]:
        listed = text(admin_client.get(RUNS, query))
        assert listed.count('class="action-checkbox"') + listed.count("field-run") >= count, query


def test_history_filters_offer_existing_jobs_and_nodes(admin_client: Client) -> None:
    api.add_job("tests.jobs:noop", "interval", minutes=5, id="nightly", name="Nightly")
    node("n1", hostname="sched-a")
    run("nightly", "succeeded", utc(2030, 1, 1))
    page = text(admin_client.get(RUNS))
    assert "Nightly (nightly)" in page
    assert "sched-a:4242" in page


def test_run_detail_shows_the_traceback_as_written(admin_client: Client) -> None:
    api.add_job("tests.jobs:noop", "interval", minutes=5, id="nightly")
    traceback = (
        "Traceback (most recent call last):\n"
        '  File "tests/jobs.py", line 3, in fail\n'
        "    raise ValueError('<boom>')\n"
        "ValueError: <boom>\n"
    )
    failed = run(
        "nightly", "failed", utc(2030, 1, 1), exception="ValueError: <boom>", traceback=traceback
    )
    page = text(
        admin_client.get(reverse("admin:django_clockwork_jobexecution_change", args=[failed.pk]))
    )
    assert '<pre class="cw-traceback">' in page
    assert "    raise ValueError(&#x27;&lt;boom&gt;&#x27;)\n" in page  # indentation kept, escaped
    assert reverse("admin:django_clockwork_job_change", args=["nightly"]) in page
    assert f"{RUNS}?job_id=nightly" in page


def test_history_is_read_only_even_for_a_superuser(admin_client: Client) -> None:
    done = run("x", "succeeded", utc(2030, 1, 1))
    change = reverse("admin:django_clockwork_jobexecution_change", args=[done.pk])
    assert "Save" not in text(admin_client.get(change))
    assert admin_client.post(change, {"status": "failed"}).status_code == 403
    delete = reverse("admin:django_clockwork_jobexecution_delete", args=[done.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert JobExecution.objects.get(pk=done.pk).status == "succeeded"


def test_nodes_page(admin_client: Client) -> None:
    node("alive1", hostname="sched-a")
    node("stopped", hostname="sched-b", stopped_at=timezone.now())
    node("dead", hostname="sched-c", dead_at=timezone.now(), age=120)
    node("silent", hostname="sched-d", age=3600)
    now = timezone.now()
    run("j", "succeeded", now - timedelta(minutes=5), node_id="alive1")
    run("j", "running", now - timedelta(seconds=5), node_id="alive1")
    run("j", "succeeded", now - timedelta(hours=3), node_id="alive1", claimed_at=now)
    page = text(admin_client.get(NODES))
    for expected in ("sched-a", "4242", "0.1.0", "alive", "stopped", "dead", "dead (silent)"):
        assert expected in page
    assert f"{RUNS}?node_id=alive1&amp;status__exact=running" in page
    assert "1 h ago" in page


def test_history_never_counts_or_scans_the_whole_ledger(admin_client: Client) -> None:
    """The shape behind the 1,000,000-row benchmark (docs/benchmarks.md): a bounded count, no
    DISTINCT for the date hierarchy, search by exact job id."""
    for minute in range(3):
        run("nightly", "succeeded", utc(2030, 1, 1, 0, minute))
    for query in ({}, {"status__exact": "succeeded"}, {"q": "nightly"}):
        with CaptureQueriesContext(connection) as queries:
            text(admin_client.get(RUNS, query))
        ledger = [q["sql"] for q in queries if "django_clockwork_jobexecution" in q["sql"]]
        counts = [sql for sql in ledger if "COUNT(" in sql.upper()]
        assert counts, query
        assert all("LIMIT" in sql.upper() for sql in counts), counts
        assert not [sql for sql in ledger if "DISTINCT" in sql.upper()], query
        assert not [sql for sql in ledger if "UPPER(" in sql.upper()], query


def test_a_long_history_says_more_than_and_pages_within_the_cap(admin_client: Client) -> None:
    for minute in range(8):
        run("nightly", "succeeded", utc(2030, 1, 1, 0, minute))
    with (
        mock.patch("django_clockwork.admin.counting.CAP", 5),
        mock.patch.object(JobExecutionAdmin, "list_per_page", 2),
    ):
        page = text(admin_client.get(RUNS))
        assert "more than 5 job executions" in page
        assert admin_client.get(RUNS, {"p": "3"}).status_code == 200
        assert admin_client.get(RUNS, {"p": "4"}).status_code == 302  # past the cap: page 1


def test_date_hierarchy_from_the_first_to_the_last_run(admin_client: Client) -> None:
    run("a", "succeeded", utc(2029, 12, 30, 12))
    run("a", "succeeded", utc(2030, 1, 2, 12))
    run("a", "succeeded", utc(2030, 1, 4, 12))
    page = text(admin_client.get(RUNS))
    assert "scheduled_run_time__year=2029" in page
    assert "scheduled_run_time__year=2030" in page
    january = text(admin_client.get(RUNS, {"scheduled_run_time__year": "2030"}))
    assert "scheduled_run_time__month=1" in january
    days = text(
        admin_client.get(
            RUNS, {"scheduled_run_time__year": "2030", "scheduled_run_time__month": "1"}
        )
    )
    # every day from the first to the last run of the month, with runs or not
    assert [d for d in ("01", "02", "03", "04", "05") if f"2030-01-{d}" in days] == [
        "02",
        "03",
        "04",
    ]
    one_day = {
        "scheduled_run_time__year": "2030",
        "scheduled_run_time__month": "1",
        "scheduled_run_time__day": "2",
    }
    assert "2030-01-02 12:00:00" in text(admin_client.get(RUNS, one_day))
