"""The recommender seam, and its first implementation: what sells, what is available."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from nudge.clock import Clock, SystemClock
from nudge.shared_state import SharedState, pick_popular

#: How many best sellers a cached ranking holds: as deep as an uncached category scan.
RANKING_DEPTH = 2000


class Recommender(Protocol):
    """What message rendering asks of a recommender, whatever the model behind it."""

    async def recommend(
        self,
        customer_id: str,
        algorithm: str,
        count: int,
        exclude: Sequence[str],
        history: Sequence[str] = (),
        category: str | None = None,
        query: str | None = None,
    ) -> list[dict[str, Any]]:
        """``history``: the customer's recent product ids, oldest first, when known.
        ``category``: for ``popular``, a category id to pick best sellers from (its
        subcategories included); the list is topped up from all categories.
        ``query``: for ``search``, what the customer searched for."""
        ...


class PopularRecommender:
    """The catalogue's most popular available products; for ``recently_viewed``, the
    customer's own recent products first. Needs no model.

    Popularity is a weighted count of views, cart adds and orders that the stream
    workers keep in Redis; the item-similarity model replaces this per algorithm.

    With ``cache_s``, the best sellers (ids and records) are read once per that many
    seconds instead of on every message: two Redis round trips fewer per email, for a
    ranking the stream workers rewrite about once a second anyway.
    """

    def __init__(
        self, shared: SharedState, cache_s: float = 0.0, clock: Clock | None = None
    ) -> None:
        self.shared = shared
        self.ranking = (
            CachedRanking(shared, round(cache_s * 1000), clock or SystemClock())
            if cache_s > 0
            else None
        )

    async def recommend(
        self,
        customer_id: str,
        algorithm: str,
        count: int,
        exclude: Sequence[str],
        history: Sequence[str] = (),
        category: str | None = None,
        query: str | None = None,
    ) -> list[dict[str, Any]]:
        picked: list[dict[str, Any]] = []
        if algorithm == "recently_viewed" and history:
            picked = await self._recently_viewed(history, count, exclude)
        elif algorithm == "popular" and category:
            picked = await self._popular(count, exclude, category)
        if len(picked) < count:  # a cold customer still gets a full block
            seen = [*exclude, *(p["product_id"] for p in picked)]
            picked += await self._popular(count - len(picked), seen)
        return picked

    async def _popular(
        self, count: int, exclude: Sequence[str], category: str | None = None
    ) -> list[dict[str, Any]]:
        if self.ranking is None:
            return await self.shared.popular(count, exclude=exclude, category=category)
        return pick_popular(await self.ranking.products(), count, exclude, category)

    async def _recently_viewed(
        self, history: Sequence[str], count: int, exclude: Sequence[str]
    ) -> list[dict[str, Any]]:
        """The customer's own products, most recent first, still available."""
        skip = set(exclude)
        recent = [p for p in dict.fromkeys(reversed(history)) if p not in skip]
        products = await self.shared.get_products(recent)
        available = [products[p] for p in recent if products.get(p, {}).get("available", False)]
        return available[:count]


class CachedRanking:
    """The ``RANKING_DEPTH`` best sellers' catalogue records, best first, re-read from
    Redis when older than ``ttl_ms``. Concurrent readers of a stale ranking share one
    refresh."""

    def __init__(
        self, shared: SharedState, ttl_ms: int, clock: Clock, depth: int = RANKING_DEPTH
    ) -> None:
        self.shared = shared
        self.ttl_ms = ttl_ms
        self.clock = clock
        self.depth = depth
        self._products: list[dict[str, Any]] = []
        self._read_at_ms: int | None = None
        self._refresh: asyncio.Future[list[dict[str, Any]]] | None = None

    async def products(self) -> list[dict[str, Any]]:
        now = self.clock.now_ms()
        if self._read_at_ms is not None and now - self._read_at_ms < self.ttl_ms:
            return self._products
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.ensure_future(self._read(now))
        refresh = self._refresh
        try:
            return await asyncio.shield(refresh)
        finally:
            if self._refresh is refresh and refresh.done():
                self._refresh = None

    async def _read(self, now: int) -> list[dict[str, Any]]:
        ids = await self.shared.popular_ids(0, self.depth)
        records = await self.shared.get_products(ids)
        self._products = [records[p] for p in ids if p in records]
        self._read_at_ms = now
        return self._products
