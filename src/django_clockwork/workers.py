"""``WorkerThreads``: the executor's pool of daemon threads.

``concurrent.futures.ThreadPoolExecutor`` joins its threads at interpreter exit, so one job
that hangs keeps the process alive for ever (an embedded scheduler's web worker never
exits). These threads are daemons: at exit, the runtime's bounded stop records the runs
still executing ``abandoned`` and the interpreter exits without waiting for them.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

#: A call for the threads: its future (None when posted without one, see
#: :meth:`WorkerThreads.post_at`), the function and its arguments.
_Task = tuple["Future[Any] | None", Callable[..., Any], tuple[Any, ...]]

logger = logging.getLogger(__name__)


class WorkerThreads:
    """Up to ``size`` daemon threads that run submitted calls in order; started on demand.

    :param size: the most threads that ever run at once
    :param name: the threads' name prefix (``clockwork-job_0``...)
    :param on_exit: called in each thread as it ends, after its last call (closes its
        database connections)
    """

    def __init__(self, size: int, name: str, on_exit: Callable[[], None] | None = None) -> None:
        self.size = size
        self.name = name
        self.on_exit = on_exit
        self._tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        #: One token per idle thread: put by the thread (a C call, no Python lock that a
        #: thread preempted while holding would make the submitting thread wait for), taken
        #: under ``_lock`` by whoever hands a task over.
        self._idle: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        #: Calls waiting for their time: (monotonic deadline, order, task); see post_at.
        self._later: list[tuple[float, int, _Task]] = []
        self._later_changed = threading.Condition(self._lock)
        self._order = itertools.count()
        self._timer: threading.Thread | None = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` in a worker thread; raises RuntimeError once shut down."""
        future: Future[Any] = Future()
        self.post_at(None, fn, *args, future=future)
        return future

    def submit_at(self, deadline: float, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Like :meth:`submit`, but the call joins the threads' queue at ``deadline``
        (``time.monotonic()``), taking no thread until then. A shutdown waits for such
        calls to join the queue first, so they run (or are abandoned) like any other."""
        future: Future[Any] = Future()
        self.post_at(deadline, fn, *args, future=future)
        return future

    def post_at(
        self,
        deadline: float | None,
        fn: Callable[..., Any],
        *args: Any,
        future: Future[Any] | None = None,
    ) -> None:
        """Run ``fn(*args)`` in a worker thread, at ``deadline`` (``time.monotonic()``) or
        at once (None). Without ``future`` (the executor, which counts its runs itself: a
        future per run cost as much as the rest of handing it over) what ``fn`` raises is
        logged; :meth:`submit` and :meth:`submit_at` pass theirs. Raises RuntimeError once
        shut down."""
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new work after shutdown")
            if deadline is None:
                self._hand((future, fn, args))
                return
            heapq.heappush(self._later, (deadline, next(self._order), (future, fn, args)))
            if self._timer is None:
                self._timer = threading.Thread(
                    target=self._time, name=f"{self.name}-timer", daemon=True
                )
                self._timer.start()
            self._later_changed.notify()

    def _hand(self, task: _Task) -> None:
        """Queue a task for the threads, starting one if none is idle (holding the lock)."""
        self._tasks.put(task)
        if not self._idle.empty():  # only holders of _lock take tokens: this one is ours
            self._idle.get_nowait()
        elif len(self._threads) < self.size:
            thread = threading.Thread(
                target=self._work, name=f"{self.name}_{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _time(self) -> None:
        """The timer thread: hands each call posted with a deadline over at it."""
        with self._lock:
            while True:
                while self._later and self._later[0][0] <= time.monotonic():
                    self._hand(heapq.heappop(self._later)[2])
                if not self._later:
                    self._later_changed.notify_all()  # a shutdown may wait for this
                    if self._closed:
                        return
                    self._later_changed.wait()
                else:
                    self._later_changed.wait(self._later[0][0] - time.monotonic())

    def shutdown(self, wait: bool = True) -> None:
        """Take no more work; with ``wait``, wait for the submitted calls to finish. Calls
        waiting for their time (:meth:`post_at`) are queued at it first, either way."""
        with self._lock:
            while self._later:
                self._later_changed.wait()
            if not self._closed:
                self._closed = True
                for _thread in self._threads:
                    self._tasks.put(None)
            self._later_changed.notify_all()  # the timer thread ends
        if wait:
            for thread in list(self._threads):
                thread.join()

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                if self.on_exit is not None:
                    self.on_exit()
                return
            future, fn, args = task
            del task
            if future is None:
                try:
                    fn(*args)
                except BaseException:
                    logger.exception("A call in worker thread %s raised", self.name)
                finally:
                    self._idle.put(None)
                continue
            if not future.set_running_or_notify_cancel():
                self._idle.put(None)
                continue
            try:
                result = fn(*args)
            except BaseException as exc:
                self._idle.put(None)  # before the caller hears: it may submit at once
                future.set_exception(exc)
                del exc
            else:
                self._idle.put(None)
                future.set_result(result)
                del result
            del future  # let the result go before waiting for the next call
