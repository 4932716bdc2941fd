"""The ``search`` algorithm: the catalogue's products that match the message's query.

``CatalogSearch`` keeps a :class:`~recommender.search_index.SearchIndex` of the
catalogue in Redis. It is built on first use, and rebuilt off the event loop when the
catalogue's version has moved (checked at most every ``refresh_s``); meanwhile the
previous index answers. Only ids and texts are held while it builds, not the records.

``SearchRecommender`` answers ``search`` from it, blended with what shoppers bought
after searching the same words (the stream workers count it), and tops the list up
with best sellers when the query is missing or matches too little. Every other
algorithm goes to the recommender it wraps.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from nudge.clock import Clock, SystemClock
from nudge.recommender.popular import Recommender
from nudge.recommender.search_index import Corpus, SearchIndex
from nudge.recommender.text import words
from nudge.shared_state import SharedState

log = logging.getLogger(__name__)

SEARCH = "search"
#: Matches fetched per wanted product: some may have gone out of stock since.
OVERFETCH = 3


class CatalogSearch:
    def __init__(
        self, shared: SharedState, clock: Clock | None = None, refresh_s: float = 30.0
    ) -> None:
        self.shared = shared
        self.clock = clock or SystemClock()
        self.refresh_ms = round(refresh_s * 1000)
        self._index: SearchIndex | None = None
        self._version: int | None = None
        self._checked_ms: int | None = None
        self._refreshing: asyncio.Task[None] | None = None

    async def index(self) -> SearchIndex:
        now = self.clock.now_ms()
        fresh = self._checked_ms is not None and now - self._checked_ms < self.refresh_ms
        if self._index is not None and fresh:
            return self._index
        if self._refreshing is None or self._refreshing.done():
            self._checked_ms = now
            self._refreshing = asyncio.create_task(self._refresh())
            self._refreshing.add_done_callback(_log_failure)
        if self._index is None:
            await asyncio.shield(self._refreshing)  # nothing to answer with yet
        assert self._index is not None
        return self._index

    async def _refresh(self) -> None:
        version = await self.shared.catalog_version()
        if self._index is not None and version == self._version:
            return
        corpus = Corpus()
        async for product in self.shared.all_products():
            corpus.add(product)
        self._index = await asyncio.to_thread(corpus.index)
        self._version = version
        log.info(
            "search index of %d products built (catalogue version %d)", len(corpus.ids), version
        )


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("rebuilding the search index failed: %s", task.exception())


class SearchRecommender:
    def __init__(self, inner: Recommender, shared: SharedState, catalog: CatalogSearch) -> None:
        self.inner = inner
        self.shared = shared
        self.catalog = catalog

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
        if algorithm != SEARCH:
            return await self.inner.recommend(
                customer_id, algorithm, count, exclude, history, category, query
            )
        picked: list[dict[str, Any]] = []
        if query and query.strip() and count > 0:
            index = await self.catalog.index()
            bought = await self.shared.search_conversions(words(query))
            ids = index.search(query, count * OVERFETCH, exclude, bought)
            products = await self.shared.get_products(ids)
            found = [products[p] for p in ids if p in products]
            picked = [dict(p) for p in found if p.get("available", True)][:count]
        if len(picked) < count:
            seen = [*exclude, *(p["product_id"] for p in picked)]
            picked += await self.inner.recommend(
                customer_id, "popular", count - len(picked), seen, history, category
            )
        return picked
