"""The admin: jobs (with their recent runs), run history and scheduler nodes.

A module per page; ``display`` formats, ``overview`` batches the job list's history reads.
"""

from django_clockwork.admin import history, jobs, nodes

__all__ = ["history", "jobs", "nodes"]
