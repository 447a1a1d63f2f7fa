"""The run times one claim takes for one job: bounded, whatever ``next_run_time`` a row holds.

APScheduler's scheduling pass lists every run time from a job's ``next_run_time`` up to now. A
row whose ``next_run_time`` lies far in the past (a scheduler that was down for a week, a hand
edit to the year 2000) would make that list as long as the backlog: minutes of CPU and
gigabytes of memory while a claim holds its locks. :func:`walk` bounds the work instead:

- run times older than the job's ``misfire_grace_time`` would all be recorded ``missed``; they
  are counted (up to :data:`MAX_RUN_TIMES`), not listed, and become one ``missed`` row that
  says how many they were; the walk then jumps to the first fire time inside the grace window;
- at most :data:`MAX_RUN_TIMES` run times are taken per job per claim; the job's next
  ``next_run_time`` is the first one not taken, so the next pass goes on from there (with
  ``coalesce``, the backlog runs once and the job goes on from its first fire time after now).

It uses only the trigger's public ``get_next_fire_time``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any, NamedTuple

#: Run times one claim takes per job, and the most a walk counts before it jumps ahead.
MAX_RUN_TIMES = 100


@dataclass(frozen=True)
class Missed:
    """Run times older than ``misfire_grace_time`` when the claim saw them."""

    first: datetime
    last: datetime
    count: int
    #: True when the walk stopped counting at MAX_RUN_TIMES: ``count`` is a lower bound.
    more: bool
    grace: float

    def describe(self) -> str:
        many = f"more than {self.count:,}" if self.more else f"{self.count:,}"
        span = (
            f"at {_iso(self.first)}"
            if self.count == 1
            else f"from {_iso(self.first)} to {_iso(self.last)}{' and later' if self.more else ''}"
        )
        return (
            f"Missed {many} run time(s) {span}: older than misfire_grace_time "
            f"({self.grace:g}s) when a scheduler claimed them"
        )


class Walk(NamedTuple):
    """What one claim takes for one job."""

    #: UTC run times to hand to the executor (coalesced to one when the job coalesces).
    run_times: list[datetime]
    #: The job's next ``next_run_time`` (None: the trigger is done).
    next_run_time: datetime | None
    #: Run times recorded as one ``missed`` row (None: nothing was missed).
    missed: Missed | None


def walk(job: Any, now: datetime, limit: int = MAX_RUN_TIMES) -> Walk:
    """The run times of ``job`` due at ``now`` that one claim takes, and where the job goes on."""
    now = _utc(now)
    # Times are compared as UTC instants, as APScheduler does: two zone-local times of one
    # zone compare by wall clock, which is wrong in a DST fold. The trigger is always given
    # its own zone-local times (from a UTC time, a cron trigger may repeat a fold's instant).
    trigger = job.trigger
    current: datetime | None = job.next_run_time
    if current is None or _utc(current) > now:
        return Walk([], current, None)
    missed = None
    cutoff = _cutoff(now, job.misfire_grace_time)
    if cutoff is not None and _utc(current) < cutoff:
        first = last = current
        count = 0
        while current is not None and _utc(current) < cutoff and count < limit:
            count += 1
            last = current
            current = trigger.get_next_fire_time(current, now)
        more = current is not None and _utc(current) < cutoff
        if more:
            current = _first_after(trigger, last, cutoff, now)
        missed = Missed(first, last, count, more, float(job.misfire_grace_time))
    run_times: list[datetime] = []
    while current is not None and _utc(current) <= now and len(run_times) < limit:
        run_times.append(current)
        current = trigger.get_next_fire_time(current, now)
    if job.coalesce:
        if current is not None and _utc(current) <= now:  # more backlog than one walk takes
            current = _first_after(trigger, run_times[-1], now, now, strictly=True)
        run_times = run_times[-1:]
        if run_times:
            missed = None  # coalesced into the run, as APScheduler does
    if len(run_times) == 1:  # most claims: one run time (every coalescing job's)
        return Walk([_utc(run_times[0])], current, missed)
    return Walk(sorted({_utc(t) for t in run_times}), current, missed)


def _cutoff(now: datetime, grace: float | None) -> datetime | None:
    """The oldest run time still inside the grace window (None: no limit)."""
    if grace is None:
        return None
    try:
        return now - timedelta(seconds=grace)
    except OverflowError:  # a grace of centuries: no run time is that old
        return None


def _first_after(
    trigger: Any, last: datetime, moment: datetime, now: datetime, *, strictly: bool = False
) -> datetime | None:
    """The trigger's first fire time at or (``strictly``) after ``moment``, and after
    ``last``, found without walking the fire times in between."""
    candidate: datetime | None = trigger.get_next_fire_time(None, moment)
    if candidate is not None and strictly and _utc(candidate) <= moment:
        candidate = trigger.get_next_fire_time(candidate, now)
    if candidate is None or _utc(candidate) > _utc(last):
        return candidate
    # A trigger whose first fire time ignores ``moment`` (e.g. a fixed date): walk on from last.
    following: datetime | None = trigger.get_next_fire_time(last, now)
    return following


def _utc(value: datetime) -> datetime:
    return value.astimezone(dt_timezone.utc)


def _iso(value: datetime) -> str:
    return _utc(value).isoformat(sep=" ", timespec="seconds")
