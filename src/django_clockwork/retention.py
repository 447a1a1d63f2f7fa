"""History retention: deleting old finished runs and finished one-off jobs, in small batches.

Three rules, each off when its setting is ``None``:

- runs whose ``scheduled_run_time`` is older than ``HISTORY_MAX_AGE``;
- runs of a job beyond its newest ``HISTORY_MAX_PER_JOB``;
- one-off jobs finished longer ago than ``FINISHED_JOB_RETENTION`` (their history stays).

Only finished runs are deleted (the ledger refuses the others), at most ``BATCH_SIZE`` ids
per statement. A running scheduler's node asks :meth:`Pruner.take_turn` on each heartbeat
(once per ``PRUNE_INTERVAL`` across the fleet, one node gets it) and then prunes in a
thread of its own with :meth:`Pruner.prune_turn`, for at most ``TURN_BUDGET`` seconds.
``manage.py clockwork prune`` calls :meth:`Pruner.prune`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count
from django.utils import timezone

from django_clockwork import leases
from django_clockwork.conf import Conf
from django_clockwork.ledger import Ledger
from django_clockwork.models import Job, JobExecution

logger = logging.getLogger(__name__)

#: Most ids one DELETE names.
BATCH_SIZE = 1000
#: Most seconds one turn works; what is left waits for the next heartbeat of the fleet.
TURN_BUDGET = 60.0
#: The lease that makes pruning one node's turn per interval.
LEASE = "prune-history"


@dataclass(frozen=True)
class Policy:
    """What is kept; ``None`` keeps everything for that rule."""

    max_age: float | None
    max_per_job: int | None
    finished_job_retention: float | None
    interval: float = 600.0

    @classmethod
    def from_conf(cls, conf: Conf) -> Policy:
        return cls(
            conf.history_max_age,
            conf.history_max_per_job,
            conf.finished_job_retention,
            conf.prune_interval,
        )

    @property
    def enabled(self) -> bool:
        rules = (self.max_age, self.max_per_job, self.finished_job_retention)
        return any(rule is not None for rule in rules)


@dataclass
class PruneReport:
    """What a prune removed (or a dry run would remove)."""

    policy: Policy
    runs_by_age: int = 0
    runs_by_count: int = 0
    jobs: int = 0
    #: False when the time budget ran out with work left.
    complete: bool = True

    def __bool__(self) -> bool:
        return bool(self.runs_by_age or self.runs_by_count or self.jobs)

    def lines(self) -> list[str]:
        policy = self.policy
        lines = []
        if policy.max_age is not None:
            lines.append(f"{self.runs_by_age} run(s) older than {_span(policy.max_age)}")
        if policy.max_per_job is not None:
            lines.append(
                f"{self.runs_by_count} run(s) beyond the newest {policy.max_per_job} of their job"
            )
        if policy.finished_job_retention is not None:
            lines.append(
                f"{self.jobs} one-off job(s) finished more than "
                f"{_span(policy.finished_job_retention)} ago"
            )
        return lines

    def __str__(self) -> str:
        return "; ".join(self.lines()) or "nothing (every retention setting is None)"


class _Budget:
    """Seconds of work allowed (``None``: no limit), cut short when ``stop`` is set.
    Remembers whether it cut work short."""

    def __init__(self, seconds: float | None, stop: threading.Event | None = None) -> None:
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self.stop = stop
        self.cut = False

    def allows(self) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.cut = True
        if self.stop is not None and self.stop.is_set():
            self.cut = True
        return not self.cut


class Pruner:
    """Applies a :class:`Policy` to the tables of one database."""

    def __init__(self, database: str, policy: Policy, *, batch_size: int = BATCH_SIZE) -> None:
        self.database = database
        self.policy = policy
        self.batch_size = batch_size
        self._ledger = Ledger(database)

    def __repr__(self) -> str:
        return f"<Pruner database={self.database!r} {self.policy}>"

    def take_turn(self, holder: str) -> bool:
        """Whether it is ``holder``'s turn to prune (the fleet's lease, once per interval)."""
        if not self.policy.enabled:
            return False
        return leases.take(LEASE, holder, self.policy.interval, self.database)

    def prune_turn(
        self, holder: str, *, budget: float, stop: threading.Event | None = None
    ) -> PruneReport:
        """Prune for at most ``budget`` seconds (or until ``stop`` is set) on ``holder``'s turn.

        With work left, frees the lease so that the fleet's next heartbeat carries on.
        """
        report = self.prune(budget=budget, stop=stop)
        if not report.complete:
            leases.release(LEASE, holder, self.database)
        if report:
            logger.info("Pruned history: removed %s", report)
        return report

    def prune(
        self,
        *,
        now: datetime | None = None,
        budget: float | None = None,
        stop: threading.Event | None = None,
    ) -> PruneReport:
        """Delete what the policy no longer keeps; returns what was deleted."""
        clock = _Budget(budget, stop)
        report = PruneReport(self.policy)
        now = now or timezone.now()
        runs = self._ledger.delete_finished
        report.runs_by_age = self._drain(self._aged(now), runs, clock)
        for job_runs in self._beyond_count(now):
            if not clock.allows():
                break
            report.runs_by_count += self._drain(job_runs, runs, clock)
        jobs = self._finished_jobs(now)
        report.jobs = self._drain(jobs, lambda ids: jobs.filter(pk__in=ids).delete()[0], clock)
        report.complete = not clock.cut
        return report

    def plan(self, *, now: datetime | None = None) -> PruneReport:
        """What :meth:`prune` would delete now (a dry run: counts only)."""
        now = now or timezone.now()
        report = PruneReport(self.policy)
        report.runs_by_age = self._aged(now).count()
        report.runs_by_count = sum(job_runs.count() for job_runs in self._beyond_count(now))
        report.jobs = self._finished_jobs(now).count()
        return report

    # -- what each rule selects ------------------------------------------------------------

    def _aged(self, now: datetime) -> Any:
        if self.policy.max_age is None:
            return self._ledger.finished_runs().none()
        return self._ledger.finished_runs().filter(scheduled_run_time__lt=self._age_cutoff(now))

    def _age_cutoff(self, now: datetime) -> datetime:
        assert self.policy.max_age is not None
        return now - timedelta(seconds=self.policy.max_age)

    def _beyond_count(self, now: datetime) -> Iterator[Any]:
        """Per job over the limit: its finished runs older than its newest ``max_per_job``
        (and not already older than the age limit, so no run is counted twice)."""
        limit = self.policy.max_per_job
        if limit is None:
            return
        all_runs = JobExecution.objects.using(self.database)
        crowded = (
            all_runs.values("job_id").annotate(runs=Count("id")).filter(runs__gt=limit).order_by()
        )
        for job_id in sorted(row["job_id"] for row in crowded):
            newest = all_runs.filter(job_id=job_id).order_by("-scheduled_run_time")
            cutoff = newest.values_list("scheduled_run_time", flat=True)[limit - 1 : limit].first()
            if cutoff is None:
                continue  # pruned meanwhile (a command and a scheduler at once)
            older = self._ledger.finished_runs().filter(
                job_id=job_id, scheduled_run_time__lt=cutoff
            )
            if self.policy.max_age is not None:
                older = older.filter(scheduled_run_time__gte=self._age_cutoff(now))
            yield older

    def _finished_jobs(self, now: datetime) -> Any:
        jobs = Job.objects.using(self.database)
        if self.policy.finished_job_retention is None:
            return jobs.none()
        return jobs.finished_before(now - timedelta(seconds=self.policy.finished_job_retention))

    # -- deleting in batches ---------------------------------------------------------------

    def _drain(self, rows: Any, delete: Callable[[Collection[Any]], int], clock: _Budget) -> int:
        """Delete ``rows`` ``batch_size`` ids at a time while the budget allows."""
        deleted = 0
        while clock.allows():
            ids = list(rows.order_by().values_list("pk", flat=True)[: self.batch_size])
            if not ids:
                break
            deleted += delete(ids)
            if len(ids) < self.batch_size:
                break
        return deleted


def _span(seconds: float) -> str:
    """``30 days``, ``6 hours``, ``90 seconds``: a retention setting for people."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} seconds"
