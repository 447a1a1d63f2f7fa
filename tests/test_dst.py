"""Time is right: DST gaps and folds, from the ledger.

Every stored time is aware UTC; each trigger keeps its own zone (the scheduler's zone
here is America/New_York, whose own transitions are weeks away from the cases). The store is
driven with a simulated clock, exactly as APScheduler's ``_process_jobs`` would drive it,
and the claimed runs really go through ``ClockworkExecutor``. Each test then reads
``JobExecution`` and compares the run times, shown on the trigger's wall clock with
their UTC offset, with a list written out by hand.

Zone rules the expected lists rely on (checked by ``test_zone_rules_the_cases_rely_on``):

* Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST (02:00-02:59 do not exist);
  2026-10-25 03:00 CEST -> 02:00 CET (02:00-02:59 happen twice).
* Australia/Lord_Howe (30-minute shift): 2026-04-05 02:00 +11:00 -> 01:30 +10:30
  (01:30-01:59 happen twice); 2026-10-04 02:00 +10:30 -> 02:30 +11:00
  (02:00-02:29 do not exist).

What APScheduler 3.11's triggers do there (pinned by the cases below):

* CronTrigger works on the wall clock. A wall time that happens twice (fold) fires twice,
  once per UTC offset; APScheduler's docs say so ("it will execute twice").
* A wall time that does not exist (gap) and is reached as a fixed time of day (``hour=2,
  minute=30``) fires once, shifted forward by the length of the gap (Berlin 02:30 ->
  03:30 CEST, Lord Howe 02:15 -> 02:45); APScheduler's docs say such a job "will not
  execute at all" that morning, but 3.11 runs it late. Values stepped through inside the gap
  (``minute='*/15'``, ``minute=15`` every hour) are skipped; ``hour=2, minute='*/15'``
  fires once, at the instant 02:00 CET would have been (03:00 CEST).
* IntervalTrigger counts elapsed time: runs stay exactly one interval apart in UTC,
  whatever the wall clock does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from itertools import pairwise
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest
from apscheduler.job import Job as APJob
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from django.db import connection

from django_clockwork import ClockworkExecutor, DjangoJobStore, api, create_scheduler
from django_clockwork.models import Job, JobExecution
from django_clockwork.serialization import trigger_from_json

pytestmark = pytest.mark.django_db(transaction=True)  # the executor's threads write the ledger

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
SCHEDULER_ZONE = "America/New_York"
NEW_YORK = ZoneInfo(SCHEDULER_ZONE)
JOB_ID = "dst"


# -- helpers -----------------------------------------------------------------------------------


def at(text: str, zone: ZoneInfo) -> datetime:
    """A wall-clock time in ``zone``; an offset ("02:50+01:00") picks one side of a fold."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=zone) if value.tzinfo is None else value.astimezone(zone)


def wall(value: datetime, zone: tzinfo | str) -> str:
    """How the expected lists spell a run time: wall clock in ``zone`` plus its UTC offset."""
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    return value.astimezone(zone).isoformat(sep=" ", timespec="minutes")


def aware_utc(value: datetime | None, what: str) -> datetime:
    """``value``, after checking that it is set, aware and in UTC (as read back from the DB)."""
    assert value is not None, f"{what} is empty"
    assert value.tzinfo is not None, f"{what} {value!r} is naive"
    assert value.utcoffset() == timedelta(0), f"{what} {value!r} is not in UTC"
    return value


def run_times(job_id: str = JOB_ID) -> list[datetime]:
    """The job's ledger times, oldest first."""
    rows = JobExecution.objects.filter(job_id=job_id).order_by("scheduled_run_time")
    values = rows.values_list("scheduled_run_time", flat=True)
    return [aware_utc(value, "JobExecution.scheduled_run_time") for value in values]


def ledger(zone: tzinfo, job_id: str = JOB_ID) -> list[str]:
    """The job's ledger times as wall-clock times in ``zone``, oldest first."""
    return [wall(value, zone) for value in run_times(job_id)]


class RunsNotExecutedError(AssertionError):
    """Ledger rows that the executor never ran."""


def assert_all_ran(zone: tzinfo, job_id: str = JOB_ID) -> None:
    rows = JobExecution.objects.filter(job_id=job_id).order_by("scheduled_run_time")
    not_run = [
        (wall(r.scheduled_run_time, zone), r.status) for r in rows if r.status != "succeeded"
    ]
    if not_run:
        raise RunsNotExecutedError(f"ledger rows the executor never ran: {not_run}")


