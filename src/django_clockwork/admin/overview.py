"""What the job list shows beside each row: recent outcomes, the last run, runs in flight.

Computed for a whole page at once (:func:`attach`: two queries however many rows), then
read per row (:func:`overview_of`), so the list's query count does not grow with its length.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db.models import Count

from django_clockwork.api import ScheduledJob
from django_clockwork.ledger import UNFINISHED
from django_clockwork.models import ExecutionStatus, Job, JobExecution

#: Outcomes in a job's strip of recent runs.
STRIP = 20
_ATTRIBUTE = "clockwork_overview"


@dataclass
class JobOverview:
    job: ScheduledJob
    #: The most recent runs, newest first (at most ``STRIP``).
    recent: list[JobExecution] = field(default_factory=list)
    running: int = 0

    @property
    def last(self) -> JobExecution | None:
        """The newest run that started or ended (a run waiting for a thread is not one)."""
        return next((run for run in self.recent if run.status != ExecutionStatus.SCHEDULED), None)

    @property
    def finished(self) -> list[JobExecution]:
        return [run for run in self.recent if run.status not in UNFINISHED]

    @property
    def success_rate(self) -> float | None:
        done = self.finished
        if not done:
            return None
        good = {ExecutionStatus.SUCCEEDED, ExecutionStatus.ENQUEUED}
        return sum(run.status in good for run in done) / len(done)


def attach(rows: Sequence[Job]) -> None:
    """Give every row of a page its overview (two queries)."""
    if not rows:
        return
    ids = [row.id for row in rows]
    runs = JobExecution.objects.using(_database(rows))
    recent: dict[str, list[JobExecution]] = defaultdict(list)
    for run in runs.recent_per_job(ids, STRIP):
        recent[run.job_id].append(run)
    running = dict(
        runs.filter(job_id__in=ids, status=ExecutionStatus.RUNNING)
        .values_list("job_id")
        .annotate(count=Count("id"))
        .values_list("job_id", "count")
    )
    for row in rows:
        history = sorted(recent[row.id], key=lambda run: run.scheduled_run_time, reverse=True)
        overview = JobOverview(ScheduledJob.from_row(row), history, running.get(row.id, 0))
        setattr(row, _ATTRIBUTE, overview)


def overview_of(row: Job) -> JobOverview:
    """The row's overview: attached with its page, else computed for this row alone."""
    found = getattr(row, _ATTRIBUTE, None)
    if found is None:
        attach([row])
        found = getattr(row, _ATTRIBUTE)
    assert isinstance(found, JobOverview)
    return found


def _database(rows: Sequence[Job]) -> str:
    return rows[0]._state.db or "default"
