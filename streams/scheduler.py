"""Which customers have a timer due, and waking up when the earliest one is.

The table (and its changelog) is the truth; ``DueIndex`` is rebuilt from it after every
rebalance, so a dead worker's timers fire on whichever worker takes its partitions.
Entries are never removed eagerly: a popped entry is re-checked against the table.

``run_timers`` sleeps until the earliest due time, not by polling: a timer armed
earlier than every other one wakes it (``DueIndex.on_earlier``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections.abc import Awaitable, Callable, Iterable

from nudge.clock import Clock

log = logging.getLogger(__name__)


class DueIndex:
    def __init__(self) -> None:
        self._heap: list[tuple[int, bytes]] = []
        self._best: dict[bytes, int] = {}
        #: Called when a push makes the earliest due time earlier (or the index is rebuilt).
        self.on_earlier: Callable[[], None] | None = None

    def __len__(self) -> int:
        return len(self._best)

    def push(self, key: bytes, due_ms: int | None) -> None:
        if due_ms is None:
            return
        best = self._best.get(key)
        if best is not None and best <= due_ms:
            return  # an earlier entry will wake us; the re-check re-pushes the rest
        self._best[key] = due_ms
        heap = self._heap
        earlier = not heap or due_ms < heap[0][0]
        heapq.heappush(heap, (due_ms, key))
        if earlier and self.on_earlier is not None:
            self.on_earlier()

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
        if self.on_earlier is not None:
            self.on_earlier()

    def next_due_ms(self) -> int | None:
        return self._heap[0][0] if self._heap else None


class Wakeup:
    """A sleep that ``poke`` cuts short."""

    def __init__(self) -> None:
        self._poked = asyncio.Event()

    def poke(self) -> None:
        self._poked.set()

    async def sleep(self, seconds: float) -> None:
        if seconds > 0 and not self._poked.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poked.wait(), seconds)
        self._poked.clear()


def next_wait_s(
    next_due_ms: int | None, round_ms: int, now_ms: int, *, retry_s: float, max_s: float
) -> float:
    """How long the timer loop sleeps after a round that began at ``round_ms``.

    Until the earliest due time, at most ``max_s``. A timer that was due when the round
    began and is still there could not fire (a rebalance, the flows not loaded yet):
    it is tried again after ``retry_s``, not in a spin. One that fell due during the
    round goes at once.
    """
    if next_due_ms is None:
        return max_s
    if next_due_ms <= round_ms:
        return retry_s
    return max(0.0, min(max_s, (next_due_ms - now_ms) / 1000))


async def run_timers(
    fire: Callable[[], Awaitable[object]],
    due: DueIndex,
    clock: Clock,
    *,
    retry_s: float,
    max_s: float = 1.0,
) -> None:
    """Fire what is due, then sleep until the next due time or an earlier arrival."""
    wakeup = Wakeup()
    due.on_earlier = wakeup.poke
    while True:
        round_ms = clock.now_ms()
        try:
            await fire()
        except Exception:
            # A failed round leaves its timers in the table: they are tried again.
            log.exception("firing due timers failed; retrying in %ss", retry_s)
            await asyncio.sleep(retry_s)
            continue
        next_due = due.next_due_ms()
        await wakeup.sleep(
            next_wait_s(next_due, round_ms, clock.now_ms(), retry_s=retry_s, max_s=max_s)
        )
