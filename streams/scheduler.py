"""Which customers have a timer due: an in-memory index derived from the table.

The table (and its changelog) is the truth; this heap is rebuilt from it after every
rebalance, so a dead worker's timers fire on whichever worker takes its partitions.
Entries are never removed eagerly: a popped entry is re-checked against the table.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable


class DueIndex:
    def __init__(self) -> None:
        self._heap: list[tuple[int, bytes]] = []
        self._best: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self._best)

    def push(self, key: bytes, due_ms: int | None) -> None:
        if due_ms is None:
            return
        best = self._best.get(key)
        if best is not None and best <= due_ms:
            return  # an earlier entry will wake us; the re-check re-pushes the rest
        self._best[key] = due_ms
        heapq.heappush(self._heap, (due_ms, key))

    def pop_due(self, now_ms: int) -> list[bytes]:
        keys: list[bytes] = []
        heap = self._heap
        while heap and heap[0][0] <= now_ms:
            due, key = heapq.heappop(heap)
            if self._best.get(key) == due:
                del self._best[key]
                keys.append(key)
        return keys

    def rebuild(self, entries: Iterable[tuple[bytes, int | None]]) -> None:
        self._best = {k: d for k, d in entries if d is not None}
        self._heap = [(d, k) for k, d in self._best.items()]
        heapq.heapify(self._heap)

    def next_due_ms(self) -> int | None:
        return self._heap[0][0] if self._heap else None
