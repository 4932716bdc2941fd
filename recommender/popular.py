"""The recommender seam, and its first implementation: what sells, what is available."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from nudge.shared_state import SharedState


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
    ) -> list[dict[str, Any]]:
        """``history``: the customer's recent product ids, oldest first, when known.
        ``category``: for ``popular``, a category id to pick best sellers from (its
        subcategories included); the list is topped up from all categories."""
        ...


class PopularRecommender:
    """The catalogue's most popular available products; for ``recently_viewed``, the
    customer's own recent products first. Needs no model.

    Popularity is a weighted count of views, cart adds and orders that the stream
    workers keep in Redis; the item-similarity model replaces this per algorithm.
    """

    def __init__(self, shared: SharedState) -> None:
        self.shared = shared

    async def recommend(
        self,
        customer_id: str,
        algorithm: str,
        count: int,
        exclude: Sequence[str],
        history: Sequence[str] = (),
        category: str | None = None,
    ) -> list[dict[str, Any]]:
        picked: list[dict[str, Any]] = []
        if algorithm == "recently_viewed" and history:
            picked = await self._recently_viewed(history, count, exclude)
        elif algorithm == "popular" and category:
            picked = await self.shared.popular(count, exclude=exclude, category=category)
        if len(picked) < count:  # a cold customer still gets a full block
            seen = [*exclude, *(p["product_id"] for p in picked)]
            picked += await self.shared.popular(count - len(picked), exclude=seen)
        return picked

    async def _recently_viewed(
        self, history: Sequence[str], count: int, exclude: Sequence[str]
    ) -> list[dict[str, Any]]:
        """The customer's own products, most recent first, still available."""
        skip = set(exclude)
        recent = [p for p in dict.fromkeys(reversed(history)) if p not in skip]
        products = await self.shared.get_products(recent)
        available = [products[p] for p in recent if products.get(p, {}).get("available", False)]
        return available[:count]
