"""Partial indexes for the admin's filters on rare runs, on PostgreSQL.

Written by hand (a ``RunPython``, not ``AddIndex``): an index with a condition in a model's
``Meta`` makes Django warn (``models.W037``) in every command on MySQL/MariaDB, which have no
partial indexes, and creates a full index there instead, which every ledger insert would pay
for. Outside the model state, they are made on PostgreSQL only: SQLite rebuilds a table from
the model state when a later migration alters it, which would drop them silently.
"""

from typing import Any

from django.db import migrations, models

#: Runs not from the schedule (run now, api), and runs the watchdog noted: few of each.
RARE_RUN_INDEXES = (
    models.Index(
        fields=["-scheduled_run_time"],
        condition=~models.Q(trigger_source="schedule"),
        name="clockwork_exec_asked",
    ),
    models.Index(
        fields=["-scheduled_run_time"],
        condition=~models.Q(warning=""),
        name="clockwork_exec_warned",
    ),
)


def _wanted(schema_editor: Any) -> bool:
    return schema_editor.connection.vendor == "postgresql"


def add_indexes(apps: Any, schema_editor: Any) -> None:
    if _wanted(schema_editor):
        model = apps.get_model("django_clockwork", "JobExecution")
        for index in RARE_RUN_INDEXES:
            schema_editor.add_index(model, index)


def remove_indexes(apps: Any, schema_editor: Any) -> None:
    if _wanted(schema_editor):
        model = apps.get_model("django_clockwork", "JobExecution")
        for index in RARE_RUN_INDEXES:
            schema_editor.remove_index(model, index)


class Migration(migrations.Migration):
    dependencies = [
        ("django_clockwork", "0010_run_now"),
    ]

    operations = [
        migrations.RunPython(add_indexes, remove_indexes),
    ]
