"""A job's recent runs as a small SVG bar chart, drawn on the server.

One bar per run, oldest on the left: its height is the run's duration, its colour and symbol
its outcome; each bar has a ``<title>`` (shown on hover, read by screen readers). The chart is
plain markup: no script, no external asset.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from django_clockwork.admin import display
from django_clockwork.models import JobExecution

WIDTH, HEIGHT, BOTTOM, LEFT = 640, 140, 24, 56
COLOURS = {
    "ok": "#2e7d32",
    "bad": "#c62828",
    "warn": "#b26a00",
    "running": "#1565c0",
    "waiting": "#9e9e9e",
}


def runs_chart(runs: Sequence[JobExecution]) -> SafeString:
    """``runs`` (newest first, as listed) as an SVG chart of duration and outcome."""
    ordered = list(reversed(runs))
    if not ordered:
        return format_html("{}", "")
    longest = max((run.duration or 0.0) for run in ordered) or 1.0
    plot_height = HEIGHT - BOTTOM - 8
    step = (WIDTH - LEFT - 8) / len(ordered)
    bars = []
    for index, run in enumerate(ordered):
        height = max(2.0, (run.duration or 0.0) / longest * plot_height)
        colour = COLOURS[display.OUTCOMES.get(run.status, ("", "waiting"))[1]]
        title = (
            f"{display.moment(run.scheduled_run_time)}: {run.status}, "
            f"{display.duration(run.duration)}"
        )
        x = LEFT + index * step + step * 0.15
        box = (x, HEIGHT - BOTTOM - height, max(1.0, step * 0.7), height)
        bars.append((*(f"{number:.1f}" for number in box), colour, title))
    rects = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
        bars,
    )
    first, last = ordered[0], ordered[-1]
    return format_html(
        '<svg class="cw-chart" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        'xmlns="http://www.w3.org/2000/svg" aria-labelledby="cw-chart-title">'
        '<title id="cw-chart-title">Duration and outcome of the last {n} runs, oldest first'
        "</title>"
        '<line x1="{left}" y1="{base}" x2="{w}" y2="{base}" stroke="#999"/>'
        '<line x1="{left}" y1="8" x2="{left}" y2="{base}" stroke="#999"/>'
        '<text x="{tick}" y="16" font-size="11" text-anchor="end" fill="currentColor">{top}</text>'
        '<text x="{tick}" y="{base}" font-size="11" text-anchor="end" fill="currentColor">0</text>'
        "{rects}"
        '<text x="{left}" y="{label}" font-size="11" fill="currentColor">{first}</text>'
        '<text x="{w}" y="{label}" font-size="11" text-anchor="end" fill="currentColor">{last}'
        "</text></svg>",
        w=WIDTH,
        h=HEIGHT,
        n=len(ordered),
        left=LEFT,
        tick=LEFT - 4,
        base=HEIGHT - BOTTOM,
        label=HEIGHT - 6,
        top=display.duration(longest),
        rects=rects,
        first=display.moment(first.scheduled_run_time),
        last=display.moment(last.scheduled_run_time),
    )