@dataclass
class SimulatedScheduler:
    """APScheduler's main loop around our store and executor, on a simulated clock."""

    scheduler: BaseScheduler
    store: DjangoJobStore
    executor: ClockworkExecutor
    max_passes: int = 500

    def add(self, trigger: BaseTrigger, *, start: datetime, coalesce: bool = False) -> None:
        """Add the job as of ``start``: its first run is the trigger's first fire time from then."""
        job = APJob(
            self.scheduler,
            id=JOB_ID,
            func="tests.jobs:noop",
            trigger=trigger,
            executor="default",
            args=(),
            kwargs={},
            name=JOB_ID,
            misfire_grace_time=None,  # the simulated dates are in the past of the real clock
            coalesce=coalesce,
            max_instances=1,
            next_run_time=trigger.get_next_fire_time(None, start),
        )
        self.store.add_job(job)

    def run_until(self, until: datetime, *, lag: timedelta = timedelta(0)) -> None:
        """Wake at each next run time the store reports (``lag`` late), up to ``until``."""
        for _ in range(self.max_passes):
            wake = self.store.get_next_run_time()
            if wake is None or wake > until:
                return
            aware_utc(wake, "get_next_run_time()")
            self.tick(wake + lag)
        pytest.fail(f"still waking after {self.max_passes} passes: the job does not advance")

    def tick(self, now: datetime) -> None:
        """One pass of ``BaseScheduler._process_jobs`` at ``now`` (in the scheduler's zone)."""
        now = now.astimezone(self.scheduler.timezone)
        due = self.store.get_due_jobs(now)
        advanced = self._rows()
        for job in due:
            run_times = job._get_run_times(now)
            run_times = run_times[-1:] if run_times and job.coalesce else run_times
            if not run_times:
                continue
            self.executor.submit_job(job, run_times)
            next_run = job.trigger.get_next_fire_time(run_times[-1], now)
            if next_run:
                job._modify(next_run_time=next_run)
                self.store.update_job(job)
            else:
                self.store.remove_job(job.id)
        # The claim advanced the rows; the scheduler's write-back of the same pass changes nothing.
        assert self._rows() == advanced
        assert self.executor.wait(timeout=30), "the executor did not finish this pass's runs"

    @staticmethod
    def _rows() -> dict[str, tuple[int, datetime | None, datetime | None]]:
        rows = {}
        for row in Job.objects.all():
            if row.next_run_time is not None:
                aware_utc(row.next_run_time, "Job.next_run_time")
            rows[row.id] = (row.version, row.next_run_time, row.finished_at)
        return rows


@pytest.fixture
def clockwork(settings: Any) -> Iterator[SimulatedScheduler]:
    settings.CLOCKWORK = {**settings.CLOCKWORK, "TIMEZONE": SCHEDULER_ZONE}
    scheduler = create_scheduler()
    assert str(scheduler.timezone) == SCHEDULER_ZONE
    store = DjangoJobStore(poll_interval=None)
    store.start(scheduler, "default")
    executor = ClockworkExecutor(max_workers=2)
    executor.start(scheduler, "default")
    yield SimulatedScheduler(scheduler, store, executor)
    executor.shutdown(wait=True)


CLOCKS = [
    pytest.param(timedelta(0), id="wakes-on-time"),
    pytest.param(timedelta(seconds=90), id="wakes-90s-late"),
]


# -- the zone rules the cases rely on ----------------------------------------------------------


@pytest.mark.django_db(transaction=False)
@pytest.mark.parametrize(
    ("zone", "before", "after"),
    [
        (BERLIN, "2026-03-29 01:59+01:00", "2026-03-29 03:00+02:00"),
        (BERLIN, "2026-10-25 02:59+02:00", "2026-10-25 02:00+01:00"),
        (LORD_HOWE, "2026-04-05 01:59+11:00", "2026-04-05 01:30+10:30"),
        (LORD_HOWE, "2026-10-04 01:59+10:30", "2026-10-04 02:30+11:00"),
    ],
)
def test_zone_rules_the_cases_rely_on(zone: ZoneInfo, before: str, after: str) -> None:
    """The zone's offset at ``before`` is as written, and one real minute later the wall
    clock shows ``after`` (guards the expected lists against a tzdata change)."""
    assert wall(at(before, zone), zone) == before
    assert wall(at(before, zone).astimezone(UTC) + timedelta(minutes=1), zone) == after


