"""APScheduler's own scheduling pass and our claim agree on what runs.

``DjangoJobStore`` computes in its claim what ``BaseScheduler._process_jobs`` computes (the run
times through ``Job._get_run_times``, coalescing, the next fire time). Here APScheduler's stock
scheduling pass runs under a frozen clock over two stores side by side: its own
``MemoryJobStore``, where the pass itself decides, and ``DjangoJobStore``, where the claim
decides. Each scheduler's executor records what it is handed (for our store, the run times the
claim wrote to the ledger, which are what our executor runs). After every pass both must have
handed over the same run times and left the job the same next run time.

``misfire_grace_time`` is applied by APScheduler's executors, not by its pass: a late run time is
handed over and then recorded as missed. Our claim records run times older than the grace time as
one ``missed`` row instead (so that a backlog of any size costs one row, see ``backlog.py``), so
what is compared is what each side runs, what it records missed, and the next run time; every
case also runs with a tight grace time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest
from apscheduler.executors.base import BaseExecutor
from apscheduler.jobstores.base import BaseJobStore
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from django_clockwork import DjangoJobStore
from django_clockwork.models import ExecutionStatus, JobExecution

from .conftest import utc

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")  # 2030: gap on 31 March 02:00-03:00, fold on 27 October


def berlin(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=BERLIN, fold=fold)  # type: ignore[misc]


class FrozenClock(datetime):
    """Stands in for ``datetime`` in APScheduler's scheduler module: ``now()`` is ``current``."""

    current: ClassVar[datetime]

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return cls.current.astimezone(tz)


class HandDriven(BaseScheduler):  # type: ignore[misc]
    """APScheduler's base scheduler without a loop: the test runs each pass itself."""

    def wakeup(self) -> None:
        pass

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)


