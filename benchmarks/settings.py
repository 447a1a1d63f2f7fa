"""Django settings of the benchmark project: one database of its own, library defaults.

The database comes from ``CLOCKWORK_BENCH_DB`` (sqlite, postgres, mariadb) and its name from
``CLOCKWORK_BENCH_DB_NAME`` (a file path on SQLite); ``python -m benchmarks`` sets both and
creates and drops that database. ``CONN_MAX_AGE`` is Django's default (0) and ``CLOCKWORK`` is
empty: ours is measured as users run it.
"""

import importlib.util
import os
from typing import Any

BACKEND = os.environ.get("CLOCKWORK_BENCH_DB", "sqlite")
NAME = os.environ.get("CLOCKWORK_BENCH_DB_NAME", "clockwork_bench")

ENGINES: dict[str, dict[str, Any]] = {
    "sqlite": {
        "ENGINE": "django.db.backends.sqlite3",
        "OPTIONS": {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        },
    },
    "postgres": {
        "ENGINE": "django.db.backends.postgresql",
        "USER": os.environ.get("PGUSER", "root"),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
    },
    "mariadb": {
        "ENGINE": "django.db.backends.mysql",
        "USER": os.environ.get("MYSQL_USER", "root"),
        "PASSWORD": os.environ.get("MYSQL_PASSWORD", ""),
        "HOST": os.environ.get("MYSQL_HOST", "127.0.0.1"),
        "PORT": os.environ.get("MYSQL_PORT", "3306"),
        "OPTIONS": {"charset": "utf8mb4"},
    },
}
DATABASES = {"default": {**ENGINES[BACKEND], "NAME": NAME}}

# django-apscheduler is a target only where it is installed (requirements/bench.txt has it).
HAS_DJANGO_APSCHEDULER = importlib.util.find_spec("django_apscheduler") is not None

SECRET_KEY = "benchmarks-only-not-secret"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_clockwork",
    *(["django_apscheduler"] if HAS_DJANGO_APSCHEDULER else []),
    "benchmarks",
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
ROOT_URLCONF = "benchmarks.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ALLOWED_HOSTS = ["testserver"]
CLOCKWORK: dict[str, Any] = {}
