"""The exceptions ``django_clockwork.api`` raises, each named for what the caller did wrong.

They subclass APScheduler's own where one exists, so code written against APScheduler's
API (``except JobLookupError``, ``except ConflictingIdError``) keeps working.
"""

from __future__ import annotations

from apscheduler.jobstores.base import ConflictingIdError, JobLookupError


class ClockworkError(Exception):
    """Base class of every error ``django_clockwork.api`` raises on purpose."""


class JobNotFoundError(ClockworkError, JobLookupError):  # type: ignore[misc]
    """No job has this id (or it has finished and was removed)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id

    def __str__(self) -> str:
        return f"No job with the id {self.job_id!r}."


class JobExistsError(ClockworkError, ConflictingIdError):  # type: ignore[misc]
    """A job with this id exists already (pass ``replace_existing=True`` to replace it)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id

    def __str__(self) -> str:
        return (
            f"A job with the id {self.job_id!r} exists already; pass replace_existing=True "
            "to replace it, or choose another id."
        )


class InvalidJobError(ClockworkError, ValueError):
    """The job as given cannot be stored: a bad id, function reference, trigger or option."""


class ConcurrentChangeError(ClockworkError):
    """The job kept changing under this call (other writers); nothing was written. Retry."""


class FunctionNotAllowedError(InvalidJobError):
    """The function reference is not one jobs may run (see ``CLOCKWORK['ALLOWED_FUNCTIONS']``)."""