# -- cron ------------------------------------------------------------------------------------

CRON_CASES = {
    "berlin-0230-daily-spring-gap": (
        CronTrigger(hour=2, minute=30, timezone=BERLIN),
        "2026-03-28 00:00",
        "2026-03-30 12:00",
        [
            "2026-03-28 02:30+01:00",
            "2026-03-29 03:30+02:00",  # 02:30 does not exist: once, an hour (the gap) later
            "2026-03-30 02:30+02:00",
        ],
    ),
    "berlin-0230-daily-autumn-fold": (
        CronTrigger(hour=2, minute=30, timezone=BERLIN),
        "2026-10-24 00:00",
        "2026-10-26 12:00",
        [
            "2026-10-24 02:30+02:00",
            "2026-10-25 02:30+02:00",  # 02:30 happens twice: once per offset
            "2026-10-25 02:30+01:00",
            "2026-10-26 02:30+01:00",
        ],
    ),
    "berlin-every-15-min-spring-gap": (
        CronTrigger(minute="*/15", timezone=BERLIN),
        "2026-03-29 01:30",
        "2026-03-29 03:30",
        [
            "2026-03-29 01:30+01:00",
            "2026-03-29 01:45+01:00",
            # 02:00-02:45 do not exist and are skipped
            "2026-03-29 03:00+02:00",
            "2026-03-29 03:15+02:00",
            "2026-03-29 03:30+02:00",
        ],
    ),
    "berlin-every-15-min-autumn-fold": (
        CronTrigger(minute="*/15", timezone=BERLIN),
        "2026-10-25 01:45",
        "2026-10-25 03:00",
        [
            "2026-10-25 01:45+02:00",
            "2026-10-25 02:00+02:00",
            "2026-10-25 02:15+02:00",
            "2026-10-25 02:30+02:00",
            "2026-10-25 02:45+02:00",
            "2026-10-25 02:00+01:00",  # the repeated hour runs again
            "2026-10-25 02:15+01:00",
            "2026-10-25 02:30+01:00",
            "2026-10-25 02:45+01:00",
            "2026-10-25 03:00+01:00",
        ],
    ),
    "berlin-hour-2-every-15-min-spring-gap": (
        CronTrigger(hour=2, minute="*/15", timezone=BERLIN),
        "2026-03-28 00:00",
        "2026-03-30 12:00",
        [
            "2026-03-28 02:00+01:00",
            "2026-03-28 02:15+01:00",
            "2026-03-28 02:30+01:00",
            "2026-03-28 02:45+01:00",
            "2026-03-29 03:00+02:00",  # hour 2 does not exist: only 02:00 runs, shifted an hour
            "2026-03-30 02:00+02:00",
            "2026-03-30 02:15+02:00",
            "2026-03-30 02:30+02:00",
            "2026-03-30 02:45+02:00",
        ],
    ),
    "lord-howe-0145-daily-april-fold": (
        CronTrigger(hour=1, minute=45, timezone=LORD_HOWE),
        "2026-04-04 00:00",
        "2026-04-06 12:00",
        [
            "2026-04-04 01:45+11:00",
            "2026-04-05 01:45+11:00",  # 01:45 happens twice, 30 minutes apart
            "2026-04-05 01:45+10:30",
            "2026-04-06 01:45+10:30",
        ],
    ),
    "lord-howe-0215-daily-october-gap": (
        CronTrigger(hour=2, minute=15, timezone=LORD_HOWE),
        "2026-10-03 00:00",
        "2026-10-05 12:00",
        [
            "2026-10-03 02:15+10:30",
            "2026-10-04 02:45+11:00",  # 02:15 does not exist: once, 30 minutes (the gap) later
            "2026-10-05 02:15+11:00",
        ],
    ),
    "lord-howe-every-15-min-april-fold": (
        CronTrigger(minute="*/15", timezone=LORD_HOWE),
        "2026-04-05 01:00",
        "2026-04-05 02:30",
        [
            "2026-04-05 01:00+11:00",
            "2026-04-05 01:15+11:00",
            "2026-04-05 01:30+11:00",
            "2026-04-05 01:45+11:00",
            "2026-04-05 01:30+10:30",  # the repeated half hour runs again
            "2026-04-05 01:45+10:30",
            "2026-04-05 02:00+10:30",
            "2026-04-05 02:15+10:30",
            "2026-04-05 02:30+10:30",
        ],
    ),
    "lord-howe-every-15-min-october-gap": (
        CronTrigger(minute="*/15", timezone=LORD_HOWE),
        "2026-10-04 01:30",
        "2026-10-04 03:00",
        [
            "2026-10-04 01:30+10:30",
            "2026-10-04 01:45+10:30",
            # 02:00 and 02:15 do not exist and are skipped
            "2026-10-04 02:30+11:00",
            "2026-10-04 02:45+11:00",
            "2026-10-04 03:00+11:00",
        ],
    ),
    "lord-howe-hourly-at-45-april-fold": (
        CronTrigger(minute=45, timezone=LORD_HOWE),
        "2026-04-05 00:00",
        "2026-04-05 03:00",
        [
            "2026-04-05 00:45+11:00",
            "2026-04-05 01:45+11:00",
            "2026-04-05 01:45+10:30",  # only 30 real minutes after the previous run
            "2026-04-05 02:45+10:30",
        ],
    ),
    "lord-howe-hourly-at-15-october-gap": (
        CronTrigger(minute=15, timezone=LORD_HOWE),
        "2026-10-04 00:00",
        "2026-10-04 04:00",
        [
            "2026-10-04 00:15+10:30",
            "2026-10-04 01:15+10:30",
            # 02:15 does not exist: skipped (unlike the daily 02:15 above), 90 real minutes pass
            "2026-10-04 03:15+11:00",
        ],
    ),
}


