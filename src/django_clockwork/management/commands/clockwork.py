"""``manage.py clockwork <subcommand>``: django-clockwork's tools, one class per subcommand.

Exit codes: 0 done; 1 a ``CommandError`` (the message says what to do); 2 bad arguments
(an unknown subcommand, an unknown option, as argparse does; an unknown job id).
"""

from __future__ import annotations

import argparse
import getpass
import itertools
import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

from django_clockwork import api, declarations
from django_clockwork.conf import get_conf
from django_clockwork.describe import describe
from django_clockwork.exceptions import InvalidJobError, JobNotFoundError
from django_clockwork.ledger import FINISHED
from django_clockwork.models import ExecutionStatus, Job, JobExecution
from django_clockwork.retention import Policy, Pruner


class Subcommand:
    """One ``clockwork`` subcommand: its name, help, arguments and what it does."""

    name: ClassVar[str]
    help: ClassVar[str]

    def add_arguments(self, parser: CommandParser) -> None:
        """Add this subcommand's own options."""

    def handle(self, command: BaseCommand, **options: Any) -> None:
        raise NotImplementedError  # pragma: no cover - every subcommand defines it


class Prune(Subcommand):
    name = "prune"
    help = (
        "Delete the history and finished one-off jobs that HISTORY_MAX_AGE, "
        "HISTORY_MAX_PER_JOB and FINISHED_JOB_RETENTION no longer keep (what the running "
        "schedulers do every PRUNE_INTERVAL), and print what was removed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be removed; delete nothing.",
        )

    def handle(self, command: BaseCommand, **options: Any) -> None:
        conf = get_conf()
        policy = Policy.from_conf(conf)
        if not policy.enabled:
            self._say(
                command,
                options,
                "Nothing to prune: HISTORY_MAX_AGE, HISTORY_MAX_PER_JOB and "
                "FINISHED_JOB_RETENTION are all None.",
            )
            return
        pruner = Pruner(conf.database, policy)
        if options["dry_run"]:
            report, heading = pruner.plan(), "Would remove (dry run, nothing deleted):"
        else:
            report, heading = pruner.prune(), "Removed:"
        self._say(command, options, "\n  ".join([heading, *report.lines()]))

    def _say(self, command: BaseCommand, options: dict[str, Any], text: str) -> None:
        if options["verbosity"] > 0:
            command.stdout.write(text)


def state_of(row: Job) -> str:
    """``active``, ``paused``, ``finished``, ``undeclared`` (a code job no longer declared) or
    ``broken`` (a row no scheduler can load)."""
    if row.load_error:
        return "broken"
    if row.finished_at is not None:
        return "finished"
    if row.undeclared_at is not None:
        return "undeclared"  # a code job no longer declared: paused by the sync
    return "paused" if row.next_run_time is None else "active"


def _annotation(row: Job, name: str) -> Any:
    """A value the list query annotated the row with."""
    return getattr(row, name)


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _unknown(job_id: str) -> CommandError:
    return CommandError(
        f"No job with id {job_id!r} (manage.py clockwork list shows the ids).", returncode=2
    )


#: ``clockwork list`` sizes its columns to this many first rows, then streams the rest.
LIST_WIDTH_ROWS = 500
_LIST_COLUMNS = (
    "id",
    "name",
    "func",
    "trigger",
    "next_run_time",
    "finished_at",
    "undeclared_at",
    "load_error",
    "source",
)


class List(Subcommand):
    name = "list"
    help = (
        "List every job: id, schedule in words, next run (UTC), state (active, paused, "
        "finished, broken) and the outcome of its latest run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json", action="store_true", help="One JSON object per job, in a list."
        )

    def handle(self, command: BaseCommand, **options: Any) -> None:
        latest = JobExecution.objects.using(get_conf().database).filter(job_id=OuterRef("id"))
        latest = latest.order_by("-scheduled_run_time")
        rows = (
            Job.objects.using(get_conf().database)
            .only(*_LIST_COLUMNS)
            .annotate(
                last_outcome=Subquery(latest.values("status")[:1]),
                last_run=Subquery(latest.values("scheduled_run_time")[:1]),
            )
            .order_by(F("next_run_time").asc(nulls_last=True), "id")
            .iterator(chunk_size=1000)  # streams: one chunk of rows at a time
        )
        if options["json"]:
            self._json(command, rows)
        else:
            self._table(command, options, rows)

    def _json(self, command: BaseCommand, rows: Iterator[Job]) -> None:
        command.stdout.write("[")
        for index, row in enumerate(rows):
            entry = {
                "id": row.id,
                "name": row.name,
                "func": row.func,
                "task": row.task,
                "description": describe(row.trigger),
                "trigger": row.trigger if isinstance(row.trigger, dict) else None,
                "next_run_time": row.next_run_time.isoformat() if row.next_run_time else None,
                "state": state_of(row),
                "last_outcome": _annotation(row, "last_outcome"),
                "last_run_time": _annotation(row, "last_run").isoformat()
                if _annotation(row, "last_run")
                else None,
                "source": row.source,
                "load_error": row.load_error,
            }
            prefix = "\n  " if index == 0 else ",\n  "
            command.stdout.write(prefix + json.dumps(entry), ending="")
        command.stdout.write("\n]")

    def _table(self, command: BaseCommand, options: dict[str, Any], rows: Iterator[Job]) -> None:
        """Columns as wide as their widest cell among the first ``LIST_WIDTH_ROWS`` rows; a
        longer cell further down pushes the rest of its line to the right."""
        header = ("ID", "SCHEDULE", "NEXT RUN", "STATE", "LAST RUN")
        first = [_line(row) for row in itertools.islice(rows, LIST_WIDTH_ROWS)]
        if not first:
            if options["verbosity"] > 0:
                command.stdout.write("No jobs.")
            return
        widths = [max(len(line[i]) for line in [header, *first]) for i in range(4)]
        for line in itertools.chain([header], first, map(_line, rows)):
            cells = [cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(line)]
            command.stdout.write("  ".join(cells).rstrip())


