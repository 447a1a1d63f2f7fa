"""``manage.py seed_demo``: sync the demo's declared jobs and add its one-off job; safe to run
again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from demo_app import jobs
from django_clockwork import api, declarations


class Command(BaseCommand):
    help = "Sync the demo's declared jobs and add (or reset) its one-off job."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--start-now",
            action="store_true",
            help="Run the interval jobs once right away instead of after their first interval.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        # The recurring jobs are declared in demo_app/jobs.py: sync them now (a starting
        # scheduler does the same), so that the admin shows them before any scheduler runs.
        for line in declarations.sync().lines():
            self.stdout.write(f"  declared jobs: {line}")
        if options["start_now"]:
            for job_id in ("demo-heartbeat", "demo-fails"):
                api.modify_job(job_id, next_run_time=now)
        once = api.add_job(
            jobs.async_greeting,
            "date",
            run_date=timezone.localtime(now + timedelta(seconds=30)),
            args=["demo"],
            id="demo-once",
            name="One-off async greeting (30 s after seeding)",
            replace_existing=True,
        )
        ids = ["demo-report", "demo-heartbeat", "demo-fails", once.id]
        for job_id in ids:
            stored = api.get_job(job_id)
            next_run = stored.next_run_time if stored else None
            when = f"{timezone.localtime(next_run):%H:%M:%S %Z}" if next_run else "paused"
            name = stored.name if stored else job_id
            self.stdout.write(f"  {job_id:<15} next run {when:<13} {name}")
        self.stdout.write(self.style.SUCCESS(f"Seeded {len(ids)} demo jobs."))
