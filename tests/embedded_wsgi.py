"""A WSGI application with an embedded scheduler, for ``tests/test_reliability.py``.

Served by ``gunicorn --workers 3 --preload tests.embedded_wsgi:application`` with the test's
environment (``CLOCKWORK_TEST_DB``, ``CLOCKWORK_TEST_DB_NAME``, ``CLOCKWORK_HITS``). Each
worker starts its own scheduler on the first request it serves; the master never does.
The last lines are the README's wsgi.py, in its order.
"""

import logging
import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from django_clockwork.embedded import with_scheduler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
# tests/settings.py has DEBUG off and no ALLOWED_HOSTS; the test requests 127.0.0.1.
settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

# Warnings and errors of the embedded schedulers, with the pid that logged them, on stderr
# (the test's log file). Gunicorn configures only its own loggers.
logging.basicConfig(
    format="%(asctime)s %(levelname)s [pid %(process)d] %(name)s: %(message)s",
    level=logging.WARNING,
)
logging.getLogger("django_clockwork.embedded").setLevel(logging.INFO)

application = with_scheduler(get_wsgi_application())
