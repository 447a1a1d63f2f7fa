"""Jobs whose target is a Task: checked when added, enqueued when they fire, in the ledger."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from apscheduler.triggers.date import DateTrigger
from django.utils import timezone

from django_clockwork import ClockworkExecutor, DjangoJobStore, api, taskframework, tasktargets
from django_clockwork.declarations import scheduled_job
from django_clockwork.exceptions import FunctionNotAllowedError, InvalidJobError
from django_clockwork.models import ExecutionStatus, Job, JobExecution

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(taskframework.FRAMEWORK is None, reason="no tasks framework"),
]
S = ExecutionStatus


def backend(alias: str) -> Any:
    return taskframework.require().task_backends[alias]


@pytest.fixture
def enqueued() -> Iterator[list[Any]]:
    """The results of every task enqueued while the test runs (from any thread)."""
    results: list[Any] = []

    def record(sender: Any, task_result: Any, **kwargs: Any) -> None:
        results.append(task_result)

    signal = taskframework.signal("task_enqueued")
    signal.connect(record, weak=False)
    yield results
    signal.disconnect(record)


def fire(store: DjangoJobStore, executor: ClockworkExecutor, job_id: str) -> JobExecution:
    """Make the job due, claim it and submit it as the scheduler would; its ledger row."""
    due = timezone.now() - timedelta(milliseconds=10)
    Job.objects.filter(id=job_id).update(next_run_time=due)
    (job,) = store.get_due_jobs(timezone.now())
    executor.submit_job(job, job._get_run_times(timezone.now()))
    assert executor.wait(5)
    return JobExecution.objects.get(job_id=job_id)


def test_a_task_job_stores_the_task_path_and_our_enqueuer() -> None:
    job = api.add_job(
        task="tests.tasks.send_digest",
        trigger="interval",
        minutes=5,
        id="digest",
        args=[7],
        kwargs={"subject": "weekly"},
        task_options={"backend": "dummy", "queue_name": "emails", "priority": 10},
    )
    assert (job.task, job.target, job.func) == (
        "tests.tasks.send_digest",
        "tests.tasks.send_digest",
        tasktargets.ENQUEUER,
    )
    assert job.task_options == {"backend": "dummy", "queue_name": "emails", "priority": 10}
    assert job.name == "tests.tasks.send_digest"
    row = Job.objects.get(id="digest")
    assert (row.task, row.func) == ("tests.tasks.send_digest", tasktargets.ENQUEUER)


def test_a_task_object_may_be_given(store: DjangoJobStore) -> None:
    from tests.tasks import add

    job = api.add_job(task=add, trigger="interval", minutes=5, args=[1, 2])
    assert job.task == "tests.tasks.add"


def test_the_job_fires_by_enqueueing_on_the_backend(
    store: DjangoJobStore, executor: ClockworkExecutor, enqueued: list[Any]
) -> None:
    api.add_job(
        task="tests.tasks.send_digest",
        trigger="interval",
        minutes=5,
        id="digest",
        args=[7],
        kwargs={"subject": "weekly"},
        task_options={"backend": "dummy", "priority": 10},
    )
    run = fire(store, executor, "digest")
    (result,) = enqueued
    assert (run.status, run.task_backend, run.task_result_id) == (S.ENQUEUED, "dummy", result.id)
    assert run.func == "tests.tasks.send_digest"
    assert (result.args, result.kwargs) == ([7], {"subject": "weekly"})
    assert (result.task.priority, result.task.queue_name) == (10, "emails")
    assert run.started_at is not None
    assert run.exception == ""


def test_the_immediate_backend_runs_it_at_once(
    store: DjangoJobStore, executor: ClockworkExecutor, enqueued: list[Any]
) -> None:
    api.add_job(task="tests.tasks.add", trigger="interval", minutes=5, id="add", args=[2, 3])
    run = fire(store, executor, "add")
    (result,) = enqueued
    assert (run.status, run.task_backend, run.task_result_id) == (
        S.SUCCEEDED,  # the task ran at once, and its outcome completed the run
        "default",
        result.id,
    )
    assert result.return_value == 5
    assert run.duration is not None
    assert run.started_at is not None


def test_a_task_that_fails_at_once_makes_a_failed_run(
    store: DjangoJobStore, executor: ClockworkExecutor
) -> None:
    api.add_job(task="tests.tasks.fail", trigger="interval", minutes=5, id="fail")
    run = fire(store, executor, "fail")
    assert run.status == S.FAILED
    assert run.task_result_id
    assert run.exception == "Task failed: builtins.RuntimeError"
    assert "this task fails on purpose" in run.traceback


def test_run_after_defers_the_task_from_the_run_time(
    store: DjangoJobStore, executor: ClockworkExecutor, enqueued: list[Any]
) -> None:
    api.add_job(
        task="tests.tasks.add",
        trigger="interval",
        minutes=5,
        id="later",
        args=[1, 1],
        task_options={"backend": "dummy", "run_after": 60},
    )
    run = fire(store, executor, "later")
    (result,) = enqueued
    assert result.task.run_after == run.scheduled_run_time + timedelta(seconds=60)


def test_an_enqueue_error_is_a_failed_run_with_its_traceback(
    store: DjangoJobStore,
    executor: ClockworkExecutor,
    monkeypatch: pytest.MonkeyPatch,
    enqueued: list[Any],
) -> None:
    api.add_job(
        task="tests.tasks.add",
        trigger="interval",
        minutes=5,
        id="broken",
        args=[1, 1],
        task_options={"backend": "dummy"},
    )

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("the queue is down")

    monkeypatch.setattr(type(backend("dummy")), "enqueue", refuse)
    run = fire(store, executor, "broken")
    assert run.status == S.FAILED
    assert "Could not enqueue task tests.tasks.add: ConnectionError: the queue is down" in (
        run.exception
    )
    assert "Traceback" in run.traceback
    assert "the queue is down" in run.traceback
    assert Job.objects.get(id="broken").next_run_time is not None  # the schedule goes on


def test_a_late_run_is_missed_not_enqueued(
    store: DjangoJobStore, executor: ClockworkExecutor, enqueued: list[Any]
) -> None:
    api.add_job(
        task="tests.tasks.add",
        trigger=DateTrigger(timezone.now() + timedelta(hours=1)),
        id="late",
        args=[1, 1],
        misfire_grace_time=1,
        task_options={"backend": "dummy"},
    )
    Job.objects.filter(id="late").update(next_run_time=timezone.now() - timedelta(seconds=0.5))
    (job,) = store.get_due_jobs(timezone.now())
    run_times = job._get_run_times(timezone.now())
    time.sleep(0.6)
    executor.submit_job(job, run_times)
    assert executor.wait(5)
    assert JobExecution.objects.get(job_id="late").status == S.MISSED
    assert enqueued == []


@pytest.mark.parametrize(
    ("task", "options", "args", "message"),
    [
        ("tests.tasks.add", {"backend": "nowhere"}, [1, 2], "no task backend 'nowhere'"),
        ("tests.tasks.add", {"backend": "dummy", "queue_name": "sms"}, [1, 2], "queue 'sms'"),
        ("tests.tasks.add", {"backend": "plain", "priority": 10}, [1, 2], "does not support"),
        ("tests.tasks.add", {"priority": 1000}, [1, 2], "priority must be a whole number"),
        ("tests.tasks.add", {"backend": "plain", "run_after": 5}, [1, 2], "cannot defer"),
        ("tests.tasks.add", {"run_after": -1, "backend": "dummy"}, [1, 2], "run_after must be"),
        ("tests.tasks.add", {"colour": "red"}, [1, 2], "task_options ['colour'] are unknown"),
        ("tests.tasks.add", {}, [(1, 2)], "would reach the task changed"),
        ("tests.tasks.add", {}, [object()], "JSON the task backend accepts"),
        ("tests.tasks.not_a_task", {}, [], "which is not a Task"),
        ("tests.tasks.missing", {}, [], "has no 'missing'"),
        ("tests.tasks.alias", {}, [], "defined elsewhere"),
        ("tests.tasks:add", {}, [], "expected the task's module path"),
        ("os.system", {}, [], "not in an installed app"),
    ],
)
def test_bad_task_jobs_are_refused_with_the_reason(
    task: str, options: dict[str, Any], args: list[Any], message: str
) -> None:
    with pytest.raises(InvalidJobError) as refused:
        api.add_job(task=task, trigger="interval", minutes=5, args=args, task_options=options)
    assert message in str(refused.value)
    assert not Job.objects.exists()  # nothing written


def test_a_path_outside_the_project_is_refused_before_import() -> None:
    with pytest.raises(FunctionNotAllowedError):
        api.add_job(task="antigravity.fly", trigger="interval", minutes=5)
    assert "antigravity" not in sys.modules


def test_func_and_task_are_exclusive() -> None:
    with pytest.raises(InvalidJobError, match="either func or task"):
        api.add_job("tests.jobs:noop", "interval", minutes=1, task="tests.tasks.add")
    with pytest.raises(InvalidJobError, match="task_options apply to a task job"):
        api.add_job("tests.jobs:noop", "interval", minutes=1, task_options={"priority": 1})


def test_modify_job_checks_a_task_job_again() -> None:
    api.add_job(
        task="tests.tasks.add",
        trigger="interval",
        minutes=5,
        id="t",
        args=[1, 2],
        task_options={"backend": "dummy"},
    )
    with pytest.raises(InvalidJobError, match="queue 'sms'"):
        api.modify_job("t", task_options={"backend": "dummy", "queue_name": "sms"})
    with pytest.raises(InvalidJobError, match="JSON the task backend accepts"):
        api.modify_job("t", args=[object()])
    job = api.modify_job("t", task="tests.tasks.send_digest", args=[3])
    assert (job.task, job.task_options, job.args) == ("tests.tasks.send_digest", {}, (3,))
    job = api.modify_job("t", func="tests.jobs:noop", args=[])
    assert (job.task, job.func) == ("", "tests.jobs:noop")
    job = api.modify_job("t", task="tests.tasks.add", args=[1, 2])
    assert (job.task, job.func) == ("tests.tasks.add", tasktargets.ENQUEUER)


def test_a_row_naming_a_task_outside_the_project_is_flagged_not_imported(
    store: DjangoJobStore,
) -> None:
    api.add_job(task="tests.tasks.add", trigger="interval", minutes=5, id="t", args=[1, 2])
    Job.objects.filter(id="t").update(task="antigravity.fly", next_run_time=timezone.now())
    assert store.get_due_jobs(timezone.now()) == []
    assert "not in an installed app" in Job.objects.get(id="t").load_error
    assert "antigravity" not in sys.modules


def test_our_enqueuer_without_a_task_is_flagged(store: DjangoJobStore) -> None:
    api.add_job(task="tests.tasks.add", trigger="interval", minutes=5, id="t", args=[1, 2])
    Job.objects.filter(id="t").update(task="", next_run_time=timezone.now())
    assert store.get_due_jobs(timezone.now()) == []
    assert "has no task" in Job.objects.get(id="t").load_error


def test_a_declared_task_job_is_synced_with_its_task() -> None:
    from django_clockwork import declarations
    from tests.tasks import send_digest

    decorated = scheduled_job(
        "cron", hour=7, args=[1], task_options={"backend": "dummy", "priority": 5}
    )(send_digest)
    assert decorated is send_digest
    report = declarations.sync()
    assert report.created == ["tests.tasks.send_digest"]
    row = Job.objects.get(id="tests.tasks.send_digest")
    assert (row.task, row.task_options, row.func) == (
        "tests.tasks.send_digest",
        {"backend": "dummy", "priority": 5},
        tasktargets.ENQUEUER,
    )
    assert declarations.sync().unchanged == ["tests.tasks.send_digest"]


def test_a_bad_declared_task_job_is_refused_where_it_is_declared() -> None:
    from tests.tasks import add

    with pytest.raises(InvalidJobError, match=r"tests\.tasks\.add.*does not support priorities"):
        scheduled_job(
            "cron", hour=7, args=[1, 2], task_options={"backend": "plain", "priority": 3}
        )(add)


def test_the_enqueuer_refuses_to_be_called() -> None:
    with pytest.raises(RuntimeError, match="only a ClockworkExecutor"):
        tasktargets.enqueue_task()


# -- django-tasks-db: enqueued inside the claim's transaction ------------------------------------

needs_db_backend = pytest.mark.skipif(
    tasktargets._database_backend_class() is None, reason="django-tasks-db is not installed"
)


def db_results() -> Any:
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.all()


def add_db_task_job(job_id: str = "db", **options: Any) -> None:
    api.add_job(
        task="tests.tasks.add",
        trigger="interval",
        minutes=5,
        id=job_id,
        args=[1, 2],
        task_options={"backend": "database", **options},
    )
    Job.objects.filter(id=job_id).update(next_run_time=timezone.now() - timedelta(seconds=1))


@needs_db_backend
def test_the_database_backend_is_enqueued_by_the_claim(store: DjangoJobStore) -> None:
    add_db_task_job(priority=7)
    (job,) = store.get_due_jobs(timezone.now())
    assert job._get_run_times(timezone.now()) == []  # nothing left for the executor
    run = JobExecution.objects.get(job_id="db")
    (result,) = db_results()
    assert (run.status, run.task_backend, run.task_result_id) == (
        S.ENQUEUED,
        "database",
        str(result.id),
    )
    assert (result.task_path, result.priority, result.args_kwargs) == (
        "tests.tasks.add",
        7,
        {"args": [1, 2], "kwargs": {}},
    )


@needs_db_backend
def test_a_claim_that_does_not_commit_enqueues_nothing(
    store: DjangoJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task row and the ledger row commit together: a scheduler that dies (here, fails)
    after the enqueue and before its commit leaves the run time to the next claim."""
    from django_clockwork.ledger import Ledger

    add_db_task_job()

    def die(*args: Any, **kwargs: Any) -> bool:
        raise KeyboardInterrupt("the scheduler died here")

    with monkeypatch.context() as patch:
        patch.setattr(Ledger, "enqueued", die)
        with pytest.raises(KeyboardInterrupt):
            store.get_due_jobs(timezone.now())
    assert not db_results().exists()
    assert not JobExecution.objects.exists()
    store.get_due_jobs(timezone.now())
    assert db_results().count() == 1
    assert JobExecution.objects.get().status == S.ENQUEUED
    assert store.get_due_jobs(timezone.now()) == []
    assert db_results().count() == 1


