"""What the whole shop's shoppers show, counted in memory and written once a second.

* popularity: a weighted count of views, cart adds and orders per product (the
  ``popular`` recommendations);
* search conversions: what shoppers bought within a day of a search, per word of the
  query (the ``search`` recommendations blend it with the text match).

Both are best-effort signals, batched per interval off the event path: counts whose
write fails are added back for the next interval, and a crash loses at most one
interval of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from nudge.models.events import OrderEvent
from nudge.models.state import Seen
from nudge.recommender.text import words
from nudge.shared_state import SharedState

log = logging.getLogger(__name__)

POPULARITY = {"product_view": 1.0, "cart_add": 3.0, "order": 5.0}
#: A search counts towards what its shopper bought within this long after it.
SEARCH_TO_PURCHASE_MS = 24 * 3600 * 1000


class ShopSignals:
    def __init__(self, shared: SharedState) -> None:
        self.shared = shared
        self._popularity: dict[str, float] = {}
        self._conversions: dict[tuple[str, str], float] = {}
        self._writing: asyncio.Task[None] | None = None

    def saw(self, event_type: str, product_id: str | None) -> None:
        weight = POPULARITY.get(event_type)
        if weight and product_id:
            self._popularity[product_id] = self._popularity.get(product_id, 0.0) + weight

    def ordered(self, searches: Sequence[Seen], event: OrderEvent) -> None:
        """A placed order: its products' popularity, and the customer's recent
        ``searches`` that led to it."""
        products = {item.product_id for item in event.items}
        for product_id in products:
            self.saw("order", product_id)
        terms = {
            term
            for search in searches
            if 0 <= event.ts - search.ts <= SEARCH_TO_PURCHASE_MS
            for term in words(search.value)
        }
        for term in terms:
            for product_id in products:
                key = (term, product_id)
                self._conversions[key] = self._conversions.get(key, 0.0) + 1.0

    async def flush(self) -> None:
        """Start writing what was counted since the last call, unless the previous
        write is still in flight (its successor then waits a tick)."""
        if self._writing is not None and not self._writing.done():
            return
        popularity, self._popularity = self._popularity, {}
        conversions, self._conversions = self._conversions, {}
        if popularity or conversions:
            self._writing = asyncio.create_task(self._write(popularity, conversions))

    async def _write(
        self, popularity: dict[str, float], conversions: dict[tuple[str, str], float]
    ) -> None:
        try:
            await self.shared.bump_popularity(popularity, conversions)
        except Exception as exc:
            log.warning("shop signals not written, kept for the next interval: %s", exc)
            for pid, weight in popularity.items():
                self._popularity[pid] = self._popularity.get(pid, 0.0) + weight
            for key, count in conversions.items():
                self._conversions[key] = self._conversions.get(key, 0.0) + count
