"""A database router that keeps django-clockwork's tables on ``CLOCKWORK['DATABASE']``."""

from __future__ import annotations

from typing import Any

from django.db.models import Model

from django_clockwork.conf import get_conf

APP_LABEL = "django_clockwork"


class ClockworkRouter:
    """Add ``"django_clockwork.routers.ClockworkRouter"`` to ``DATABASE_ROUTERS`` when the
    scheduler tables live outside ``default``: the admin, migrations and your own ORM
    queries then use the same database as the schedulers."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        return get_conf().database if model._meta.app_label == APP_LABEL else None

    db_for_write = db_for_read

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        if app_label == APP_LABEL:
            return db == get_conf().database
        return None
