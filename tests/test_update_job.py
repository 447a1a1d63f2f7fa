"""When ``update_job`` writes a job's ``next_run_time``, and when the row keeps its own.

The writer's time is written when it changed it on purpose (a pause, a reschedule, APScheduler's
contract); a copy that only carries an old time never restores it over a claim's advance.
"""

from __future__ import annotations

import gc
from datetime import datetime

import pytest

from django_clockwork import DjangoJobStore
from django_clockwork.models import Job
from django_clockwork.rows import SyncedRunTimes

from .conftest import MakeJob, utc
from .test_claim import EVERY_MINUTE, claim_pass

pytestmark = pytest.mark.django_db


def stored_next(job_id: str = "tick") -> datetime | None:
    return Job.objects.get(id=job_id).next_run_time


@pytest.mark.parametrize("new_time", [utc(2029, 6, 1), None], ids=["earlier", "pause"])
def test_object_given_to_add_job_sets_a_new_time(
    store: DjangoJobStore, make_job: MakeJob, new_time: datetime | None
) -> None:
    job = make_job("tick", trigger=EVERY_MINUTE)
    store.add_job(job)
    job._modify(next_run_time=new_time)
    store.update_job(job)
    assert stored_next() == new_time


def test_object_given_to_add_job_does_not_undo_a_claim(
    store: DjangoJobStore, make_job: MakeJob
) -> None:
    job = make_job("tick", func="tests.jobs:echo", trigger=EVERY_MINUTE)
    store.add_job(job)
    claim_pass(store, utc(2030, 1, 1, 0, 0, 1))  # another scheduler fires 00:00
    job._modify(args=(7,))
    store.update_job(job)
    row = Job.objects.get(id="tick")
    assert (row.args, row.next_run_time) == ([7], utc(2030, 1, 1, 0, 1))


def test_object_does_not_restore_a_time_it_wrote_earlier(
    store: DjangoJobStore, make_job: MakeJob
) -> None:
    store.add_job(make_job("tick", func="tests.jobs:echo", trigger=EVERY_MINUTE))
    job = store.lookup_job("tick")
    assert job is not None
    job._modify(next_run_time=utc(2030, 1, 1, 0, 0, 30))
    store.update_job(job)  # written: the writer changed it
    claim_pass(store, utc(2030, 1, 1, 0, 0, 31))  # fires 00:00:30, advances to 00:01:30
    job._modify(args=(7,))
    store.update_job(job)
    assert stored_next() == utc(2030, 1, 1, 0, 1, 30)
    assert claim_pass(store, utc(2030, 1, 1, 0, 0, 32)) == []


def test_re_added_object_keeps_the_stored_time_on_later_writes(
    store: DjangoJobStore, make_job: MakeJob
) -> None:
    store.add_job(make_job("tick", func="tests.jobs:echo", trigger=EVERY_MINUTE))
    claim_pass(store, utc(2030, 1, 1, 0, 0, 1))
    again = make_job("tick", func="tests.jobs:echo", trigger=EVERY_MINUTE)  # a restart
    store.update_job(again)
    assert stored_next() == utc(2030, 1, 1, 0, 1)
    again._modify(args=(7,))
    store.update_job(again)
    assert stored_next() == utc(2030, 1, 1, 0, 1)
    again._modify(next_run_time=None)
    store.update_job(again)
    assert stored_next() is None


def test_synced_run_times_follow_the_object(make_job: MakeJob) -> None:
    synced = SyncedRunTimes()
    job = make_job("tick", trigger=EVERY_MINUTE)
    assert synced.changed(job) is None
    synced.remember(job)
    assert synced.changed(job) is False
    assert synced.changed(make_job("tick", trigger=EVERY_MINUTE)) is None  # equal, not the same
    job._modify(next_run_time=None)
    assert synced.changed(job) is True
    del job
    gc.collect()
    assert synced._times == {}  # the store keeps no job alive
