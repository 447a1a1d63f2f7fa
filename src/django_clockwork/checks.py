"""System checks: every misconfiguration of ``CLOCKWORK`` has a stable id.

Every problem of the settings is reported in one round (a bad value in one key never
hides the problems of another); the routing warning follows once they are fixed.
"""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.db import router

from django_clockwork import conf


@checks.register(checks.Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    problems = conf.find_problems()
    if problems:
        # The routing check needs valid settings: ClockworkRouter reads them.
        return [checks.Error(problem.msg, hint=problem.hint, id=problem.id) for problem in problems]
    return check_routing() + check_allowed_functions()


def check_allowed_functions() -> list[checks.CheckMessage]:
    if "*" not in conf.get_conf().allowed_functions:
        return []
    return [
        checks.Warning(
            "CLOCKWORK['ALLOWED_FUNCTIONS'] contains '*': a job row may make every scheduler "
            "import and call any public callable (os.system, subprocess.run...).",
            hint="List the modules or 'module:qualname' references your jobs need instead; "
            "the callables of your project's installed apps are allowed without listing.",
            id="clockwork.W030",
        )
    ]


def check_routing() -> list[checks.CheckMessage]:
    from django_clockwork.models import Job

    alias = conf.get_conf().database
    routed = router.db_for_write(Job)
    if routed == alias:
        return []
    return [
        checks.Warning(
            f"CLOCKWORK['DATABASE'] is {alias!r} but the database routers send "
            f"django_clockwork to {routed!r}.",
            hint="Add 'django_clockwork.routers.ClockworkRouter' to DATABASE_ROUTERS so that "
            "migrations and the admin use the same database as the schedulers.",
            id="clockwork.W001",
        )
    ]
