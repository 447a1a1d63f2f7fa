"""What every scheduler page shares: whether any scheduler node is alive (for the banner)."""

from __future__ import annotations

from typing import Any

from django_clockwork.conf import get_conf
from django_clockwork.models import SchedulerNode


def scheduler_context() -> dict[str, Any]:
    """Template context of every scheduler page: ``clockwork_no_node`` is true when no
    scheduler node heartbeats (nothing runs, run-now requests wait): one query."""
    conf = get_conf()
    alive = SchedulerNode.objects.using(conf.database).live(conf.node_timeout).exists()
    return {"clockwork_no_node": not alive, "clockwork_node_timeout": conf.node_timeout}
