"""System checks: every misconfiguration of ``CLOCKWORK`` has a stable id."""

from __future__ import annotations

from typing import Any

from django.core import checks

from django_clockwork import conf


@checks.register(checks.Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    return [
        checks.Error(problem.msg, hint=problem.hint, id=problem.id)
        for problem in conf.find_problems()
    ]
