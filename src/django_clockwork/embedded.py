"""Embedded mode: a background scheduler inside each web worker process.

Wrap the WSGI or ASGI application; the first request each process serves starts
its scheduler, in a thread of its own, so it always starts after the server forked
its workers, never in a process that only runs ``migrate`` or another command, and
once per process under runserver's autoreloader (only its serving child handles
requests). Claims are atomic, so any number of embedded schedulers may run.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from apscheduler.schedulers.base import BaseScheduler

# Nothing here imports the models at import time: wsgi.py and asgi.py import this module
# before get_wsgi_application() has set Django up.

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_scheduler: BaseScheduler | None = None
_owner_pid: int | None = None


def start() -> BaseScheduler:
    """Start this process's embedded scheduler, once; returns it."""
    global _scheduler, _owner_pid
    with _lock:
        if _scheduler is not None and _owner_pid == os.getpid():
            return _scheduler
        from django_clockwork.runtime import at_exit, create_scheduler

        scheduler = create_scheduler()
        scheduler.start()
        _scheduler, _owner_pid = scheduler, os.getpid()
        at_exit(stop)  # bounded: SHUTDOWN_TIMEOUT, then its runs are recorded abandoned
        logger.info("Embedded scheduler started in pid %d", _owner_pid)
        return scheduler


def stop(timeout: float | None = None) -> None:
    """Shut this process's embedded scheduler down: it claims no more runs and waits up to
    ``timeout`` seconds (default ``CLOCKWORK['SHUTDOWN_TIMEOUT']``) for running jobs; runs
    still executing then are recorded ``abandoned``."""
    global _scheduler, _owner_pid
    with _lock:
        scheduler, owner = _scheduler, _owner_pid
        _scheduler = _owner_pid = None
    if scheduler is not None and owner == os.getpid() and scheduler.running:
        from django_clockwork.conf import get_conf

        limit = get_conf().shutdown_timeout if timeout is None else timeout
        scheduler.runtime.stop_gracefully(limit)


def running() -> bool:
    """Whether this process has started its embedded scheduler."""
    return _scheduler is not None and _owner_pid == os.getpid()


def _start_in_background() -> None:
    if running():
        return
    threading.Thread(target=_start_logged, name="clockwork-embedded-start", daemon=True).start()


def _start_logged() -> None:
    try:
        start()
    except Exception:
        logger.exception("The embedded scheduler could not start in pid %d", os.getpid())


def _is_asgi(application: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(application) or inspect.iscoroutinefunction(
        type(application).__call__
    )


def with_scheduler(application: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a WSGI or ASGI application so each serving process runs an embedded scheduler.

    ``application = with_scheduler(get_wsgi_application())`` in ``wsgi.py``, or the same
    with ``get_asgi_application()`` in ``asgi.py``.
    """
    if _is_asgi(application):

        async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> Any:
            _start_in_background()
            return await application(scope, receive, send)

        return asgi

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        _start_in_background()
        result: Iterable[bytes] = application(environ, start_response)
        return result

    return wsgi
