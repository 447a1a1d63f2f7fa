"""Settings for the django-clockwork demo. Not for production: DEBUG is on, the key is public.

Environment variables:
    DEMO_DB_PATH     the SQLite file (default: demo/db.sqlite3); the tests point it elsewhere
    DEMO_SECRET_KEY  overrides the public demo key
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DEMO_SECRET_KEY", "demo-only-not-secret-do-not-deploy")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_clockwork",
    "demo_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# SQLite is fine for one host. WAL lets the admin read while the scheduler writes;
# the timeout lets the web process and the scheduler wait for each other's writes.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DB_PATH") or BASE_DIR / "db.sqlite3",
        "OPTIONS": {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"},
    }
}

USE_TZ = True
TIME_ZONE = "Europe/Paris"  # cron jobs fire in this zone; times are stored in UTC
LANGUAGE_CODE = "en-us"
USE_I18N = True

STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CLOCKWORK = {
    "POLL_INTERVAL": 1.0,  # seconds: how soon a change made in another process is seen
    "MAX_WORKERS": 4,
    "SHUTDOWN_TIMEOUT": 10.0,  # seconds to let running jobs finish on SIGTERM
}

# No LOGGING: runscheduler shows the jobs' own log lines (demo_app.jobs) next to its own.
