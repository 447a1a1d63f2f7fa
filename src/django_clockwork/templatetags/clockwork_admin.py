"""Template tags of the scheduler's admin pages."""

from __future__ import annotations

from typing import Any

from django import template
from django.contrib.admin.views.main import ChangeList

from django_clockwork.admin.dates import hierarchy

register = template.Library()


@register.inclusion_tag("admin/date_hierarchy.html")
def clockwork_date_hierarchy(cl: ChangeList) -> dict[str, Any]:
    """The history's date hierarchy, read with index probes (see ``admin.dates``)."""
    return hierarchy(cl)
