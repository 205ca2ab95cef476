"""Which positions of a long sequence to show: the first and last ones around a gap."""

from __future__ import annotations


def elide(
    n: int, limit: int | None, head: int | None = None, tail: int | None = None
) -> list[int | None]:
    """Indices 0 … n-1 when ``n <= limit`` (or no limit); else the first ``head`` and the last
    ``tail`` (default: ``limit`` split in halves) with ``None`` marking the gap."""
    if limit is None or n <= limit:
        return list(range(n))
    head = (limit + 1) // 2 if head is None else head
    tail = limit - head if tail is None else tail
    return [*range(head), None, *range(n - tail, n)]
