"""``WorkerThreads``: the executor's pool of daemon threads.

``concurrent.futures.ThreadPoolExecutor`` joins its threads at interpreter exit, so one job
that hangs keeps the process alive for ever (an embedded scheduler's web worker never
exits). These threads are daemons: at exit, the runtime's bounded stop records the runs
still executing ``abandoned`` and the interpreter exits without waiting for them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

_Task = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...]]


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
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` in a worker thread; raises RuntimeError once shut down."""
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new work after shutdown")
            future: Future[Any] = Future()
            self._tasks.put((future, fn, args))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            return future

    def shutdown(self, wait: bool = True) -> None:
        """Take no more work; with ``wait``, wait for the submitted calls to finish."""
        with self._lock:
            if not self._closed:
                self._closed = True
                for _thread in self._threads:
                    self._tasks.put(None)
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
            if not future.set_running_or_notify_cancel():
                self._idle.release()
                continue
            try:
                result = fn(*args)
            except BaseException as exc:
                self._idle.release()  # before the caller hears: it may submit at once
                future.set_exception(exc)
                del exc
            else:
                self._idle.release()
                future.set_result(result)
                del result
            del future  # let the result go before waiting for the next call