@needs_db_backend
def test_a_refused_enqueue_in_the_claim_is_a_failed_run(
    store: DjangoJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_db_task_job()
    add_db_task_job("other")

    def refuse(self: Any, task: Any, args: Any, kwargs: Any) -> Any:
        if not getattr(refuse, "done", False):
            refuse.done = True  # type: ignore[attr-defined]
            raise ValueError("refused once")
        return original(self, task, args, kwargs)

    backend_class = tasktargets._database_backend_class()
    assert backend_class is not None
    original = backend_class.enqueue
    monkeypatch.setattr(backend_class, "enqueue", refuse)
    store.get_due_jobs(timezone.now())
    statuses = sorted(JobExecution.objects.values_list("status", flat=True))
    assert statuses == [S.ENQUEUED, S.FAILED]
    assert "ValueError: refused once" in JobExecution.objects.get(status=S.FAILED).exception
    assert db_results().count() == 1


@needs_db_backend
def test_a_run_claimed_ahead_is_enqueued_to_run_at_its_time(store: DjangoJobStore) -> None:
    add_db_task_job()
    due = timezone.now() + timedelta(seconds=0.5)
    Job.objects.filter(id="db").update(next_run_time=due)
    store.claim_ahead = timedelta(seconds=2)
    store.get_due_jobs(timezone.now())
    (result,) = db_results()
    assert result.run_after == due


def test_other_backends_are_enqueued_by_the_executor_after_the_claim(
    store: DjangoJobStore,
) -> None:
    """At most once: the claim commits before the executor enqueues, so a scheduler that
    dies in between loses the run (recorded abandoned by the others), never doubles it."""
    api.add_job(
        task="tests.tasks.add",
        trigger="interval",
        minutes=5,
        id="d",
        args=[1, 2],
        task_options={"backend": "dummy"},
    )
    Job.objects.filter(id="d").update(next_run_time=timezone.now() - timedelta(seconds=1))
    (job,) = store.get_due_jobs(timezone.now())
    assert len(job._get_run_times(timezone.now())) == 1  # left for the executor
    assert JobExecution.objects.get().status == S.SCHEDULED  # committed, not enqueued yet
    assert store.get_due_jobs(timezone.now()) == []  # and nobody else may take it


@needs_db_backend
def test_a_worker_s_task_finished_signal_completes_the_run(store: DjangoJobStore) -> None:
    """What a worker with this app installed does (django-tasks-db's db_worker sends it)."""
    add_db_task_job()
    store.get_due_jobs(timezone.now())
    (result,) = db_results()
    result.claim("worker-1")
    result.set_successful(3)
    taskframework.signal("task_finished").send(sender=None, task_result=result.task_result)
    run = JobExecution.objects.get()
    assert (run.status, run.exception) == (S.SUCCEEDED, "")
    assert run.started_at == result.started_at
    assert run.duration == pytest.approx((result.finished_at - result.started_at).total_seconds())


def test_without_a_tasks_framework_a_task_job_is_refused_and_the_rest_works(
    store: DjangoJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.add_job(task="tests.tasks.add", trigger="interval", minutes=5, id="t", args=[1, 2])
    monkeypatch.setattr(taskframework, "FRAMEWORK", None)
    with pytest.raises(InvalidJobError, match="needs Django's tasks framework"):
        api.add_job(task="tests.tasks.add", trigger="interval", minutes=5, args=[1, 2])
    api.add_job("tests.jobs:noop", "interval", minutes=5, id="plain")
    Job.objects.update(next_run_time=timezone.now() - timedelta(seconds=1))
    (job,) = store.get_due_jobs(timezone.now())
    assert job.id == "plain"
    assert "needs Django's tasks framework" in Job.objects.get(id="t").load_error


def test_run_now_enqueues_a_task_job_once(
    store: DjangoJobStore, executor: ClockworkExecutor, enqueued: list[Any]
) -> None:
    from django_clockwork.models import SchedulerNode, TriggerSource

    now = timezone.now()
    SchedulerNode.objects.create(
        id="n1", hostname="h", pid=1, version="x", started_at=now, last_heartbeat=now
    )
    store.node_id = "n1"
    store._claimer.ledger.node_id = "n1"
    api.add_job(
        task="tests.tasks.add",
        trigger="cron",
        hour=3,
        id="nightly",
        args=[1, 2],
        task_options={"backend": "dummy"},
    )
    request = api.run_now("nightly", requested_by="alice")
    (job,) = store.get_due_jobs(timezone.now())
    executor.submit_job(job, job._get_run_times(timezone.now()))
    assert executor.wait(5)
    run = JobExecution.objects.get(id=request.execution_id)
    (result,) = enqueued
    assert (run.status, run.trigger_source, run.task_result_id, run.func) == (
        S.ENQUEUED,
        TriggerSource.RUN_NOW,
        result.id,
        "tests.tasks.add",
    )
