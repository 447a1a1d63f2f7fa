"""Test settings. The database comes from CLOCKWORK_TEST_DB: sqlite (default), postgres, mariadb.

Scheduler processes started by the tests get CLOCKWORK_TEST_DB_NAME, the name of the
test database pytest-django created, so that they share it with the test.
"""

import json
import os
import tempfile
from importlib.util import find_spec
from pathlib import Path
from typing import Any

BACKEND = os.environ.get("CLOCKWORK_TEST_DB", "sqlite")
#: Django's tasks framework: "django.tasks" (Django 6+), "django_tasks" (the backport), or "".
TASKS_PACKAGE = next((name for name in ("django.tasks", "django_tasks") if find_spec(name)), "")
SHARED_NAME = os.environ.get("CLOCKWORK_TEST_DB_NAME")
# One database per test run (pid by default), so that runs side by side never share one.
RUN = os.environ.get("CLOCKWORK_TEST_RUN") or str(os.getpid())
SQLITE_PATH = str(Path(tempfile.gettempdir()) / f"clockwork-test-{RUN}.sqlite3")

DATABASE: dict[str, Any]
if BACKEND == "sqlite":
    DATABASE = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": SHARED_NAME or SQLITE_PATH,
        "TEST": {"NAME": SQLITE_PATH},
        # WAL lets readers and the one writer overlap: what several schedulers on SQLite need.
        "OPTIONS": {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        },
    }
elif BACKEND == "postgres":
    DATABASE = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": SHARED_NAME or f"clockwork_{RUN}".replace("-", "_"),
        "USER": os.environ.get("PGUSER", "root"),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
    }
elif BACKEND == "mariadb":
    DATABASE = {
        "ENGINE": "django.db.backends.mysql",
        "NAME": SHARED_NAME or f"clockwork_{RUN}".replace("-", "_"),
        "USER": os.environ.get("MYSQL_USER", "root"),
        "PASSWORD": os.environ.get("MYSQL_PASSWORD", ""),
        "HOST": os.environ.get("MYSQL_HOST", "127.0.0.1"),
        "PORT": os.environ.get("MYSQL_PORT", "3306"),
        "OPTIONS": {
            "charset": "utf8mb4",
            # Scheduler processes of the wait_timeout test get a server that drops idle
            # connections after this many seconds.
            **(
                {"init_command": f"SET SESSION wait_timeout = {int(wait_timeout)}"}
                if (wait_timeout := os.environ.get("CLOCKWORK_TEST_MYSQL_WAIT_TIMEOUT"))
                else {}
            ),
        },
        "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
    }
else:
    raise RuntimeError(f"CLOCKWORK_TEST_DB must be sqlite, postgres or mariadb, not {BACKEND!r}")

DATABASES = {
    "default": DATABASE,
    # A second database, for the tests of CLOCKWORK["DATABASE"] and the router.
    "other": {
        **DATABASE,
        "NAME": f"{DATABASE['NAME']}-other" if BACKEND == "sqlite" else f"{DATABASE['NAME']}_other",
        "TEST": {
            **DATABASE.get("TEST", {}),
            **({"NAME": f"{SQLITE_PATH}-other"} if BACKEND == "sqlite" else {}),
        },
    },
}
if SHARED_NAME:
    # A scheduler process started by a test uses only the test's database. The test run creates
    # "other" only when one of its tests uses it, and Django 6.1's system checks connect to every
    # configured database (on MySQL/MariaDB), so a process would fail on a missing one.
    del DATABASES["other"]
SECRET_KEY = "tests-only-not-secret"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # The browser tests' live server serves the admin's CSS and JavaScript from the apps.
    "django.contrib.staticfiles",
    "django_clockwork",
    # The test jobs (tests.jobs, the upstream suite's tests.test_jobstores...) live in an
    # installed app of this test project: jobs may run them under the default rule.
    "tests",
    # Declares jobs in its jobs.py: only in the scheduler processes of the sync test.
    *(["tests.declaring"] if os.environ.get("CLOCKWORK_TEST_DECLARING") else []),
    # Django's tasks framework: built in from Django 6.0, else the django-tasks backport; and
    # django-tasks-db's database backend (its table beside ours), where installed.
    *(["django_tasks"] if TASKS_PACKAGE == "django_tasks" else []),
    *(["django_tasks_db"] if find_spec("django_tasks_db") and TASKS_PACKAGE else []),
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
ROOT_URLCONF = "tests.urls"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Scheduler processes started by tests may get extra CLOCKWORK keys as JSON.
CLOCKWORK = {"POLL_INTERVAL": 0.5, **json.loads(os.environ.get("CLOCKWORK_TEST_SETTINGS", "{}"))}

# The task backends the tests of task jobs use (tests/test_tasks.py).
if TASKS_PACKAGE:
    TASKS = {
        "default": {
            "BACKEND": f"{TASKS_PACKAGE}.backends.immediate.ImmediateBackend",
            "QUEUES": ["default", "emails"],
        },
        "plain": {"BACKEND": "tests.taskbackends.PlainBackend"},
        "dummy": {
            "BACKEND": f"{TASKS_PACKAGE}.backends.dummy.DummyBackend",
            "QUEUES": ["default", "emails"],
        },
        **(
            {
                "database": {
                    "BACKEND": "django_tasks_db.DatabaseBackend",
                    "QUEUES": [],
                    "OPTIONS": {"id_function": "tests.tasks.result_id"},
                }
            }
            if find_spec("django_tasks_db")
            else {}
        ),
    }
