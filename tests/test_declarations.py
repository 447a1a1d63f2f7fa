"""Jobs declared in code: checked at import, synced with the table, switched off per environment."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from django_clockwork import DjangoJobStore, api, declarations, job_function, scheduled_job
from django_clockwork.declarations import declare_job, sync
from django_clockwork.exceptions import InvalidJobError
from django_clockwork.models import ExecutionStatus, Job, JobExecution

from . import jobs as test_jobs
from .conftest import run_scheduler_until_succeeded
from .process_helpers import Schedulers, wait_until

pytestmark = pytest.mark.django_db


def writes(queries: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"]
        for q in queries.captured_queries
        if re.match(r"\s*(INSERT|UPDATE|DELETE)", q["sql"], re.IGNORECASE)
    ]


def declare_noop(**options: object) -> None:
    declare_job(test_jobs.noop, **{"id": "nightly", "trigger": "cron", "hour": 3, **options})  # type: ignore[arg-type]


# -- declaring --------------------------------------------------------------------------------


def test_decorators_register_and_return_the_function() -> None:
    def probe() -> None: ...

    assert job_function(test_jobs.echo) is test_jobs.echo
    assert "tests.jobs:echo" in declarations.registered_functions()
    assert scheduled_job("interval", minutes=5, id="noop")(test_jobs.noop) is test_jobs.noop
    (declared,) = [d for d in declarations.declarations() if d.id == "noop"]
    assert (declared.func, declared.trigger, dict(declared.trigger_args)) == (
        "tests.jobs:noop",
        "interval",
        {"minutes": 5},
    )
    assert declared.id == "noop"
    assert "tests.jobs:noop" in declarations.registered_functions()
    del probe


def test_the_default_id_is_the_function_reference() -> None:
    declare_job(test_jobs.noop, "interval", minutes=5)
    assert [d.id for d in declarations.declarations()] == ["tests.jobs:noop"]


class Holder:
    def method(self) -> None: ...


@pytest.mark.parametrize(
    ("func", "error"),
    [
        (lambda: None, "a lambda has no name"),
        (Holder.method, "a method cannot be declared with a decorator"),
    ],
)
def test_functions_a_scheduler_cannot_import_are_refused(func: object, error: str) -> None:
    with pytest.raises(InvalidJobError, match=error):
        declare_job(func, "interval", minutes=5)  # type: ignore[arg-type]


def test_a_nested_function_is_refused() -> None:
    with pytest.raises(InvalidJobError, match="defined inside another one"):

        @scheduled_job("interval", minutes=5)
        def nested() -> None: ...


def test_two_declarations_with_one_id_are_refused() -> None:
    declare_job(test_jobs.noop, "interval", minutes=5, id="report")
    declare_job(test_jobs.noop, "interval", minutes=10, id="report")  # the same function: fine
    with pytest.raises(InvalidJobError, match="Two declarations use the job id 'report'"):
        declare_job(test_jobs.echo, "interval", minutes=5, id="report")


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"trigger": "cron", "month": 2, "day": 31}, "its trigger never fires"),
        ({"trigger": "cron", "minute": "99"}, "higher than the maximum value"),
        ({"crontab": "0 9 13 * 5"}, "EITHER"),
        ({"trigger": "interval", "minutes": 5, "args": [object()]}, "cannot be stored as JSON"),
        ({"trigger": "interval", "minutes": 5, "kwargs": {"when": timezone.now()}}, "kwargs"),
    ],
)
def test_bad_declarations_are_refused_at_import(arguments: dict[str, object], error: str) -> None:
    with pytest.raises(InvalidJobError, match=error):
        declare_job(test_jobs.echo, id="bad", **arguments)  # type: ignore[arg-type]
    assert "bad" not in {d.id for d in declarations.declarations()}


# -- sync ---------------------------------------------------------------------------------------


def test_sync_creates_then_writes_nothing_while_nothing_changed() -> None:
    declare_noop()
    report = sync()
    assert report.created == ["nightly"]
    row = Job.objects.get(id="nightly")
    assert (row.source, row.func, row.trigger["hour"]) == ("code", "tests.jobs:noop", "3")
    assert row.declaration
    with CaptureQueriesContext(connection) as queries:
        again = sync()
    assert again.unchanged == ["nightly"]
    assert writes(queries) == []
    assert Job.objects.get(id="nightly").version == row.version


def test_an_operators_pause_survives_syncs_and_a_changed_declaration() -> None:
    declare_noop()
    sync()
    api.pause_job("nightly")
    assert sync().unchanged == ["nightly"]
    declarations.forget("nightly")
    declare_noop(args=[], kwargs={}, max_instances=3)
    assert sync().updated == ["nightly"]
    row = Job.objects.get(id="nightly")
    assert (row.max_instances, row.next_run_time) == (3, None)


def test_a_changed_schedule_gets_a_new_next_run_time_an_unchanged_one_keeps_it() -> None:
    declare_noop()
    sync()
    before = Job.objects.get(id="nightly").next_run_time
    declarations.forget("nightly")
    declare_noop(misfire_grace_time=300)
    sync()
    assert Job.objects.get(id="nightly").next_run_time == before
    declarations.forget("nightly")
    declare_noop(hour=4)
    assert sync().updated == ["nightly"]
    assert Job.objects.get(id="nightly").next_run_time.hour == 4


def test_a_removed_declaration_is_paused_and_marked_then_pruned_history_kept() -> None:
    declare_noop()
    sync()
    JobExecution.objects.create(job_id="nightly", scheduled_run_time=timezone.now())
    declarations.forget("nightly")
    report = sync()
    assert report.undeclared == ["nightly"]
    row = Job.objects.get(id="nightly")
    assert (row.next_run_time, row.undeclared_at is not None) == (None, True)
    assert api.get_job("nightly").undeclared
    out = StringIO()
    call_command("clockwork", "list", stdout=out)
    assert "undeclared" in out.getvalue()
    assert sync().undeclared == []  # marked once
    # Declared again: it resumes.
    declare_noop()
    assert sync().updated == ["nightly"]
    row = Job.objects.get(id="nightly")
    assert row.next_run_time is not None
    assert row.undeclared_at is None
    declarations.forget("nightly")
    sync()
    assert sync(dry_run=True, prune=True).pruned == ["nightly"]
    assert Job.objects.filter(id="nightly").exists()
    assert sync(prune=True).pruned == ["nightly"]
    assert not Job.objects.filter(id="nightly").exists()
    assert JobExecution.objects.filter(job_id="nightly").exists()


def test_jobs_added_through_api_are_never_touched() -> None:
    api.add_job("tests.jobs:echo", "interval", minutes=7, id="nightly")
    before = Job.objects.get(id="nightly")
    declare_noop()
    report = sync(prune=True)
    assert report.conflicts == ["nightly"]
    after = Job.objects.get(id="nightly")
    assert (after.func, after.version, after.source) == ("tests.jobs:echo", before.version, "api")


def test_a_switched_off_declaration_is_treated_as_undeclared(settings: object) -> None:
    declare_noop(enabled=lambda: getattr(settings, "SEND_NIGHTLY", False))
    assert sync().created == []
    settings.SEND_NIGHTLY = True  # type: ignore[attr-defined]
    assert sync().created == ["nightly"]
    settings.SEND_NIGHTLY = False  # type: ignore[attr-defined]
    assert sync().undeclared == ["nightly"]


def test_dry_run_writes_nothing() -> None:
    declare_noop()
    with CaptureQueriesContext(connection) as queries:
        assert sync(dry_run=True).created == ["nightly"]
    assert writes(queries) == []
    assert not Job.objects.exists()


def test_declared_jobs_off_no_sync_and_code_rows_are_not_run(store: DjangoJobStore) -> None:
    declare_noop()
    sync()
    api.add_job("tests.jobs:noop", "interval", minutes=5, id="from-api")
    due = timezone.now() - timedelta(seconds=1)
    Job.objects.update(next_run_time=due)
    with override_settings(CLOCKWORK={"DECLARED_JOBS": False}):
        assert sync().disabled
        jobs = store.get_due_jobs(timezone.now())
        assert [job.id for job in jobs] == ["from-api"]
        assert store.get_next_run_time() > timezone.now()  # the due code row wakes nobody
    assert [job.id for job in store.get_due_jobs(timezone.now())] == ["nightly"]


def test_sync_command() -> None:
    declare_noop()
    out = StringIO()
    call_command("clockwork", "sync", "--dry-run", stdout=out)
    assert out.getvalue().splitlines() == ["Dry run, nothing written:", "1 created: nightly"]
    out = StringIO()
    call_command("clockwork", "sync", stdout=out)
    assert out.getvalue().splitlines() == ["1 created: nightly"]


@pytest.mark.django_db(transaction=True)
def test_a_starting_scheduler_syncs_and_runs_a_declared_job() -> None:
    declare_job(test_jobs.noop, "interval", seconds=1, id="declared")
    assert run_scheduler_until_succeeded("declared", runs=1) == 1
    assert Job.objects.get(id="declared").source == "code"


# -- many schedulers starting at once (real processes) -----------------------------------------


@pytest.fixture
def declaring(transactional_db: None, tmp_path: Path) -> Iterator[Schedulers]:
    started = Schedulers(tmp_path, connection.settings_dict["NAME"])
    started.env["CLOCKWORK_TEST_DECLARING"] = "1"
    try:
        yield started
    finally:
        started.close()


DECLARED = {"declared-every-second", "declared-weekdays", "declared-nightly"}


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_schedulers_starting_together_create_once_and_keep_a_pause(declaring: Schedulers) -> None:
    count = 2 if connection.vendor == "sqlite" else 3
    first = declaring.start_many(count)
    wait_until(lambda: Job.objects.filter(id__in=DECLARED).count() == 3, 20, "the declared jobs")
    logs = declaring.logs()
    for job_id in DECLARED:
        assert logs.count(f"Declared job {job_id!r} created") == 1, logs
    assert "updated" not in logs
    assert set(Job.objects.filter(id__in=DECLARED).values_list("version", flat=True)) <= {1, 2}
    wait_until(
        lambda: JobExecution.objects.filter(
            job_id="declared-every-second", status=ExecutionStatus.SUCCEEDED
        ).exists(),
        20,
        "a run of the declared job",
    )
    api.pause_job("declared-nightly")
    paused = Job.objects.get(id="declared-nightly")
    for process in first:
        process.signal(signal.SIGTERM)
    for process in first:
        assert process.wait(40) == 0
    versions = dict(Job.objects.filter(id__in=DECLARED).values_list("id", "version"))
    again = declaring.start_many(count)
    wait_until(lambda: sum("Declared jobs:" in p.log() for p in again) == count, 20, "every sync")
    after = Job.objects.get(id="declared-nightly")
    assert (after.next_run_time, after.version) == (None, paused.version)
    unchanged = dict(Job.objects.filter(id__in=DECLARED).values_list("id", "version"))
    # Only the every-second job's row moves (its claims); the others were not written.
    assert {k: v for k, v in unchanged.items() if k != "declared-every-second"} == {
        k: v for k, v in versions.items() if k != "declared-every-second"
    }
    for process in again:
        process.signal(signal.SIGTERM)
    for process in again:
        assert process.wait(40) == 0
    assert os.environ.get("CLOCKWORK_TEST_DECLARING") is None
