"""``manage.py demo_admin``: create the superuser ``admin``, or reset its password."""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Create or reset the superuser 'admin' with the password in $DEMO_ADMIN_PASSWORD "
        "(never prompts)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        password = os.environ.get("DEMO_ADMIN_PASSWORD", "")
        if not password:
            raise CommandError("Set DEMO_ADMIN_PASSWORD to the password to give the user 'admin'.")
        user, created = get_user_model()._default_manager.get_or_create(username="admin")
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"Superuser 'admin' {'created' if created else 'password reset'}.")
