"""``manage.py seed_demo``: add (or reset) the demo's four sample jobs; safe to run again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from demo_app import jobs
from django_clockwork import api


class Command(BaseCommand):
    help = "Add the demo's sample jobs (replacing them if they exist)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--start-now",
            action="store_true",
            help="Run the interval jobs once right away instead of after their first interval.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        soon = {"next_run_time": now} if options["start_now"] else {}
        added = [
            api.add_job(
                jobs.report,
                "cron",
                minute="*",
                kwargs={"title": "minutely report"},
                id="demo-report",
                name="Minutely report (cron, second 0)",
                replace_existing=True,
            ),
            api.add_job(
                jobs.heartbeat,
                "interval",
                seconds=10,
                id="demo-heartbeat",
                name="Heartbeat (every 10 s)",
                replace_existing=True,
                **soon,
            ),
            api.add_job(
                jobs.always_fails,
                "interval",
                seconds=15,
                id="demo-fails",
                name="Fails on purpose (every 15 s)",
                replace_existing=True,
                **soon,
            ),
            api.add_job(
                jobs.async_greeting,
                "date",
                run_date=timezone.localtime(now + timedelta(seconds=30)),
                args=["demo"],
                id="demo-once",
                name="One-off async greeting (30 s after seeding)",
                replace_existing=True,
            ),
        ]
        for job in added:
            stored = api.get_job(job.id)  # the store may keep the row's time (same trigger)
            next_run = stored.next_run_time if stored else None
            when = f"{timezone.localtime(next_run):%H:%M:%S %Z}" if next_run else "paused"
            self.stdout.write(f"  {job.id:<15} next run {when:<13} {job.name}")
        self.stdout.write(self.style.SUCCESS(f"Seeded {len(added)} demo jobs."))