@pytest.mark.parametrize("lag", CLOCKS)
@pytest.mark.parametrize(
    ("trigger", "start", "until", "expected"), list(CRON_CASES.values()), ids=list(CRON_CASES)
)
def test_cron_runs_once_per_intended_wall_clock_time(
    clockwork: SimulatedScheduler,
    trigger: CronTrigger,
    start: str,
    until: str,
    expected: list[str],
    lag: timedelta,
) -> None:
    zone = trigger.timezone
    clockwork.add(trigger, start=at(start, zone))
    assert Job.objects.get(id=JOB_ID).trigger["timezone"] == zone.key

    clockwork.run_until(at(until, zone), lag=lag)

    assert ledger(zone) == expected
    assert_all_ran(zone)
    next_run = aware_utc(Job.objects.get(id=JOB_ID).next_run_time, "Job.next_run_time")
    assert next_run > at(until, zone)


# -- interval ----------------------------------------------------------------------------------


def every(zone: ZoneInfo, start: str, **interval: int) -> IntervalTrigger:
    return IntervalTrigger(**interval, start_date=at(start, zone), timezone=zone)


INTERVAL_CASES = {
    "berlin-30-min-spring-gap": (
        every(BERLIN, "2026-03-29 01:00", minutes=30),
        "2026-03-29 04:00",
        [
            "2026-03-29 01:00+01:00",
            "2026-03-29 01:30+01:00",
            "2026-03-29 03:00+02:00",  # 30 real minutes after 01:30
            "2026-03-29 03:30+02:00",
            "2026-03-29 04:00+02:00",
        ],
    ),
    "berlin-30-min-autumn-fold": (
        every(BERLIN, "2026-10-25 01:30", minutes=30),
        "2026-10-25 03:00",
        [
            "2026-10-25 01:30+02:00",
            "2026-10-25 02:00+02:00",
            "2026-10-25 02:30+02:00",
            "2026-10-25 02:00+01:00",  # 30 real minutes after 02:30 CEST
            "2026-10-25 02:30+01:00",
            "2026-10-25 03:00+01:00",
        ],
    ),
    "berlin-1-day-spring-gap": (
        every(BERLIN, "2026-03-28 12:00", days=1),
        "2026-03-30 23:00",
        [
            "2026-03-28 12:00+01:00",
            "2026-03-29 13:00+02:00",  # 24 real hours later: the wall clock moves on an hour
            "2026-03-30 13:00+02:00",
        ],
    ),
    "lord-howe-30-min-april-fold": (
        every(LORD_HOWE, "2026-04-05 01:00", minutes=30),
        "2026-04-05 02:30",
        [
            "2026-04-05 01:00+11:00",
            "2026-04-05 01:30+11:00",
            "2026-04-05 01:30+10:30",  # the same wall time, 30 real minutes later
            "2026-04-05 02:00+10:30",
            "2026-04-05 02:30+10:30",
        ],
    ),
    "lord-howe-30-min-october-gap": (
        every(LORD_HOWE, "2026-10-04 01:00", minutes=30),
        "2026-10-04 03:30",
        [
            "2026-10-04 01:00+10:30",
            "2026-10-04 01:30+10:30",
            "2026-10-04 02:30+11:00",  # 30 real minutes after 01:30 (02:00 does not exist)
            "2026-10-04 03:00+11:00",
            "2026-10-04 03:30+11:00",
        ],
    ),
}


