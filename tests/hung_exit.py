"""A process whose scheduler runs a job that never ends, and then exits: for
``tests/test_embedded.py``. ``python -m tests.hung_exit JOB_ID embedded|runtime``.

With the test's environment (``CLOCKWORK_TEST_DB_NAME``, ``CLOCKWORK_TEST_SETTINGS``), it
starts an embedded scheduler (or a plain ``create_scheduler()`` one), waits until JOB_ID is
running, prints a line and returns: the interpreter's exit must stop the scheduler within
``SHUTDOWN_TIMEOUT`` and record the run ``abandoned``.
"""

import os
import sys
import time

import django

#: Printed once the job runs; the test times the exit from this line.
RUNNING = "job running; exiting"


def main(job_id: str, mode: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    from django_clockwork import create_scheduler, embedded
    from django_clockwork.models import ExecutionStatus, JobExecution

    if mode == "embedded":
        embedded.start()
    else:
        create_scheduler().start()  # never shut down: the process just ends
    deadline = time.monotonic() + 30
    running = JobExecution.objects.filter(job_id=job_id, status=ExecutionStatus.RUNNING)
    while not running.exists():
        if time.monotonic() > deadline:
            sys.exit(f"job {job_id!r} did not start within 30 s")
        time.sleep(0.05)
    print(RUNNING, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
