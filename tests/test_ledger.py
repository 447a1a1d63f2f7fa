"""The run ledger: every named transition moves a run only from its source states."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import OperationalError
from django.db.models.query import QuerySet

from django_clockwork import ledger
from django_clockwork.ledger import TRANSITIONS, Ledger, NewRun
from django_clockwork.logtext import format_time
from django_clockwork.models import ExecutionStatus, JobExecution, TriggerSource

from .conftest import utc

pytestmark = pytest.mark.django_db

S = ExecutionStatus
T0 = utc(2030, 1, 1, 12, 0)
NODE = "a" * 32

Call = Callable[[Ledger, str, datetime], Any]

#: One call of each transition, with recognisable arguments.
CALLS: dict[str, Call] = {
    "started": lambda book, job, at: book.started(job, at, hostname="host-a", pid=4242),
    "succeeded": lambda book, job, at: book.succeeded(job, at, duration=1.5),
    "failed": lambda book, job, at: book.failed(
        job, at, exception="RuntimeError: boom", traceback="Traceback: line 1", duration=0.25
    ),
    "missed": lambda book, job, at: book.missed(job, [at], reason="started too late"),
    "skipped": lambda book, job, at: book.skipped(job, [at], reason="max_instances reached"),
    "enqueued": lambda book, job, at: book.enqueued(job, at, note="task 42"),
    "abandoned": lambda book, job, at: book.abandoned(job, [at], reason="node died"),
    "task succeeded": lambda book, job, at: book.task_finished(
        "db", result_of(job, at), succeeded=True, started_at=T0, finished_at=T0 + timedelta(2)
    ),
    "task failed": lambda book, job, at: book.task_finished(
        "db",
        result_of(job, at),
        succeeded=False,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=3),
        exception="Task failed: builtins.ValueError",
        traceback="Traceback: task",
    ),
}
#: Transitions that find their run by its task result, not by job and run time.
BY_RESULT = {"task succeeded", "task failed"}


def result_of(job_id: str, at: datetime) -> str:
    """The task result id every test run carries (see ``add_run``)."""
    return f"{job_id}@{at.isoformat()}"


#: Transitions of one run answer True/False; the others, how many runs moved.
ONE_RUN = {"started", "succeeded", "failed", "enqueued"}

#: The fields each transition writes, as (field, expected value); ``SET`` means "a time".
SET = object()
WRITES: dict[str, dict[str, Any]] = {
    "started": {"started_at": SET, "hostname": "host-a", "pid": 4242, "finished_at": None},
    "succeeded": {"finished_at": SET, "duration": 1.5, "exception": ""},
    "failed": {
        "finished_at": SET,
        "duration": 0.25,
        "exception": "RuntimeError: boom",
        "traceback": "Traceback: line 1",
    },
    "missed": {"finished_at": SET, "exception": "started too late", "started_at": None},
    "skipped": {"finished_at": SET, "exception": "max_instances reached", "started_at": None},
    "enqueued": {"started_at": SET, "exception": "task 42", "finished_at": None},
    "abandoned": {"finished_at": SET, "exception": "node died"},
    "task succeeded": {
        "started_at": T0,
        "finished_at": T0 + timedelta(2),
        "duration": 2 * 86400.0,
        "exception": "",
    },
    "task failed": {
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=3),
        "duration": 3.0,
        "exception": "Task failed: builtins.ValueError",
        "traceback": "Traceback: task",
    },
}

ALLOWED = [(name, source) for name, t in TRANSITIONS.items() for source in sorted(t.sources)]
#: Every (transition, state) pair the transition must refuse; None: no row in the ledger.
REFUSED = [
    pytest.param(name, state)
    for name, t in TRANSITIONS.items()
    for state in [*S.values, None]
    if state not in t.sources and not (state is None and name in BY_RESULT)
]


def add_run(status: str, job_id: str = "job", at: datetime = T0, **fields: Any) -> JobExecution:
    return JobExecution.objects.create(
        job_id=job_id,
        job_name=job_id,
        func="tests.jobs:noop",
        scheduled_run_time=at,
        status=status,
        node_id=fields.pop("node_id", NODE),
        task_backend=fields.pop("task_backend", "db"),
        task_result_id=fields.pop("task_result_id", result_of(job_id, at)),
        **fields,
    )


def row_of(run: JobExecution) -> dict[str, Any]:
    return dict(JobExecution.objects.values().get(pk=run.pk))


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "django_clockwork.ledger"
        and record.levelno == logging.WARNING
        and record.getMessage().startswith("Ledger refused")
    ]


@pytest.fixture
def book() -> Ledger:
    return Ledger("default", NODE)


@pytest.fixture(autouse=True)
def _capture_ledger_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="django_clockwork.ledger")


def test_every_transition_is_tested() -> None:
    assert set(CALLS) == set(WRITES) == set(TRANSITIONS)
    assert {t.target for t in TRANSITIONS.values()} <= set(S.values)


@pytest.mark.parametrize(("name", "source"), ALLOWED)
def test_transition_moves_from_its_sources(
    book: Ledger, caplog: pytest.LogCaptureFixture, name: str, source: str
) -> None:
    run = add_run(source)
    other_job = add_run(source, job_id="other")
    before = ledger.now()
    result = CALLS[name](book, "job", T0)
    if name in ONE_RUN:
        assert result is True
    else:
        assert (type(result), result) == (int, 1)
    row = row_of(run)
    assert row["status"] == TRANSITIONS[name].target
    for field, expected in WRITES[name].items():
        if expected is SET:
            assert before <= row[field] <= ledger.now(), field
        else:
            assert row[field] == expected, field
    assert row_of(other_job)["status"] == source  # the same run time of another job
    assert refusals(caplog) == []


@pytest.mark.parametrize(("name", "state"), REFUSED)
def test_transition_is_refused_from_other_states(
    book: Ledger, caplog: pytest.LogCaptureFixture, name: str, state: str | None
) -> None:
    run = add_run(state) if state is not None else None
    before = row_of(run) if run is not None else None
    result = CALLS[name](book, "job", T0)
    if name in ONE_RUN:
        assert result is False
    else:
        assert (type(result), result) == (int, 0)
    if run is None:
        assert not JobExecution.objects.exists()
    else:
        assert row_of(run) == before
    (message,) = refusals(caplog)
    assert f"Ledger refused {name!r} for job 'job' at {format_time(T0)}" in message
    assert f"the run is {state or 'not in the ledger'};" in message


def test_finished_run_never_goes_back_to_running(
    book: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    run = add_run(S.SCHEDULED)
    assert book.started("job", T0, hostname="host-a", pid=1)
    assert book.succeeded("job", T0, duration=2.0)
    done = row_of(run)
    assert book.started("job", T0, hostname="host-b", pid=2) is False
    assert book.failed("job", T0, exception="late failure") is False
    assert book.abandoned("job", [T0], reason="reaper") == 0
    assert row_of(run) == done
    assert done["status"] == S.SUCCEEDED
    assert len(refusals(caplog)) == 3
    assert all("the run is succeeded" in message for message in refusals(caplog))


def test_many_run_times_move_only_those_in_a_source_state(
    book: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    waiting = add_run(S.SCHEDULED, at=T0)
    running = add_run(S.RUNNING, at=T0 + timedelta(minutes=1))
    absent = T0 + timedelta(minutes=2)
    moved = book.missed("job", [T0, T0 + timedelta(minutes=1), absent], reason="late")
    assert moved == 1
    assert row_of(waiting)["status"] == S.MISSED
    assert row_of(running)["status"] == S.RUNNING
    messages = refusals(caplog)
    assert len(messages) == 2
    assert any("the run is running" in message for message in messages)
    assert any(f"at {format_time(absent)}: the run is not in the ledger" in m for m in messages)


def test_transitions_accept_run_times_in_any_zone(book: Ledger) -> None:
    run = add_run(S.SCHEDULED)
    assert book.started("job", T0.astimezone(ZoneInfo("Asia/Tokyo")), hostname="h", pid=1)
    assert row_of(run)["status"] == S.RUNNING


def test_no_run_times_moves_nothing(book: Ledger, caplog: pytest.LogCaptureFixture) -> None:
    add_run(S.SCHEDULED)
    assert book.missed("job", [], reason="late") == 0
    assert JobExecution.objects.get().status == S.SCHEDULED
    assert refusals(caplog) == []


# -- inserts --------------------------------------------------------------------------------


def new_run(at: datetime, job_id: str = "job", **fields: Any) -> NewRun:
    return NewRun(
        job_id=job_id,
        scheduled_run_time=at,
        job_name=f"{job_id} name",
        func="tests.jobs:noop",
        **fields,
    )


def test_claimed_inserts_runs_and_skipped_runs(
    book: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    known = add_run(S.RUNNING, at=T0, node_id="b" * 32)
    known_before = row_of(known)
    later = T0 + timedelta(minutes=1)
    skipped_at = T0 + timedelta(minutes=2)
    backlog_at = T0 - timedelta(days=3)
    before = ledger.now()
    to_run, skipped, missed = book.claimed(
        [
            new_run(T0),
            new_run(later.astimezone(ZoneInfo("America/New_York"))),
            new_run(skipped_at, skipped_reason="max_instances (1) reached fleet-wide"),
            new_run(backlog_at, missed_reason="Missed 3 run time(s)"),
        ]
    )
    assert to_run == {("job", later)}
    assert skipped == {("job", skipped_at)}
    assert missed == {("job", backlog_at)}
    backlog = JobExecution.objects.get(scheduled_run_time=backlog_at)
    assert (backlog.status, backlog.exception) == (S.MISSED, "Missed 3 run time(s)")
    assert backlog.finished_at is not None
    assert row_of(known) == known_before  # already in the ledger: untouched, not returned
    fresh = JobExecution.objects.get(scheduled_run_time=later)
    assert (fresh.status, fresh.node_id, fresh.trigger_source) == (
        S.SCHEDULED,
        NODE,
        TriggerSource.SCHEDULE,
    )
    assert (fresh.job_name, fresh.func) == ("job name", "tests.jobs:noop")
    assert (fresh.started_at, fresh.finished_at, fresh.exception) == (None, None, "")
    refused = JobExecution.objects.get(scheduled_run_time=skipped_at)
    assert refused.status == S.SKIPPED
    assert refused.exception == "max_instances (1) reached fleet-wide"
    assert refused.finished_at is not None
    assert refused.finished_at >= before
    assert JobExecution.objects.count() == 4
    assert any("already in the ledger" in record.getMessage() for record in caplog.records)


def test_a_claim_looked_up_first_inserts_every_value_unchanged_in_bounded_statements(
    book: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a claim looks its runs up first (MySQL/MariaDB), it inserts them with plain
    ``INSERT ... VALUES`` statements, no model instance per run, as many rows per statement
    as the database's limit on host parameters allows: quotes, backslashes and the rest read
    back unchanged, and runs already in the ledger are left alone."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from .test_batchsql import TEXTS

    monkeypatch.setattr(ledger, "can_insert_runs", lambda connection: False)
    # 2 rows per statement. On the class, and without a value cached on the instance: Django
    # 6 computes it (a property on SQLite, a cached_property on PostgreSQL).
    monkeypatch.delitem(vars(connection.features), "max_query_params", raising=False)
    monkeypatch.setattr(type(connection.features), "max_query_params", 50)
    texts = [text for text in TEXTS if text and len(text) < ledger.EXCEPTION_MAX]
    add_run(S.RUNNING, at=T0, job_id="j0")  # already there: not inserted again
    runs = [
        new_run(T0, f"j{n}", skipped_reason=text, requested_by=text[:150])
        for n, text in enumerate(texts)
    ]
    with CaptureQueriesContext(connection) as sent:
        inserted, skipped, missed = book.claimed(runs)
    assert (inserted, missed) == (set(), set())
    assert skipped == {(f"j{n}", T0) for n in range(1, len(texts))}
    # (PostgreSQL sends a batch of statements in one round trip: count the statements.)
    inserts = sum(q["sql"].count("INSERT INTO") for q in sent.captured_queries)
    assert inserts == (len(texts) - 1 + 1) // 2
    for n, text in enumerate(texts[1:], start=1):
        row = JobExecution.objects.get(job_id=f"j{n}")
        assert (row.status, row.exception, row.requested_by) == (S.SKIPPED, text, text[:150])
        assert (row.job_name, row.node_id) == (f"j{n} name", NODE)
    assert JobExecution.objects.get(job_id="j0").status == S.RUNNING


def test_claimed_nothing(book: Ledger) -> None:
    assert book.claimed([]) == (set(), set(), set())
    assert not JobExecution.objects.exists()


def test_claimed_twice_inserts_once(book: Ledger) -> None:
    assert book.claimed([new_run(T0)]) == ({("job", T0)}, set(), set())
    assert book.claimed([new_run(T0)]) == (set(), set(), set())
    assert JobExecution.objects.count() == 1


@pytest.mark.parametrize("reason", ["", "max_instances (1) reached fleet-wide"])
def test_claimed_rows_are_the_same_with_one_statement_or_the_orm(
    book: Ledger, monkeypatch: pytest.MonkeyPatch, reason: str
) -> None:
    """Where the database can, a claim inserts with one ``INSERT ... ON CONFLICT DO NOTHING
    RETURNING``; elsewhere a plain ``INSERT`` after a lookup. Both write the same row."""
    later = T0 + timedelta(minutes=1)
    book.claimed([new_run(T0, skipped_reason=reason, requested_by="ann")])
    monkeypatch.setattr(ledger, "can_insert_runs", lambda connection: False)
    book.claimed([new_run(later, skipped_reason=reason, requested_by="ann")])
    first, second = (
        {k: v for k, v in row_of(run).items() if k not in {"id", "scheduled_run_time"}}
        for run in JobExecution.objects.order_by("scheduled_run_time")
    )
    for row in (first, second):
        for moment in ("claimed_at", "finished_at"):
            row[moment] = row[moment] is not None  # set (or not), at different instants
    assert first == second
    assert book.claimed([new_run(T0), new_run(later)]) == (set(), set(), set())


def test_a_mixed_claim_is_the_same_with_one_statement_or_the_orm(
    book: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One statement's rows differ in some columns (sent per row) and agree in others (sent
    once): a claim of runs, skipped runs and a missed backlog of several jobs, and a claim of
    one run, are written as the lookup-then-insert path writes them."""

    def claim_all(offset: timedelta) -> None:
        at = T0 + offset + timedelta(microseconds=123457)  # read back to the microsecond
        runs = [
            new_run(at, "a"),
            new_run(at + timedelta(seconds=1), "a"),
            new_run(at, "b", skipped_reason="max_instances (1) reached"),
            new_run(at, "c", missed_reason="3 run times missed"),
            new_run(at, "d", requested_by="ann", trigger_source=TriggerSource.RUN_NOW),
        ]
        assert book.claimed(runs) == (
            {("a", at), ("a", at + timedelta(seconds=1)), ("d", at)},
            {("b", at)},
            {("c", at)},
        )
        assert book.claimed([new_run(at, "e")]) == ({("e", at)}, set(), set())

    claim_all(timedelta(0))
    monkeypatch.setattr(ledger, "can_insert_runs", lambda connection: False)
    claim_all(timedelta(days=1))

    def rows(day: int) -> list[dict[str, Any]]:
        found = []
        for run in JobExecution.objects.filter(
            scheduled_run_time__gte=T0 + timedelta(days=day),
            scheduled_run_time__lt=T0 + timedelta(days=day + 1),
        ).order_by("job_id", "scheduled_run_time"):
            row = {k: v for k, v in row_of(run).items() if k != "id"}
            row["scheduled_run_time"] -= timedelta(days=day)
            for moment in ("claimed_at", "finished_at"):
                row[moment] = row[moment] is not None  # set (or not), at different instants
            found.append(row)
        return found

    assert len(rows(0)) == 6
    assert rows(0) == rows(1)