@pytest.mark.parametrize("lag", CLOCKS)
@pytest.mark.parametrize(
    ("trigger", "until", "expected"), list(INTERVAL_CASES.values()), ids=list(INTERVAL_CASES)
)
def test_interval_runs_one_interval_of_elapsed_time_apart(
    clockwork: SimulatedScheduler,
    trigger: IntervalTrigger,
    until: str,
    expected: list[str],
    lag: timedelta,
) -> None:
    zone = trigger.timezone
    clockwork.add(trigger, start=trigger.start_date - timedelta(hours=1))
    assert Job.objects.get(id=JOB_ID).trigger["timezone"] == zone.key

    clockwork.run_until(at(until, zone), lag=lag)

    assert ledger(zone) == expected
    assert_all_ran(zone)
    times = run_times()
    assert {later - earlier for earlier, later in pairwise(times)} == {trigger.interval}


# -- catching up after an outage -------------------------------------------------------------


class Outage(NamedTuple):
    trigger: BaseTrigger
    start: str  # the job's first run is its first fire time after this
    wake: str  # the scheduler's only pass
    coalesce: bool
    expected: list[str]


EVERY_15_BERLIN = CronTrigger(minute="*/15", timezone=BERLIN)
EVERY_15_LORD_HOWE = CronTrigger(minute="*/15", timezone=LORD_HOWE)
DAILY_0230_BERLIN = CronTrigger(hour=2, minute=30, timezone=BERLIN)
DAILY_0215_LORD_HOWE = CronTrigger(hour=2, minute=15, timezone=LORD_HOWE)
BERLIN_FOLD_ALL = [
    "2026-10-25 02:00+02:00",
    "2026-10-25 02:15+02:00",
    "2026-10-25 02:30+02:00",
    "2026-10-25 02:45+02:00",
    "2026-10-25 02:00+01:00",
    "2026-10-25 02:15+01:00",
    "2026-10-25 02:30+01:00",
    "2026-10-25 02:45+01:00",
]

