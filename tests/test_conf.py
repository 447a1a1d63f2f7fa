"""Settings parsing and the system checks: one id per misconfiguration."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from django_clockwork.checks import check_settings
from django_clockwork.conf import Conf, JobDefaults, get_conf


def ids(**settings: object) -> list[str]:
    with override_settings(**settings):
        return [message.id for message in check_settings()]


def test_defaults() -> None:
    with override_settings(CLOCKWORK={}, TIME_ZONE="Europe/Paris"):
        assert get_conf() == Conf(timezone="Europe/Paris", job_defaults=JobDefaults())
        assert check_settings() == []


def test_settings_are_reread_when_changed() -> None:
    with override_settings(CLOCKWORK={"POLL_INTERVAL": 3}):
        assert get_conf().poll_interval == 3.0
    with override_settings(CLOCKWORK={"POLL_INTERVAL": 4}):
        assert get_conf().poll_interval == 4.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["not", "a", "dict"], ["clockwork.E001"]),
        ({"POLL_INTERVALL": 1}, ["clockwork.E002"]),
        ({"POLL_INTERVAL": 0}, ["clockwork.E003"]),
        ({"POLL_INTERVAL": "1s"}, ["clockwork.E003"]),
        ({"MAX_WORKERS": 2.5}, ["clockwork.E003"]),
        ({"CLAIM_BATCH_SIZE": True}, ["clockwork.E003"]),
        ({"SHUTDOWN_TIMEOUT": -1}, ["clockwork.E003"]),
        ({"LISTENERS": "myapp.listen"}, ["clockwork.E003"]),
        ({"DATABASE": "scheduler"}, ["clockwork.E004"]),
        ({"TIMEZONE": "Mars/Base"}, ["clockwork.E006"]),
        ({"JOB_DEFAULTS": {"coalesce": "yes"}}, ["clockwork.E007"]),
        ({"JOB_DEFAULTS": {"misfire_grace": 5}}, ["clockwork.E007"]),
        ({"JOB_DEFAULTS": {"max_instances": 0}}, ["clockwork.E007"]),
        ({"LISTENERS": ["tests.no_such_module.listener"]}, ["clockwork.E008"]),
        ({"LISTENERS": ["tests.settings.SECRET_KEY"]}, ["clockwork.E008"]),
    ],
)
def test_each_misconfiguration_has_a_check(value: object, expected: list[str]) -> None:
    assert ids(CLOCKWORK=value) == expected


def test_use_tz_false() -> None:
    assert ids(CLOCKWORK={}, USE_TZ=False) == ["clockwork.E005"]


def test_unknown_key_hint_suggests_the_close_one() -> None:
    with override_settings(CLOCKWORK={"POLL_INTERVALL": 1}):
        (message,) = check_settings()
    assert message.hint == "Did you mean 'POLL_INTERVAL'?"


EIGHT_MISTAKES = {
    "poll_interval": 1,  # E002: the key is upper case
    "MAX_WORKERS": 0,  # E003
    "RETRY_INTERVAL": "5s",  # E003
    "DATABASE": "scheduler",  # E004: not in DATABASES
    "TIMEZONE": "Mars/Base",  # E006
    "JOB_DEFAULTS": {"coalesce": "yes"},  # E007
    "LISTENERS": ["tests.no_such_module.listener"],  # E008
    "HEARTBEAT_INTERVAL": 5,  # E009: NODE_TIMEOUT is less than twice the heartbeat
    "NODE_TIMEOUT": 9,
}


def test_every_mistake_is_reported_in_one_round() -> None:
    assert ids(CLOCKWORK=EIGHT_MISTAKES) == [
        "clockwork.E002",
        "clockwork.E003",
        "clockwork.E003",
        "clockwork.E004",
        "clockwork.E006",
        "clockwork.E009",
        "clockwork.E007",
        "clockwork.E008",
    ]


def test_a_bad_type_hides_only_the_meaning_of_its_own_key() -> None:
    # NODE_TIMEOUT has the wrong type: E009 compares the default (10 s) with HEARTBEAT_INTERVAL.
    assert ids(CLOCKWORK={"NODE_TIMEOUT": "10", "HEARTBEAT_INTERVAL": 6}) == [
        "clockwork.E003",
        "clockwork.E009",
    ]
    assert ids(CLOCKWORK={"TIMEZONE": 3, "JOB_DEFAULTS": []}) == [
        "clockwork.E003",
        "clockwork.E003",
    ]


def test_every_problem_refuses_to_run_with_its_message() -> None:
    with override_settings(CLOCKWORK=EIGHT_MISTAKES), pytest.raises(ImproperlyConfigured) as info:
        get_conf()
    for problem_id in ("E002", "E003", "E004", "E006", "E007", "E008", "E009"):
        assert f"(clockwork.{problem_id})" in str(info.value)


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("poll_interval", "Did you mean 'POLL_INTERVAL'?"),
        ("Max_Workers", "Did you mean 'MAX_WORKERS'?"),
        ("node_timeot", "Did you mean 'NODE_TIMEOUT'?"),
    ],
)
def test_unknown_key_hint_ignores_case(key: str, hint: str) -> None:
    with override_settings(CLOCKWORK={key: 1}):
        (message,) = check_settings()
    assert (message.id, message.hint) == ("clockwork.E002", hint)


def test_unknown_key_without_a_close_one_lists_the_known_keys() -> None:
    with override_settings(CLOCKWORK={"COLOUR": "blue"}):
        (message,) = check_settings()
    assert message.hint.startswith("Known keys: DATABASE, POLL_INTERVAL,")


def test_unknown_job_default_hint_suggests_the_close_one() -> None:
    with override_settings(CLOCKWORK={"JOB_DEFAULTS": {"MAX_INSTANCES": 2}}):
        (message,) = check_settings()
    assert (message.id, message.hint) == ("clockwork.E007", "Did you mean 'max_instances'?")


def test_invalid_settings_refuse_to_run() -> None:
    with (
        override_settings(CLOCKWORK={"MAX_WORKERS": 0}),
        pytest.raises(ImproperlyConfigured, match=r"MAX_WORKERS.*\(clockwork.E003\)"),
    ):
        get_conf()


def test_listener_paths_are_resolved() -> None:
    with override_settings(CLOCKWORK={"LISTENERS": ["tests.jobs.noop"]}):
        from tests.jobs import noop

        assert get_conf().listener_callables() == [noop]


@pytest.mark.parametrize("value", ["-1", "soon", "nan"])
def test_runscheduler_rejects_bad_shutdown_timeout(value: str) -> None:
    with pytest.raises(CommandError, match="shutdown-timeout"):
        call_command("runscheduler", "--shutdown-timeout", value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"POLL_INTERVAL": 1e-6}, ["clockwork.E040"]),
        ({"POLL_INTERVAL": 0.05}, []),
        ({"MAX_WORKERS": 10**6}, ["clockwork.E041"]),
        ({"MAX_WORKERS": 256}, []),
        ({"CLAIM_BATCH_SIZE": 10**6}, ["clockwork.E042"]),
        ({"CLAIM_BATCH_SIZE": 10_000}, []),
        ({"HEARTBEAT_INTERVAL": 0.001, "NODE_TIMEOUT": 1}, ["clockwork.E043"]),
        ({"HEARTBEAT_INTERVAL": 0.1, "NODE_TIMEOUT": 0.5}, ["clockwork.E044"]),
        ({"HEARTBEAT_INTERVAL": 0.1, "NODE_TIMEOUT": 1}, []),
        ({"RETRY_INTERVAL": 0.001}, ["clockwork.E045"]),
        ({"LONG_RUNNING_AFTER": 0.05}, ["clockwork.E046"]),
        ({"LONG_RUNNING_AFTER": 0.1}, []),
        ({"LONG_RUNNING_AFTER": None}, []),
        ({"LONG_RUNNING_AFTER": 0}, ["clockwork.E003"]),
        ({"LONG_RUNNING_AFTER": "10"}, ["clockwork.E003"]),
        ({"NO_FREE_WORKER_AFTER": 0.01}, ["clockwork.E047"]),
        ({"NO_FREE_WORKER_AFTER": None, "LONG_RUNNING_AFTER": 3600}, []),
        ({"NO_FREE_WORKER_AFTER": float("inf")}, ["clockwork.E003"]),
    ],
)
def test_numbers_are_bounded(value: object, expected: list[str]) -> None:
    assert ids(CLOCKWORK=value) == expected


def test_a_bound_says_the_limit_why_and_the_default() -> None:
    with override_settings(CLOCKWORK={"MAX_WORKERS": 1000}):
        (message,) = check_settings()
    assert message.msg == "CLOCKWORK['MAX_WORKERS'] is 1000; it must be at most 256."
    assert message.hint is not None
    assert message.hint.startswith("Each worker thread holds a database connection")
    assert message.hint.endswith("Use a value at most 256, or remove the key for the default (10).")
    with override_settings(CLOCKWORK={"POLL_INTERVAL": 1e-6}), pytest.raises(ImproperlyConfigured):
        get_conf()
