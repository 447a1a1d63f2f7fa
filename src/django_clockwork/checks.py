"""System checks: every misconfiguration of ``CLOCKWORK`` has a stable id."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.db import router

from django_clockwork import conf


@checks.register(checks.Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    problems = conf.find_problems()
    if problems:
        return [checks.Error(problem.msg, hint=problem.hint, id=problem.id) for problem in problems]
    return check_routing()


def check_routing() -> list[checks.CheckMessage]:
    from django_clockwork.models import Job

    alias = conf.get_conf().database
    if router.db_for_write(Job) == alias:
        return []
    return [
        checks.Warning(
            f"CLOCKWORK['DATABASE'] is {alias!r} but the database routers send "
            f"django_clockwork to {router.db_for_write(Job)!r}.",
            hint="Add 'django_clockwork.routers.ClockworkRouter' to DATABASE_ROUTERS so that "
            "migrations and the admin use the same database as the schedulers.",
            id="clockwork.W001",
        )
    ]