OUTAGES = [
    pytest.param(
        Outage(
            EVERY_15_BERLIN,
            start="2026-10-25 01:50",
            wake="2026-10-25 03:05",
            coalesce=False,
            expected=[*BERLIN_FOLD_ALL, "2026-10-25 03:00+01:00"],
        ),
        id="berlin-every-15-min-wakes-after-fold",
    ),
    pytest.param(
        Outage(
            EVERY_15_BERLIN,
            start="2026-10-25 01:50",
            wake="2026-10-25 03:05",
            coalesce=True,
            expected=["2026-10-25 03:00+01:00"],
        ),
        id="berlin-every-15-min-wakes-after-fold-coalesced",
    ),
    pytest.param(
        Outage(
            EVERY_15_BERLIN,
            start="2026-10-25 01:50",
            wake="2026-10-25 02:50+01:00",
            coalesce=False,
            expected=BERLIN_FOLD_ALL,
        ),
        id="berlin-every-15-min-wakes-in-second-pass-of-fold",
    ),
    pytest.param(
        Outage(
            EVERY_15_BERLIN,
            start="2026-10-25 01:50",
            wake="2026-10-25 02:50+01:00",
            coalesce=True,
            expected=["2026-10-25 02:45+01:00"],
        ),
        id="berlin-every-15-min-wakes-in-second-pass-of-fold-coalesced",
    ),
    pytest.param(
        Outage(
            EVERY_15_LORD_HOWE,
            start="2026-04-05 01:20",
            wake="2026-04-05 02:05+10:30",
            coalesce=False,
            expected=[
                "2026-04-05 01:30+11:00",
                "2026-04-05 01:45+11:00",
                "2026-04-05 01:30+10:30",
                "2026-04-05 01:45+10:30",
                "2026-04-05 02:00+10:30",
            ],
        ),
        id="lord-howe-every-15-min-wakes-after-fold",
    ),
    pytest.param(
        Outage(
            EVERY_15_LORD_HOWE,
            start="2026-04-05 01:20",
            wake="2026-04-05 02:05+10:30",
            coalesce=True,
            expected=["2026-04-05 02:00+10:30"],
        ),
        id="lord-howe-every-15-min-wakes-after-fold-coalesced",
    ),
    pytest.param(
        Outage(
            DAILY_0230_BERLIN,
            start="2026-03-27 03:00",
            wake="2026-03-29 04:00",
            coalesce=False,
            expected=["2026-03-28 02:30+01:00", "2026-03-29 03:30+02:00"],
        ),
        id="berlin-0230-daily-wakes-after-gap",
    ),
    pytest.param(
        Outage(
            DAILY_0230_BERLIN,
            start="2026-03-27 03:00",
            wake="2026-03-29 04:00",
            coalesce=True,
            expected=["2026-03-29 03:30+02:00"],
        ),
        id="berlin-0230-daily-wakes-after-gap-coalesced",
    ),
    pytest.param(
        Outage(
            DAILY_0215_LORD_HOWE,
            start="2026-10-02 03:00",
            wake="2026-10-04 04:00",
            coalesce=False,
            expected=["2026-10-03 02:15+10:30", "2026-10-04 02:45+11:00"],
        ),
        id="lord-howe-0215-daily-wakes-after-gap",
    ),
    pytest.param(
        Outage(
            DAILY_0215_LORD_HOWE,
            start="2026-10-02 03:00",
            wake="2026-10-04 04:00",
            coalesce=True,
            expected=["2026-10-04 02:45+11:00"],
        ),
        id="lord-howe-0215-daily-wakes-after-gap-coalesced",
    ),
    pytest.param(
        Outage(
            every(LORD_HOWE, "2026-04-05 01:00", minutes=30),
            start="2026-04-05 00:00",
            wake="2026-04-05 02:40+10:30",
            coalesce=False,
            expected=[
                "2026-04-05 01:00+11:00",
                "2026-04-05 01:30+11:00",
                "2026-04-05 01:30+10:30",
                "2026-04-05 02:00+10:30",
                "2026-04-05 02:30+10:30",
            ],
        ),
        id="lord-howe-30-min-interval-wakes-after-fold",
    ),
]


@pytest.mark.parametrize("outage", OUTAGES)
def test_catch_up_after_an_outage_runs_each_missed_time_once(
    clockwork: SimulatedScheduler, outage: Outage
) -> None:
    """The scheduler was down; one pass at ``wake`` catches up (no misfire limit)."""
    zone = outage.trigger.timezone
    clockwork.add(outage.trigger, start=at(outage.start, zone), coalesce=outage.coalesce)

    clockwork.tick(at(outage.wake, zone))

    # Each missed time once; coalesced, only the latest.
    assert ledger(zone) == outage.expected
    assert_all_ran(zone)
    # A second pass at the same instant finds nothing more to do.
    clockwork.tick(at(outage.wake, zone))
    assert ledger(zone) == outage.expected


FOLD_CASES = {
    name: CRON_CASES[name]
    for name in (
        "berlin-0230-daily-autumn-fold",
        "berlin-every-15-min-autumn-fold",
        "lord-howe-0145-daily-april-fold",
        "lord-howe-every-15-min-april-fold",
        "lord-howe-hourly-at-45-april-fold",
    )
}


@pytest.mark.parametrize(
    ("trigger", "start", "until", "expected"), list(FOLD_CASES.values()), ids=list(FOLD_CASES)
)
def test_coalescing_job_woken_on_time_in_a_fold_runs_each_time(
    clockwork: SimulatedScheduler,
    trigger: CronTrigger,
    start: str,
    until: str,
    expected: list[str],
) -> None:
    """The default (``coalesce=True``), with the scheduler waking exactly at the run time.

    At ``now == previous fire time``, APScheduler's CronTrigger returns that same instant
    again when it is given in UTC (as the store loads it) and the wall time is ambiguous,
    so ``_get_run_times`` yields it twice (UTC, then trigger zone); coalescing keeps the
    trigger-zone copy, which the claim must still run (it compares UTC instants).
    """
    zone = trigger.timezone
    clockwork.add(trigger, start=at(start, zone), coalesce=True)

    clockwork.run_until(at(until, zone))

    assert ledger(zone) == expected
    assert_all_ran(zone)


