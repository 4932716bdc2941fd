"""The delivery side's Redis copy of each customer's profile and consent.

Written behind the table, never in the way of it. If the customers agent waited for
Redis, a sign-up or an unsubscribe queued behind a batch stuck in an outage would
reach the state only after the timers had judged the customer without it: a cart
timer would fire for a profile without an address (and be spent), or with the old
consent. So the agent updates the table at once and hands the customer ids here.

One writer writes each dirty customer's *latest* state, so a newer view is never
overwritten by an older one, and waits out Redis outages. Only once a batch's views
are written are its records reported applied: a crash before that replays them, and
the views are written again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from nudge.models.state import CustomerState
from nudge.shared_state import SharedState
from nudge.streams.waiting import until_available
from nudge.waits import Waits

log = logging.getLogger(__name__)


class CustomerViews:
    def __init__(
        self,
        shared: SharedState,
        read_state: Callable[[bytes], CustomerState | None],
        waits: Waits,
        applied: Callable[[Sequence[Any]], None],
    ) -> None:
        self.shared = shared
        self.read_state = read_state
        self.waits = waits
        self.applied = applied
        self._dirty: dict[bytes, None] = {}
        self._batches: list[Sequence[Any]] = []
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        """Customers whose view waits to be written."""
        return len(self._dirty)

    def add(self, keys: Iterable[bytes], messages: Sequence[Any]) -> None:
        """Views of ``keys`` changed by ``messages``; those are applied once written."""
        self._dirty.update(dict.fromkeys(keys))
        self._batches.append(messages)
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            try:
                await self.write_pending()
            except Exception:
                log.exception("writing customer views failed; trying again")
                await asyncio.sleep(1.0)

    async def write_pending(self) -> None:
        """Write every dirty view, then report the batches that made them dirty."""
        self._wake.clear()
        dirty, self._dirty = self._dirty, {}
        batches, self._batches = self._batches, []
        try:
            await self._write(dirty)
        except BaseException:
            # Not written: everything stays to do, ahead of what came meanwhile.
            self._dirty = {**dirty, **self._dirty}
            self._batches = batches + self._batches
            self._wake.set()
            raise
        for messages in batches:
            self.applied(messages)

    async def _write(self, dirty: Iterable[bytes]) -> None:
        views = []
        for key in dirty:
            state = self.read_state(key)
            if state is not None:
                profile = state.profile
                context = profile.as_context(state.customer_id)
                views.append((state.customer_id, context, profile.consent))
        if views:
            await until_available(
                lambda: self.shared.put_customers(views), what="redis", waits=self.waits
            )
