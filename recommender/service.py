"""The :class:`~recommender.popular.Recommender` seam on top of a loaded :class:`ItemKNN`.

Wiring it into delivery is one line, e.g.::

    ModelRecommender(ItemKNN.load(path), history_of=..., products_of=shared.get_products,
                     fallback=PopularRecommender(shared))
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from nudge.recommender.model import ALGORITHMS, ItemKNN
from nudge.recommender.popular import Recommender

HistoryOf = Callable[[str], Awaitable[Sequence[str]]]
ProductsOf = Callable[[Iterable[str]], Awaitable[Mapping[str, Mapping[str, Any]]]]


class ModelRecommender:
    """Recommendations from an item-similarity model, as catalogue product dicts.

    ``history_of(customer_id)`` gives the customer's product ids, oldest first.
    ``products_of(ids)`` (e.g. ``SharedState.get_products``) turns ids into catalogue
    records; products it does not know or marks ``available: False`` are skipped.
    Without it, each recommendation is ``{"product_id": id}``. Algorithms the model does
    not serve (``recently_viewed``) go to ``fallback`` when given, and
    are answered as ``personal`` otherwise.
    """

    def __init__(
        self,
        model: ItemKNN,
        history_of: HistoryOf | None = None,
        products_of: ProductsOf | None = None,
        fallback: Recommender | None = None,
        overfetch: int = 2,
    ) -> None:
        self.model = model
        self.history_of = history_of
        self.products_of = products_of
        self.fallback = fallback
        self.overfetch = max(1, overfetch)

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
        if count <= 0:
            return []
        if algorithm not in ALGORITHMS:
            if self.fallback is not None:
                return await self.fallback.recommend(
                    customer_id, algorithm, count, exclude, history, category, query
                )
            algorithm = "personal"
        if algorithm == "popular":
            history = []
        elif not history and self.history_of is not None:
            history = list(await self.history_of(customer_id))
        if self.products_of is None:
            ids = self.model.recommend(history, count, algorithm, exclude, category)
            return [{"product_id": product_id} for product_id in ids]
        ids = self.model.recommend(history, count * self.overfetch, algorithm, exclude, category)
        catalogue = await self.products_of(ids)
        result: list[dict[str, Any]] = []
        for product_id in ids:
            product = catalogue.get(product_id)
            if product is not None and product.get("available", True):
                result.append(dict(product))
                if len(result) == count:
                    break
        return result