class Recorder(BaseExecutor):  # type: ignore[misc]
    """Records the run times it is handed, in UTC; runs nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.handed: list[datetime] = []

    def outcome(self, now: datetime, grace: int | None) -> tuple[list[datetime], list[datetime]]:
        """The run times an executor would run at ``now``, and those it would record missed."""
        late = [t for t in self.handed if grace is not None and now - t > timedelta(seconds=grace)]
        return [t for t in self.handed if t not in late], late

    def submit_job(self, job: Any, run_times: list[datetime]) -> None:
        self._do_submit_job(job, run_times)  # no max_instances bookkeeping: nothing finishes

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        claim = getattr(job, "_clockwork_claim", None)
        times = claim.run_times if claim is not None else run_times
        self.handed.extend(t.astimezone(timezone.utc) for t in times)


@dataclass(frozen=True)
class Case:
    id: str
    trigger: Callable[[], BaseTrigger]
    added: datetime  # when the job is added (its first next run time is computed then)
    passes: tuple[datetime, ...]  # when the scheduler wakes up, each a scheduling pass


CASES = [
    Case(
        "cron-hourly-across-gap",
        lambda: CronTrigger(minute=30, timezone=BERLIN),
        berlin(2030, 3, 30, 23, 50),
        (berlin(2030, 3, 31, 4, 45), berlin(2030, 3, 31, 5, 31)),
    ),
    Case(
        "cron-daily-in-gap",
        lambda: CronTrigger(hour=2, minute=30, timezone=BERLIN),
        berlin(2030, 3, 29, 12),
        (berlin(2030, 3, 31, 12), berlin(2030, 4, 1, 3)),
    ),
    Case(
        "cron-hourly-across-fold",
        lambda: CronTrigger(minute=30, timezone=BERLIN),
        berlin(2030, 10, 27, 0, 10),
        (berlin(2030, 10, 27, 2, 40), berlin(2030, 10, 27, 2, 40, fold=1), berlin(2030, 10, 27, 5)),
    ),
    Case(
        "cron-quarter-hours-across-fold",
        lambda: CronTrigger(minute="*/15", timezone=BERLIN),
        berlin(2030, 10, 27, 1, 50),
        (berlin(2030, 10, 27, 2, 20, fold=1), berlin(2030, 10, 27, 3, 5)),
    ),
    Case(
        "cron-daily-in-fold",
        lambda: CronTrigger(hour=2, minute=30, timezone=BERLIN),
        berlin(2030, 10, 26, 12),
        (berlin(2030, 10, 27, 2, 45), berlin(2030, 10, 27, 4), berlin(2030, 10, 28, 9)),
    ),
    Case(
        "interval-hourly-across-fold",
        lambda: IntervalTrigger(hours=1, start_date=berlin(2030, 10, 26, 23, 30), timezone=BERLIN),
        berlin(2030, 10, 26, 23),
        (berlin(2030, 10, 27, 2, 35, fold=1), berlin(2030, 10, 27, 6)),
    ),
    Case(
        "interval-until-end-date",
        lambda: IntervalTrigger(
            minutes=7, start_date=utc(2030, 1, 1), end_date=utc(2030, 1, 1, 1), timezone="UTC"
        ),
        utc(2029, 12, 31, 23),
        (utc(2030, 1, 1, 0, 40), utc(2030, 1, 1, 1, 30)),
    ),
    Case(
        "calendarinterval-daily-in-gap",
        lambda: CalendarIntervalTrigger(
            days=1, hour=2, minute=30, start_date=date(2030, 3, 29), timezone=BERLIN
        ),
        berlin(2030, 3, 29, 1),
        (berlin(2030, 3, 31, 12), berlin(2030, 4, 2, 12)),
    ),
    Case(
        "calendarinterval-monthly-end",
        lambda: CalendarIntervalTrigger(
            months=1,
            hour=9,
            start_date=date(2030, 1, 31),
            end_date=date(2030, 5, 1),
            timezone=BERLIN,
        ),
        berlin(2030, 1, 1),
        (berlin(2030, 3, 15), berlin(2030, 6, 1)),
    ),
    Case(
        "date-missed",
        lambda: DateTrigger(berlin(2030, 6, 1, 9), timezone=BERLIN),
        berlin(2030, 5, 1),
        (berlin(2030, 6, 1, 8), berlin(2030, 6, 2)),
    ),
    Case(
        "or-cron-and-interval-across-gap",
        lambda: OrTrigger(
            [
                CronTrigger(hour=2, minute=30, timezone=BERLIN),
                IntervalTrigger(hours=5, start_date=berlin(2030, 3, 30, 20), timezone=BERLIN),
            ]
        ),
        berlin(2030, 3, 30, 19),
        (berlin(2030, 3, 31, 9), berlin(2030, 4, 1, 9)),
    ),
    Case(
        # After a fire time APScheduler 3's AndTrigger settles only if its parts agree on the
        # very next time (else it loops for ever, in its own pass as in the claim: upstream
        # issue #281), so the parts here are crons that always agree.
        "and-agreeing-crons-across-fold",
        lambda: AndTrigger(
            [
                CronTrigger(minute="*/30", timezone=BERLIN),
                CronTrigger(minute="0,30", hour="*", timezone=BERLIN),
            ]
        ),
        berlin(2030, 10, 27, 0, 10),
        (berlin(2030, 10, 27, 2, 40, fold=1), berlin(2030, 10, 27, 5, 5)),
    ),
]

#: After each pass: the run times run, a summary of those recorded missed (their first and last
#: and how many; with coalesce only the last, APScheduler records only that one), and the job's
#: next run time (None when the job is finished and gone).
Outcome = list[tuple[list[datetime], tuple[Any, ...] | None, datetime | None]]

MISSED_TEXT = re.compile(
    r"Missed (?P<count>\d+) run time\(s\) "
    r"(?:at (?P<at>\S+ \S+)|from (?P<first>\S+ \S+) to (?P<last>\S+ \S+)):"
)


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> type[FrozenClock]:
    monkeypatch.setattr("apscheduler.schedulers.base.datetime", FrozenClock)
    return FrozenClock


def summary(late: list[datetime], coalesce: bool) -> tuple[Any, ...] | None:
    if not late:
        return None
    return (max(late),) if coalesce else (min(late), max(late), len(late))


def backlog_rows(seen: set[int], coalesce: bool) -> tuple[Any, ...] | None:
    """The summary of the ``missed`` rows our claim wrote since the last pass (at most one)."""
    rows = list(
        JobExecution.objects.filter(job_id="job", status=ExecutionStatus.MISSED).exclude(
            id__in=seen
        )
    )
    seen.update(row.id for row in rows)
    if not rows:
        return None
    assert len(rows) == 1, "a claim writes one missed row per job"
    match = MISSED_TEXT.match(rows[0].exception)
    assert match, rows[0].exception
    first = datetime.fromisoformat(match["at"] or match["first"])
    last = datetime.fromisoformat(match["at"] or match["last"])
    assert first == rows[0].scheduled_run_time
    return (last,) if coalesce else (first, last, int(match["count"]))


def drive(store: BaseJobStore, case: Case, clock: type[FrozenClock], **options: Any) -> Outcome:
    """Add the case's job to a stock scheduler over ``store`` and run its passes."""
    scheduler = HandDriven(timezone=BERLIN)
    recorder = Recorder()
    scheduler.add_executor(recorder, "default")
    scheduler.add_jobstore(store, "default")
    clock.current = case.added
    scheduler.start()
    scheduler.add_job("tests.jobs:noop", case.trigger(), id="job", **options)
    coalesce = bool(options.get("coalesce"))
    seen: set[int] = set()
    outcome: Outcome = []
    for now in case.passes:
        clock.current = now
        recorder.handed = []
        scheduler._process_jobs()
        job = store.lookup_job("job")
        next_run = job.next_run_time.astimezone(timezone.utc) if job and job.next_run_time else None
        ran, late = recorder.outcome(now, options.get("misfire_grace_time"))
        missed = summary(late, coalesce)
        if isinstance(store, DjangoJobStore):
            assert not late, "a claim hands the executor no run time older than the grace time"
            missed = backlog_rows(seen, coalesce)
        outcome.append((ran, missed, next_run))
    scheduler.shutdown()
    return outcome


@pytest.mark.parametrize("misfire_grace_time", [None, 1], ids=["no-grace", "grace-1s"])
@pytest.mark.parametrize("coalesce", [False, True], ids=["each", "coalesce"])
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_claim_hands_out_what_apscheduler_would(
    frozen_clock: type[FrozenClock], case: Case, coalesce: bool, misfire_grace_time: int | None
) -> None:
    options = {"coalesce": coalesce, "misfire_grace_time": misfire_grace_time}
    apscheduler = drive(MemoryJobStore(), case, frozen_clock, **options)
    clockwork = drive(DjangoJobStore(), case, frozen_clock, **options)
    assert clockwork == apscheduler
    assert any(ran or missed for ran, missed, _next in apscheduler), "the case must have runs"


def test_cases_include_several_missed_run_times(frozen_clock: type[FrozenClock]) -> None:
    """Without coalescing some pass hands over several late run times at once."""
    several = [
        case.id
        for case in CASES
        if any(
            len(ran) > 1
            for ran, _missed, _next in drive(MemoryJobStore(), case, frozen_clock, coalesce=False)
        )
    ]
    assert len(several) >= len(CASES) // 2, several
