"""Stored error text is bounded: the start of a message, the end of a traceback."""

from __future__ import annotations

import pytest

from django_clockwork.storedtext import head, tail


@pytest.mark.parametrize("cut", [head, tail])
def test_text_that_fits_is_kept_whole(cut) -> None:  # type: ignore[no-untyped-def]
    assert cut("short", 5) == "short"
    assert cut("", 0) == ""


@pytest.mark.parametrize("limit", [0, 3, 20, 100])
def test_longer_text_is_cut_to_the_limit_and_says_so(limit: int) -> None:
    text = "A" * 500 + "Z" * 500
    first, last = head(text, limit), tail(text, limit)
    assert len(first) == len(last) == limit
    if limit == 100:
        assert first.startswith("AAA")
        assert first.endswith("1,000 characters in all, cut]")
        assert last.startswith("[1,000 characters in all")
        assert last.endswith("ZZZ")
