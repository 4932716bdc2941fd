"""The ``search`` algorithm on a real Redis: the index follows the catalogue, what
shoppers bought after a search is blended in, and emails use it by default."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from nudge.clock import ManualClock
from nudge.delivery.context import build_context
from nudge.models.commands import SendCommand
from nudge.models.events import OrderEvent, OrderItem
from nudge.models.message import MessageContext
from nudge.models.state import Seen
from nudge.recommender import PopularRecommender
from nudge.recommender.search import CatalogSearch, SearchRecommender
from nudge.settings import Settings
from nudge.shared_state import SharedState
from nudge.streams.shop_signals import SEARCH_TO_PURCHASE_MS, ShopSignals
from tests.test_search_index import CATALOGUE


@pytest.fixture
async def shared(make_settings: Callable[..., Settings]) -> AsyncIterator[SharedState]:
    settings = make_settings()
    client = aioredis.from_url(settings.redis_url or "")
    state = SharedState(client, settings.redis_namespace)
    await state.put_products(
        {**p, "url": f"https://s.example/{p['product_id']}", "price": 1.0, "currency": "EUR",
         "category_ids": [], "available": True}
        for p in CATALOGUE
    )  # fmt: skip
    # Best sellers, for topping up: none of them is about trekking.
    await state.bump_popularity({"en-throw": 50.0, "ru-jacket": 40.0})
    yield state
    await client.aclose()


def recommender(shared: SharedState, clock: ManualClock) -> SearchRecommender:
    return SearchRecommender(PopularRecommender(shared), shared, CatalogSearch(shared, clock))


async def ids(search: SearchRecommender, query: str | None, count: int = 2, **kw: Any) -> list[str]:
    found = await search.recommend("c1", "search", count, kw.pop("exclude", []), query=query, **kw)
    return [p["product_id"] for p in found]


async def test_a_search_recommends_what_matches_then_best_sellers(shared: SharedState) -> None:
    search = recommender(shared, ManualClock())
    assert await ids(search, "trekking poles") == ["en-poles", "en-pack"]
    assert await ids(search, "кроссовок", 2) == ["ru-sneakers", "en-throw"], "topped up"
    assert await ids(search, None) == ["en-throw", "ru-jacket"], "no query: best sellers"
    assert await ids(search, "telescope") == ["en-throw", "ru-jacket"]
    assert await ids(search, "trekking", exclude=["en-poles"]) == ["en-pack", "en-throw"]
    others = await search.recommend("c1", "popular", 1, [])
    assert [p["product_id"] for p in others] == ["en-throw"], "other algorithms: the inner one"


async def test_the_index_follows_the_catalogue(shared: SharedState) -> None:
    clock = ManualClock()
    search = recommender(shared, clock)
    assert await ids(search, "kayak") == ["en-throw", "ru-jacket"]
    await shared.put_products(
        [{"product_id": "kayak", "title": "Sea Kayak", "available": True},
         {"product_id": "en-poles", "title": "Urban Trekking Poles", "available": False}]
    )  # fmt: skip
    assert await ids(search, "kayak") == ["en-throw", "ru-jacket"], "checked now and then"
    clock.advance(31)
    await ids(search, "kayak")  # starts the rebuild; the old index answers meanwhile
    index = search.catalog
    assert index._refreshing is not None
    await index._refreshing
    assert await ids(search, "kayak", 1) == ["kayak"]
    assert await ids(search, "trekking poles", 1) == ["en-pack"], "out of stock: skipped"


async def test_what_searchers_went_on_to_buy_is_blended_in(shared: SharedState) -> None:
    signals = ShopSignals(shared)
    now = 1_700_000_000_000
    order = OrderEvent(
        event_id="o1", customer_id="c1", ts=now, type="order_placed", order_id="o1",
        items=[OrderItem(product_id="en-pack", quantity=1, price=30.0)],
    )  # fmt: skip
    recent = (Seen("Trekking gear", now - 3_600_000),)
    stale = (Seen("throw", now - SEARCH_TO_PURCHASE_MS - 1),)
    for _ in range(3):
        signals.ordered(recent + stale, order)
    await signals.flush()
    assert signals._writing is not None
    await signals._writing
    assert await shared.search_conversions(["trekk"]) == {"en-pack": 3.0}
    assert await shared.search_conversions(["throw"]) == {}, "a search too long before"
    popular = await shared.popular_ids(0, 1)
    assert popular == ["en-throw"] and await shared.redis.zscore(
        shared.key("popular"), "en-pack"
    ) == pytest.approx(15.0), "each order counted towards popularity too"
    search = recommender(shared, ManualClock())
    assert await ids(search, "trekking") == ["en-pack", "en-poles"]


def abandoned(kind: str, **context: Any) -> SendCommand:
    return SendCommand(
        id=f"{kind}:c1:1:0", trigger_id=kind, kind=kind, step=0, channel="email",
        customer_id="c1", recipient="c1@example.com", context=MessageContext(**context),
        due_ms=0, created_ms=0,
    )  # fmt: skip


async def test_search_and_category_emails_recommend_for_the_moment_by_default(
    shared: SharedState,
) -> None:
    await shared.put_products(
        [{"product_id": "tent", "title": "Tent", "category_ids": ["outdoor", "camping"],
          "available": True}]
    )  # fmt: skip
    await shared.bump_popularity({"tent": 1.0})
    search = recommender(shared, ManualClock())

    async def recommended(command: SendCommand) -> list[str]:
        built = await build_context(
            command, customer={}, shared=shared, recommender=search, utm={},
            unsubscribe_url="", shop_url="https://s.example", sender={},
        )  # fmt: skip
        return [r["product_id"] for r in built["recommendations"]][:2]

    assert await recommended(abandoned("abandoned_search", search_query="палок")) == [
        "ru-sticks",
        "en-throw",
    ]
    category = abandoned("abandoned_category", category={"category_id": "outdoor"})
    assert (await recommended(category))[0] == "tent", "the browsed category's best seller"
    assert (await recommended(abandoned("abandoned_view")))[0] == "en-throw"


async def test_a_category_email_names_the_category_from_the_catalogue(shared: SharedState) -> None:
    await shared.put_products(
        [{"product_id": "tent", "title": "Tent", "category_ids": ["outdoor", "camping"],
          "category_path": ["Outdoor", "Camping"], "available": True}]
    )  # fmt: skip
    await shared.bump_popularity({"tent": 100.0})

    async def category_of(category_id: str) -> dict[str, Any]:
        built = await build_context(
            abandoned("abandoned_category", category={"category_id": category_id}),
            customer={}, shared=shared, recommender=recommender(shared, ManualClock()),
            utm={}, unsubscribe_url="", shop_url="https://s.example", sender={},
        )  # fmt: skip
        return dict(built["category"])

    assert await category_of("camping") == {
        "category_id": "camping", "name": "Camping", "url": "https://s.example/category/camping"
    }  # fmt: skip
    assert await category_of("nowhere") == {
        "category_id": "nowhere", "name": None, "url": "https://s.example/category/nowhere"
    }  # fmt: skip
