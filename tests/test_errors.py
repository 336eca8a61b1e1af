"""graft.errors: the shared list format of messages."""

from __future__ import annotations

from graft.errors import listing


def test_listing_shows_the_first_lines_and_counts_the_rest() -> None:
    assert listing(["a", "b"]) == "\n  a\n  b"
    assert listing([f"f{i}" for i in range(12)], limit=10).endswith("\n  f9\n  ... and 2 more")
    assert listing(["a", "b", "c"], limit=2) == "\n  a\n  b\n  ... and 1 more"
    assert listing([]) == ""
