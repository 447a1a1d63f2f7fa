"""``runscheduler`` shows the project's own log lines (a job's ``logging.getLogger(__name__)``),
at the level ``--verbosity`` asks for, unless the project configured the root logger itself."""

from __future__ import annotations

import json
import logging
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from django_clockwork import api
from django_clockwork.logtext import ZoneFormatter
from django_clockwork.management.commands.runscheduler import _configure_logging
from django_clockwork.models import JobExecution
from tests.process_helpers import Schedulers, wait_until

LOGGERS = ("", "django_clockwork", "apscheduler")


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    """The root logger; every change ``_configure_logging`` makes is undone afterwards."""
    logger = logging.getLogger()
    saved_handlers = logger.handlers[:]
    saved_levels = {name: logging.getLogger(name).level for name in LOGGERS}
    try:
        yield logger
    finally:
        logger.handlers[:] = saved_handlers
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


def configure(verbosity: int, *root_handlers: logging.Handler) -> None:
    """``_configure_logging`` with only ``root_handlers`` on the root logger (not pytest's)."""
    logging.getLogger().handlers[:] = root_handlers
    _configure_logging(verbosity)


def levels() -> tuple[str, ...]:
    return tuple(logging.getLevelName(logging.getLogger(name).level) for name in LOGGERS)


@pytest.mark.parametrize(
    ("verbosity", "expected"),
    [
        (0, ("WARNING", "WARNING", "WARNING")),
        (1, ("INFO", "INFO", "INFO")),
        (2, ("INFO", "DEBUG", "INFO")),
        (3, ("DEBUG", "DEBUG", "DEBUG")),
    ],
)
def test_root_logger_gets_a_stderr_handler_at_the_verbosity_level(
    root: logging.Logger, verbosity: int, expected: tuple[str, ...]
) -> None:
    configure(verbosity)

    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    assert handler.stream is sys.stderr
    assert isinstance(handler.formatter, ZoneFormatter)
    assert levels() == expected


def test_configuring_twice_adds_one_handler(root: logging.Logger) -> None:
    configure(1)
    _configure_logging(2)

    assert len(root.handlers) == 1
    assert levels() == ("INFO", "DEBUG", "INFO")


def test_a_project_that_configured_the_root_logger_keeps_it(root: logging.Logger) -> None:
    own = logging.NullHandler()
    root.setLevel(logging.ERROR)

    configure(3, own)

    assert root.handlers == [own]
    assert levels() == ("ERROR", "DEBUG", "DEBUG")


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_a_jobs_own_logger_shows_in_runscheduler_output(tmp_path: Path) -> None:
    schedulers = Schedulers(tmp_path, connection.settings_dict["NAME"])
    schedulers.env["CLOCKWORK_TEST_SETTINGS"] = json.dumps({"TIMEZONE": "Asia/Kolkata"})
    try:
        process = schedulers.start()
        process.wait_ready()
        api.add_job("tests.jobs:log_lines", "date", run_date=timezone.now(), args=["hello"])
        wait_until(
            JobExecution.objects.filter(func="tests.jobs:log_lines", status="succeeded").exists,
            30,
            "the job to succeed",
        )
        process.signal(signal.SIGTERM)
        code = process.wait(30)
    finally:
        schedulers.close()

    log = process.log()
    assert code == 0, log
    # The job's INFO line, stamped in the scheduler's zone (IST); its DEBUG line is below -v 1.
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} IST"
    assert re.search(rf"^{stamp} INFO tests\.jobs: info: hello$", log, re.M), log
    assert "debug: hello" not in log
    assert re.search(
        rf"^{stamp} INFO django_clockwork\.runscheduler: .*time zone Asia/Kolkata", log, re.M
    ), log
