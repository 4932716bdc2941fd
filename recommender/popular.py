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
    ) -> list[dict[str, Any]]:
        """``history``: the customer's recent product ids, oldest first, when known."""
        ...


class PopularRecommender:
    """The catalogue's most popular available products, whatever algorithm was asked for.

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
    ) -> list[dict[str, Any]]:
        return await self.shared.popular(count, exclude=exclude)
