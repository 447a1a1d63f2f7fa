"""``WorkerThreads``: the executor's daemon threads."""

from __future__ import annotations

import threading
import time

import pytest

from django_clockwork.workers import WorkerThreads


def test_runs_calls_in_at_most_size_daemon_threads() -> None:
    pool = WorkerThreads(2, name="clockwork-test")
    release = threading.Event()
    names: list[str] = []

    def work(n: int) -> int:
        names.append(threading.current_thread().name)
        assert threading.current_thread().daemon
        release.wait(5)
        return n * 2

    futures = [pool.submit(work, n) for n in range(5)]
    release.set()
    assert [f.result(5) for f in futures] == [0, 2, 4, 6, 8]
    assert set(names) <= {"clockwork-test_0", "clockwork-test_1"}
    assert len(pool._threads) == 2
    pool.shutdown(wait=True)
    assert not any(thread.is_alive() for thread in pool._threads)


def test_an_idle_thread_is_reused() -> None:
    pool = WorkerThreads(4, name="clockwork-test")
    for n in range(3):
        assert pool.submit(lambda n=n: n).result(5) == n
    assert len(pool._threads) == 1
    pool.shutdown()


def test_an_exception_reaches_the_future() -> None:
    pool = WorkerThreads(1, name="clockwork-test")
    future = pool.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        future.result(5)
    pool.shutdown()


def test_shutdown_without_wait_leaves_a_hung_call_and_refuses_new_work() -> None:
    pool = WorkerThreads(1, name="clockwork-test")
    release = threading.Event()
    hung = pool.submit(release.wait, 10)
    pool.shutdown(wait=False)
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(print)
    assert not hung.done()
    release.set()
    assert hung.result(5) is True


def test_a_call_submitted_at_a_time_takes_no_thread_until_then() -> None:
    pool = WorkerThreads(1, name="clockwork-test")
    started: list[tuple[str, float]] = []
    now = time.monotonic()
    late = pool.submit_at(now + 0.3, lambda: started.append(("late", time.monotonic())))
    soon = pool.submit_at(now + 0.1, lambda: started.append(("soon", time.monotonic())))
    pool.submit(lambda: started.append(("now", time.monotonic()))).result(5)
    soon.result(5)
    late.result(5)
    assert [name for name, _at in started] == ["now", "soon", "late"]
    moments = dict(started)
    assert moments["soon"] >= now + 0.1
    assert moments["late"] >= now + 0.3
    pool.shutdown()


def test_shutdown_runs_the_calls_still_waiting_for_their_time() -> None:
    pool = WorkerThreads(2, name="clockwork-test")
    at = time.monotonic() + 0.2
    waiting = pool.submit_at(at, time.monotonic)
    pool.shutdown(wait=True)
    assert waiting.result(0) >= at
    with pytest.raises(RuntimeError):
        pool.submit_at(time.monotonic(), time.monotonic)


def test_a_posted_call_has_no_future_and_what_it_raises_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = WorkerThreads(1, name="clockwork-test")
    done = threading.Event()
    ran: list[float] = []
    pool.post_at(None, lambda: 1 / 0)
    at = time.monotonic() + 0.1
    pool.post_at(at, lambda: (ran.append(time.monotonic()), done.set()))
    assert done.wait(5)
    assert ran[0] >= at
    assert len(pool._threads) == 1  # the thread went on after the exception
    pool.shutdown(wait=True)
    (record,) = [r for r in caplog.records if r.name == "django_clockwork.workers"]
    assert "raised" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is ZeroDivisionError
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.post_at(None, print)