def test_a_claim_records_the_claiming_process(book: Ledger) -> None:
    """A run names its host and pid from the claim on: if the process is killed before its
    group-committed ``running`` write, the reaper's ``abandoned`` row still says whose it was."""
    book.claimed([new_run(T0)])
    Ledger("default").manual_run(new_run(T0 + timedelta(minutes=1), trigger_source="run-now"))
    claimed, request = JobExecution.objects.order_by("scheduled_run_time")
    assert (claimed.hostname, claimed.pid) == (ledger.HOSTNAME, os.getpid())
    assert (request.node_id, request.hostname, request.pid) == ("", "", None)  # no node: no one
    assert book.take_request(request.id)
    request.refresh_from_db()
    assert (request.node_id, request.hostname, request.pid) == (NODE, ledger.HOSTNAME, os.getpid())
    assert book.abandon_node(NODE, "node died") == 2
    assert set(JobExecution.objects.values_list("status", "pid")) == {(S.ABANDONED, os.getpid())}


@pytest.mark.parametrize("source", [TriggerSource.RUN_NOW, TriggerSource.API])
def test_manual_run_sets_trigger_source(book: Ledger, source: str) -> None:
    assert book.manual_run(new_run(T0, trigger_source=source)) is True
    run = JobExecution.objects.get()
    assert (run.trigger_source, run.status, run.node_id) == (source, S.SCHEDULED, NODE)
    assert book.manual_run(new_run(T0, trigger_source=source)) is False
    assert JobExecution.objects.count() == 1


