"""How the admin shows times, durations and outcomes: text first, colour second.

Everything here returns plain text or escaped HTML (``format_html``); nothing reads the
database. Times are shown in the viewer's current time zone (Django's active one) with seconds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from django_clockwork.models import ExecutionStatus, JobExecution

S = ExecutionStatus

#: status -> (symbol, css class); the text label is always shown beside the symbol.
OUTCOMES: dict[str, tuple[str, str]] = {
    S.SCHEDULED: ("\u25cb", "waiting"),
    S.RUNNING: ("\u25b6", "running"),
    S.SUCCEEDED: ("\u2714", "ok"),
    S.FAILED: ("\u2716", "bad"),
    S.MISSED: ("\u26a0", "warn"),
    S.SKIPPED: ("\u23ed", "warn"),
    S.ABANDONED: ("\u2716", "bad"),
    S.ENQUEUED: ("\u21aa", "ok"),
}
EMPTY = "-"


def moment(value: datetime | None) -> str:
    """An aware time in the viewer's zone, to the second: ``2026-12-02 09:00:05 CET``."""
    if value is None:
        return EMPTY
    local = timezone.localtime(value)
    return f"{local:%Y-%m-%d %H:%M:%S} {local:%Z}".rstrip()


def duration(seconds: float | None) -> str:
    """``0.6 ms``, ``48 ms``, ``2.3 s``, ``4 min 12 s``, ``3 h 5 min``."""
    if seconds is None:
        return EMPTY
    if seconds < 0.001:
        return f"{seconds * 1000:.2g} ms"
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


def span(seconds: float) -> str:
    """A coarse span for relative times: ``12 s``, ``4 min``, ``3 h``, ``2 d``."""
    seconds = abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def relative(value: datetime, now: datetime) -> str:
    """``in 4 min``, ``12 s ago``, ``now``."""
    seconds = (value - now).total_seconds()
    if abs(seconds) < 1:
        return "now"
    return f"in {span(seconds)}" if seconds > 0 else f"{span(seconds)} ago"


def lateness(scheduled: datetime | None, started: datetime | None) -> str:
    """How late a run started after its scheduled time (``-`` if it did not start)."""
    if scheduled is None or started is None:
        return EMPTY
    late = (started - scheduled).total_seconds()
    return "on time" if abs(late) < 0.0005 else f"{duration(late)} late" if late > 0 else "early"


def outcome(status: str, *, symbol_only: bool = False) -> SafeString:
    """An outcome as a coloured symbol and its text label (the label is the title alone when
    ``symbol_only``, for the strips of recent runs)."""
    symbol, css = OUTCOMES.get(status, ("?", "waiting"))
    label = str(S(status).label) if status in S.values else status
    if symbol_only:
        return format_html(
            '<span class="cw-dot cw-{}" title="{}" aria-label="{}">{}</span>',
            css,
            label,
            label,
            symbol,
        )
    return format_html('<span class="cw-outcome cw-{}">{} {}</span>', css, symbol, label)


def age(delta: timedelta | None) -> str:
    return EMPTY if delta is None else f"{span(delta.total_seconds())} ago"


def node(hostname: str, pid: int | None) -> str:
    if not hostname:
        return EMPTY
    return f"{hostname}:{pid}" if pid else hostname


def run_cells(run: JobExecution) -> dict[str, Any]:
    """A run as a row of a table: what the history list shows, as text."""
    source = str(run.get_trigger_source_display())
    return {
        "pk": run.pk,
        "scheduled": moment(run.scheduled_run_time),
        "started": moment(run.started_at),
        "lateness": lateness(run.scheduled_run_time, run.started_at),
        "duration": duration(run.duration),
        "outcome": outcome(run.status),
        "node": node(run.hostname, run.pid),
        "source": f"{source} ({run.requested_by})" if run.requested_by else source,
    }
