"""The admin's partial indexes exist on PostgreSQL, after every migration, and nowhere else;
no system check warns about them on any database (models.W037 on MySQL/MariaDB)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from django_clockwork.models import JobExecution

pytestmark = pytest.mark.django_db

RARE = {"clockwork_exec_asked", "clockwork_exec_warned"}


def test_partial_indexes_on_postgresql_only() -> None:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, JobExecution._meta.db_table)
    present = RARE & set(constraints)
    if connection.vendor == "postgresql":
        assert present == RARE
    else:
        assert present == set()  # MySQL: not a full-size copy; SQLite: lost in a table rebuild


def test_no_system_check_warns_about_indexes() -> None:
    out, err = StringIO(), StringIO()
    call_command("check", databases=["default"], stdout=out, stderr=err)
    assert "W037" not in out.getvalue() + err.getvalue()