def test_ensure_scheduled_adds_only_missing_runs(book: Ledger) -> None:
    running = add_run(S.RUNNING)
    book.ensure_scheduled([new_run(T0), new_run(T0 + timedelta(minutes=1))])
    assert row_of(running)["status"] == S.RUNNING
    assert sorted(JobExecution.objects.values_list("scheduled_run_time", "status")) == [
        (T0, S.RUNNING),
        (T0 + timedelta(minutes=1), S.SCHEDULED),
    ]


# -- abandon_node ---------------------------------------------------------------------------


def test_abandon_node_touches_only_unfinished_runs_of_that_node(book: Ledger) -> None:
    dead, alive = "d" * 32, "e" * 32
    minute = timedelta(minutes=1)
    mine = {status: add_run(status, at=T0 + i * minute, node_id=dead) for i, status in enumerate(S)}
    theirs = [
        add_run(status, job_id="other", at=T0 + i * minute, node_id=alive)
        for i, status in enumerate(sorted(ledger.UNFINISHED))
    ]
    finished_before = {s: row_of(run) for s, run in mine.items() if s not in ledger.UNFINISHED}
    theirs_before = [row_of(run) for run in theirs]
    assert book.abandon_node(dead, "its node stopped heartbeating") == 2
    for status in ledger.UNFINISHED:
        row = row_of(mine[status])
        assert row["status"] == S.ABANDONED
        assert row["exception"] == "its node stopped heartbeating"
        assert row["finished_at"] is not None
    assert {s: row_of(mine[s]) for s in finished_before} == finished_before
    assert [row_of(run) for run in theirs] == theirs_before


