"""Counting a long history without reading all of it.

The ledger can hold millions of rows; an exact ``COUNT(*)`` of them (or of a filter that
matches most of them) reads every one. :class:`CappedPaginator` counts at most :data:`CAP`
rows (``SELECT COUNT(*) FROM (... LIMIT CAP + 1)``, bounded work on every database) and pages
through those; the list then says "more than 10,000", and filters or the date hierarchy narrow
it down.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.core.paginator import Paginator

#: Rows counted at most; with 100 rows a page, 100 pages.
CAP = 10_000


class CappedPaginator(Paginator):  # type: ignore[type-arg]
    @cached_property
    def count(self) -> int:
        rows: Any = self.object_list  # a QuerySet (the admin's), sliced before counting
        return int(rows[: CAP + 1].count())

    @property
    def capped(self) -> bool:
        return self.count > CAP

    @cached_property
    def num_pages(self) -> int:
        hits = max(1, min(self.count, CAP) - self.orphans)
        return -(-hits // self.per_page) if self.count or self.allow_empty_first_page else 0