def _line(row: Job) -> tuple[str, str, str, str, str]:
    outcome = _annotation(row, "last_outcome")
    last = "-" if outcome is None else f"{outcome} ({_when(_annotation(row, 'last_run'))})"
    return (row.id, describe(row.trigger), _when(row.next_run_time), state_of(row), last)


class Show(Subcommand):
    name = "show"
    help = "Show one job: every stored field, its schedule in words and its latest runs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job_id", help="The job's id.")
        parser.add_argument(
            "--runs", type=int, default=10, help="How many of its latest runs to show (10)."
        )

    def handle(self, command: BaseCommand, **options: Any) -> None:
        database = get_conf().database
        row = Job.objects.using(database).filter(id=options["job_id"]).first()
        if row is None:
            raise _unknown(options["job_id"])
        fields = [
            ("id", row.id),
            ("name", row.name),
            ("function", row.func),
            *([("task", f"{row.task} {json.dumps(row.task_options)}")] if row.task else []),
            ("schedule", describe(row.trigger)),
            (
                "trigger",
                json.dumps(row.trigger) if isinstance(row.trigger, dict) else "(undecodable)",
            ),
            ("state", state_of(row)),
            ("next run", _when(row.next_run_time)),
            ("args", json.dumps(row.args) if isinstance(row.args, list) else "(undecodable)"),
            ("kwargs", json.dumps(row.kwargs) if isinstance(row.kwargs, dict) else "(undecodable)"),
            ("misfire grace time", row.misfire_grace_time),
            ("coalesce", row.coalesce),
            ("max instances", row.max_instances),
            ("source", row.source),
            ("load error", row.load_error or "-"),
        ]
        for label, value in fields:
            command.stdout.write(f"{label + ':':<20}{value}")
        runs = JobExecution.objects.using(database).filter(job_id=row.id)
        runs = runs.order_by("-scheduled_run_time")[: max(options["runs"], 0)]
        command.stdout.write("latest runs:" if runs else "latest runs:       none")
        for run in runs:
            pending = run.status == ExecutionStatus.SCHEDULED and not run.node_id
            status = "pending (no scheduler has taken it yet)" if pending else run.status
            duration = "" if run.duration is None else f" in {run.duration:.3f}s"
            note = f": {run.exception.splitlines()[0]}" if run.exception else ""
            asked = ""
            if run.trigger_source != "schedule":
                who = f" by {run.requested_by}" if run.requested_by else ""
                asked = f" [{run.trigger_source}{who}]"
            command.stdout.write(
                f"  {_when(run.scheduled_run_time)}  {status}{duration}{asked}{note}"
            )


class _JobAction(Subcommand):
    """A subcommand that does one ``api`` call to one job by id."""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job_id", help="The job's id.")

    def handle(self, command: BaseCommand, **options: Any) -> None:
        job_id = options["job_id"]
        try:
            message = self.act(job_id)
        except JobNotFoundError:
            raise _unknown(job_id) from None
        if options["verbosity"] > 0:
            command.stdout.write(message)

    def act(self, job_id: str) -> str:
        """Do it; returns what to print."""
        raise NotImplementedError  # pragma: no cover


class Pause(_JobAction):
    name = "pause"
    help = "Pause a job: it does not run until resumed."

    def act(self, job_id: str) -> str:
        api.pause_job(job_id)
        return f"Paused {job_id!r}."


class Resume(_JobAction):
    name = "resume"
    help = "Resume a paused job from its next fire time after now (missed runs are not replayed)."

    def act(self, job_id: str) -> str:
        job = api.resume_job(job_id)
        return f"Resumed {job_id!r}; next run {_when(job.next_run_time)}."