# -- durable writes -------------------------------------------------------------------------


def flaky_update(monkeypatch: pytest.MonkeyPatch, failures: int) -> list[int]:
    """Make the first ``failures`` UPDATEs fail as an unreachable database does."""
    attempts: list[int] = []
    real_update = QuerySet.update

    def update(self: QuerySet[Any], **kwargs: Any) -> int:
        attempts.append(1)
        if len(attempts) <= failures:
            raise OperationalError("server closed the connection unexpectedly")
        return real_update(self, **kwargs)

    monkeypatch.setattr(QuerySet, "update", update)
    monkeypatch.setattr(ledger, "DURABLE_BACKOFF", (0.01, 0.02, 0.03))
    return attempts


def test_durable_write_retries_through_an_operational_error(
    book: Ledger, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    run = add_run(S.SCHEDULED)
    attempts = flaky_update(monkeypatch, failures=2)
    assert book.started("job", T0, hostname="host-a", pid=1) is True
    assert len(attempts) == 3
    assert row_of(run)["status"] == S.RUNNING
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert retries == [
        "Could not record 'started' for job 'job'; retrying in 0.01s",
        "Could not record 'started' for job 'job'; retrying in 0.02s",
    ]


def test_durable_write_gives_up_without_raising(
    book: Ledger, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    run = add_run(S.RUNNING)
    attempts = flaky_update(monkeypatch, failures=100)
    assert book.succeeded("job", T0, duration=1.0) is False
    assert len(attempts) == len(ledger.DURABLE_BACKOFF) + 1
    assert row_of(run)["status"] == S.RUNNING
    assert any(
        r.levelno == logging.ERROR
        and r.getMessage() == "Could not record 'succeeded' for job 'job' after 4 attempts"
        for r in caplog.records
    )


def test_non_durable_write_raises_at_once(book: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    run = add_run(S.RUNNING)
    attempts = flaky_update(monkeypatch, failures=1)
    with pytest.raises(OperationalError, match="closed the connection"):
        book.abandoned("job", [T0], reason="stopping", durable=False)
    assert len(attempts) == 1
    assert row_of(run)["status"] == S.RUNNING


@pytest.mark.parametrize("status", S.values)
def test_warned_appends_a_line_to_a_running_run_only(book: Ledger, status: str) -> None:
    run = add_run(status)
    first = book.warned("job", T0, "2030-01-01 12:10:00 UTC Long running:\nstill running")
    second = book.warned("job", T0, "2030-01-01 12:11:00 UTC Held a worker thread")
    run.refresh_from_db()
    if status == S.RUNNING:
        assert (first, second) == (True, True)
        assert run.warning.splitlines() == [
            "2030-01-01 12:10:00 UTC Long running: still running",
            "2030-01-01 12:11:00 UTC Held a worker thread",
        ]
    else:
        assert (first, second) == (False, False)
        assert run.warning == ""
    assert run.status == status


@pytest.mark.parametrize("succeeded", [True, False])
def test_a_task_result_no_run_enqueued_changes_nothing_quietly(
    book: Ledger, caplog: pytest.LogCaptureFixture, succeeded: bool
) -> None:
    run = add_run(S.ENQUEUED)
    before = row_of(run)
    moved = book.task_finished(
        "db", "not-ours", succeeded=succeeded, started_at=None, finished_at=None
    )
    assert moved == 0
    assert row_of(run) == before
    assert refusals(caplog) == []
