"""The admin's partial indexes exist where the database has partial indexes, and nowhere
else; no system check warns about them on any database (models.W037 on MySQL/MariaDB)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from django_clockwork.models import JobExecution

pytestmark = pytest.mark.django_db

RARE = {"clockwork_exec_asked", "clockwork_exec_warned"}


def test_partial_indexes_only_where_the_database_has_them() -> None:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, JobExecution._meta.db_table)
    present = RARE & set(constraints)
    if connection.features.supports_partial_indexes:
        assert present == RARE
    else:
        assert present == set()  # not a full-size copy every ledger insert would pay for


def test_no_system_check_warns_about_indexes() -> None:
    out, err = StringIO(), StringIO()
    call_command("check", databases=["default"], stdout=out, stderr=err)
    assert "W037" not in out.getvalue() + err.getvalue()
