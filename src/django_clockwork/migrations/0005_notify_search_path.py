# Written by hand on 2026-12-01 (Django cannot generate a RunPython migration).
"""On PostgreSQL, give the NOTIFY trigger function a fixed ``search_path``.

Without one, the function resolves ``pg_notify`` and ``current_setting`` through the search
path of whoever changes the jobs table, so a schema earlier in that path could shadow them.
Everything the function calls lives in ``pg_catalog``; ``pg_temp`` comes last so that
temporary objects can never shadow anything. Other databases are left alone.
"""

from django.db import migrations

FUNCTION = "clockwork_notify_job_change"


def _alter(schema_editor, change):
    if schema_editor.connection.vendor == "postgresql":
        name = schema_editor.quote_name(FUNCTION)
        schema_editor.execute(f"ALTER FUNCTION {name}() {change}")


def fix_search_path(apps, schema_editor):
    _alter(schema_editor, "SET search_path = pg_catalog, pg_temp")


def reset_search_path(apps, schema_editor):
    _alter(schema_editor, "RESET search_path")


class Migration(migrations.Migration):
    dependencies = [
        ("django_clockwork", "0004_execution_enqueued"),
    ]

    operations = [
        migrations.RunPython(fix_search_path, reset_search_path, elidable=False),
    ]
