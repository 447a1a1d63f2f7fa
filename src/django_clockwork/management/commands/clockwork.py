"""``manage.py clockwork <subcommand>``: django-clockwork's tools, one class per subcommand.

Exit codes: 0 done; 1 a ``CommandError`` (the message says what to do); 2 bad arguments
(an unknown subcommand, an unknown option), as argparse does.
"""

from __future__ import annotations

import argparse
from typing import Any, ClassVar

from django.core.management.base import BaseCommand, CommandParser

from django_clockwork.conf import get_conf
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


SUBCOMMANDS: dict[str, Subcommand] = {sub.name: sub for sub in (Prune(),)}


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