class Remove(_JobAction):
    name = "remove"
    help = "Delete a job (its history stays)."

    def act(self, job_id: str) -> str:
        api.remove_job(job_id)
        return f"Removed {job_id!r}; its history stays."


class Run(Subcommand):
    name = "run"
    help = (
        "Ask a scheduler to run a job once, now (paused or not; its schedule is unchanged). "
        "With --wait, wait for the outcome and exit 1 unless it succeeded."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job_id", help="The job's id.")
        parser.add_argument(
            "--wait", action="store_true", help="Wait for the run's outcome and print it."
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=None,
            help="With --wait: give up after this many seconds (default: RUN_NOW_EXPIRY plus "
            "the run's own time, i.e. no limit once it started).",
        )
        parser.add_argument(
            "--skip-next", action="store_true", help="Also skip the job's next scheduled run."
        )

    def handle(self, command: BaseCommand, **options: Any) -> None:
        job_id = options["job_id"]
        who = f"manage.py clockwork run ({getpass.getuser()})"
        try:
            request = api.run_now(job_id, requested_by=who, skip_next=options["skip_next"])
        except JobNotFoundError:
            raise _unknown(job_id) from None
        except InvalidJobError as exc:
            raise CommandError(str(exc)) from None
        verbose = options["verbosity"] > 0
        if verbose:
            skipped = request.skipped_run_time
            extra = f"; skipped its run at {_when(skipped)}" if skipped else ""
            command.stdout.write(
                f"Asked a scheduler to run {job_id!r} now (history row {request.execution_id})"
                f"{extra}."
            )
        if not options["wait"]:
            return
        run = _wait_for(request.execution_id, options["timeout"])
        duration = "" if run.duration is None else f" in {run.duration:.3f}s"
        if verbose:
            command.stdout.write(
                f"{run.status}{duration}" + (f": {run.exception}" if run.exception else "")
            )
        if run.status != ExecutionStatus.SUCCEEDED:
            raise CommandError(f"The run of {job_id!r} ended {run.status}.", returncode=1)


def _wait_for(execution_id: int, timeout: float | None) -> JobExecution:
    """Poll the history row until the run has an outcome."""
    database = get_conf().database
    expiry = get_conf().run_now_expiry
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        run = JobExecution.objects.using(database).get(id=execution_id)
        if run.status in FINISHED:
            return run
        if run.status == ExecutionStatus.SCHEDULED and deadline is None:
            # Not taken yet: a scheduler records it missed after RUN_NOW_EXPIRY; give up then.
            waited = (timezone.now() - run.scheduled_run_time).total_seconds()
            if waited > expiry + 5:
                raise CommandError("No scheduler took the request: is one running?")
        if deadline is not None and time.monotonic() > deadline:
            raise CommandError(
                f"The run is still {run.status} after {timeout:g}s; see manage.py clockwork "
                f"show {run.job_id}."
            )
        time.sleep(0.2)


class Sync(Subcommand):
    name = "sync"
    help = (
        "Make the job table match the jobs declared in code (what a scheduler does when it "
        "starts) and print what was created, updated, left unchanged and paused as no longer "
        "declared."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would change; write nothing."
        )
        parser.add_argument(
            "--prune",
            action="store_true",
            help="Also delete the jobs no longer declared (their history stays).",
        )

    def handle(self, command: BaseCommand, **options: Any) -> None:
        report = declarations.sync(dry_run=options["dry_run"], prune=options["prune"])
        lines = list(report.lines()) or ["Nothing is declared in code."]
        if options["dry_run"]:
            lines.insert(0, "Dry run, nothing written:")
        if options["verbosity"] > 0:
            command.stdout.write("\n".join(lines))


SUBCOMMANDS: dict[str, Subcommand] = {
    sub.name: sub for sub in (List(), Show(), Run(), Pause(), Resume(), Remove(), Sync(), Prune())
}


class Command(BaseCommand):
    help = "django-clockwork's tools. Subcommands: " + ", ".join(SUBCOMMANDS) + "."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # A one-line usage, so that a bad argument reads as two short lines, not eight.
        kwargs.setdefault("usage", "%(prog)s [options] {" + ",".join(SUBCOMMANDS) + "} ...")
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(
            dest="subcommand", metavar="subcommand", title="subcommands", required=True
        )
        for sub in SUBCOMMANDS.values():
            subparser = subparsers.add_parser(sub.name, help=sub.help, description=sub.help)
            subparser.add_argument(
                "-v",
                "--verbosity",
                type=int,
                choices=[0, 1, 2, 3],
                default=argparse.SUPPRESS,  # keep a -v given before the subcommand
                help="0 prints nothing, 1 (default) a summary.",
            )
            sub.add_arguments(subparser)

    def handle(self, *args: Any, subcommand: str, **options: Any) -> None:
        SUBCOMMANDS[subcommand].handle(self, **options)
