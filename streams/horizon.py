"""The sweep that compacts customers inactive past ``NUDGE_STATE_HORIZON``.

Inactive customers send no events, so nothing else would visit their state: a timer
walks the table of the partitions this worker owns, a slice at a time so that events
keep flowing, and writes each compacted state through the changelog like any change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from nudge.clock import Clock
from nudge.flows.plan import FlowSet
from nudge.models.state import CustomerState
from nudge.streams.logic.horizon import compact_inactive
from nudge.streams.table import StateStore

log = logging.getLogger(__name__)
#: States looked at between two yields to the event loop.
SLICE = 2000


async def sweep_inactive(
    store: StateStore,
    flows: FlowSet,
    clock: Clock,
    horizon_ms: int,
    active_partitions: Iterable[int],
) -> int:
    """Compact every inactive customer of ``active_partitions``; returns how many."""
    if horizon_ms <= 0:
        return 0
    partitions = set(active_partitions)
    browsing = frozenset(
        plan.id
        for kind in ("cart", "view", "category", "search")
        for plan in flows.abandonment(kind)
    )
    now = clock.now_ms()
    # A snapshot of the keys: events may change the table between slices.
    keys = [key for key, state in store.items() if state.partition in partitions]
    compacted = 0
    for start in range(0, len(keys), SLICE):
        for key in keys[start : start + SLICE]:
            state: CustomerState | None = store.get(key)
            if state is None:
                continue
            smaller = compact_inactive(state, now, horizon_ms, browsing)
            if smaller is not state:
                store.put(key, smaller)
                compacted += 1
        await store.flush()
        await asyncio.sleep(0)
    if compacted:
        log.info(
            "compacted %d customers inactive for over %d days", compacted, horizon_ms // 86_400_000
        )
    return compacted