# -- storage: UTC in the columns, the zone in the trigger --------------------------------------


def test_times_are_stored_as_utc_and_triggers_keep_their_zone(
    clockwork: SimulatedScheduler,
) -> None:
    trigger = CronTrigger(minute="*/15", timezone=LORD_HOWE)
    clockwork.add(trigger, start=at("2026-04-05 01:40", LORD_HOWE))
    clockwork.run_until(at("2026-04-05 01:50+10:30", LORD_HOWE))

    row = Job.objects.get(id=JOB_ID)
    assert str(clockwork.scheduler.timezone) == SCHEDULER_ZONE
    assert row.trigger["timezone"] == "Australia/Lord_Howe"
    next_run = aware_utc(row.next_run_time, "Job.next_run_time")
    assert wall(next_run, LORD_HOWE) == "2026-04-05 02:00+10:30"
    assert ledger(LORD_HOWE) == [
        "2026-04-05 01:45+11:00",
        "2026-04-05 01:30+10:30",
        "2026-04-05 01:45+10:30",
    ]

    # What the columns hold, below the ORM: the UTC wall clock (a naive value or text on
    # MariaDB and SQLite; an absolute instant on PostgreSQL).
    table = JobExecution._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT scheduled_run_time FROM {table} WHERE job_id = %s ORDER BY scheduled_run_time",
            [JOB_ID],
        )
        raw = [value for (value,) in cursor.fetchall()]
    as_utc = []
    for value in raw:
        value = datetime.fromisoformat(value) if isinstance(value, str) else value
        value = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
        as_utc.append(value.isoformat(sep=" ", timespec="minutes"))
    assert as_utc == [
        "2026-04-04 14:45+00:00",
        "2026-04-04 15:00+00:00",
        "2026-04-04 15:15+00:00",
    ]


def test_api_add_job_keeps_the_trigger_zone_not_the_scheduler_zone(settings: Any) -> None:
    settings.CLOCKWORK = {**settings.CLOCKWORK, "TIMEZONE": SCHEDULER_ZONE}
    api.add_job(
        "tests.jobs:noop",
        "cron",
        id="lord-howe",
        hour=1,
        minute=45,
        timezone="Australia/Lord_Howe",
        next_run_time=at("2026-04-05 01:45+10:30", LORD_HOWE),
    )
    api.add_job(
        "tests.jobs:noop",
        "interval",
        id="berlin",
        minutes=30,
        start_date=at("2026-10-25 02:30+01:00", BERLIN),
        timezone="Europe/Berlin",
        next_run_time=at("2026-10-25 02:30+01:00", BERLIN),
    )

    api.add_job(  # no zone given: the scheduler's
        "tests.jobs:noop",
        "interval",
        id="default-zone",
        hours=1,
        next_run_time=at("2026-11-01 01:30-05:00", NEW_YORK),
    )

    rows = {row.id: row for row in Job.objects.all()}
    assert {job_id: row.trigger["timezone"] for job_id, row in rows.items()} == {
        "lord-howe": "Australia/Lord_Howe",
        "berlin": "Europe/Berlin",
        "default-zone": SCHEDULER_ZONE,
    }
    assert rows["berlin"].trigger["start_date"] == "2026-10-25T02:30:00+01:00"  # fold side kept
    next_runs = {
        job_id: wall(aware_utc(row.next_run_time, "Job.next_run_time"), row.trigger["timezone"])
        for job_id, row in rows.items()
    }
    assert next_runs == {
        "lord-howe": "2026-04-05 01:45+10:30",
        "berlin": "2026-10-25 02:30+01:00",
        "default-zone": "2026-11-01 01:30-05:00",  # New York's own fold, second pass
    }

    # Loaded back, the trigger fires in its own zone, at the fold's second 01:45.
    job = api.get_job("lord-howe")
    assert job is not None
    trigger = trigger_from_json(job.trigger)
    assert trigger.timezone == LORD_HOWE
    nxt = trigger.get_next_fire_time(None, at("2026-04-05 01:40+10:30", LORD_HOWE))
    assert nxt is not None
    assert wall(nxt, LORD_HOWE) == "2026-04-05 01:45+10:30"
