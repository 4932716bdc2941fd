"""Emails use the trained model: history carried by the command, products from Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from nudge.clock import ManualClock
from nudge.delivery.context import build_context
from nudge.delivery.service import make_recommender
from nudge.errors import ConfigError
from nudge.flows import parse_flow
from nudge.flows.steps.send import SendStep
from nudge.models.commands import SendCommand
from nudge.models.message import MessageContext, Recommendations
from nudge.recommender import PopularRecommender
from nudge.recommender.errors import ModelError
from nudge.recommender.model import ItemKNN
from nudge.recommender.training import TrainParams, interactions_from_records
from nudge.settings import Settings
from nudge.shared_state import SharedState


def train(model_dir: Path) -> None:
    # Shoppers who look at a boot also look at its laces; jackets go with scarves.
    records = []
    for shopper in range(40):
        pair = ("boot", "laces") if shopper % 2 else ("jacket", "scarf")
        for product in pair:
            records.append((f"s{shopper}", product, 1.0, 1_700_000_000.0))
    ItemKNN.fit(interactions_from_records(records), TrainParams(k=5, shrink=0.0)).save(model_dir)


def command(history: list[str]) -> SendCommand:
    return SendCommand(
        id="view:c1:1:0", trigger_id="view", kind="abandoned_view", step=0, channel="email",
        customer_id="c1", recipient="c1@example.com",
        context=MessageContext(history=tuple(history)), due_ms=0, created_ms=0,
    )  # fmt: skip


async def recommended_ids(
    settings: Settings,
    catalogue: dict[str, list[str]],
    sales: dict[str, float],
    recommendations: dict[str, Any],
    context: dict[str, Any],
) -> list[str]:
    """The product ids an email's context recommends: ``catalogue`` maps each product to
    its category path, ``sales`` is what the stream workers counted."""
    client = aioredis.from_url(settings.redis_url or "")
    shared = SharedState(client, settings.redis_namespace)
    try:
        await shared.put_products(
            {"product_id": p, "title": p.title(), "url": f"https://s.example/{p}", "price": 1.0,
             "currency": "EUR", "category_ids": path, "available": True}
            for p, path in catalogue.items()
        )  # fmt: skip
        await shared.bump_popularity(sales)
        wanted = Recommendations(**recommendations)
        sent = replace(
            command([]), context=replace(command([]).context, **context), recommendations=wanted
        )
        built = await build_context(
            sent, customer={}, shared=shared,
            recommender=make_recommender(settings, shared), utm={}, unsubscribe_url="",
            shop_url="https://s.example", sender={},
        )  # fmt: skip
        return [r["product_id"] for r in built["recommendations"]]
    finally:
        await client.aclose()


async def recommended(
    settings: Settings, history: list[str], bought: list[str] | None = None
) -> list[str]:
    context: dict[str, Any] = {"history": history}
    if bought is not None:
        context["bought"] = bought
    return await recommended_ids(
        settings,
        {product: [] for product in ("boot", "laces", "jacket", "scarf")},
        {"jacket": 10.0, "scarf": 9.0, "boot": 1.0, "laces": 1.0},
        {"algorithm": "personal", "count": 1},
        context,
    )


async def test_emails_recommend_from_the_model_when_one_is_configured(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    train(tmp_path / "model")
    with_model = make_settings(model_dir=tmp_path / "model")
    assert await recommended(with_model, ["boot"]) == ["laces"]
    # Without a model the same email gets the best seller instead.
    assert await recommended(make_settings(), ["boot"]) == ["jacket"]


async def test_what_the_customer_bought_is_not_offered_again(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    train(tmp_path / "model")
    with_model = make_settings(model_dir=tmp_path / "model")
    assert await recommended(with_model, ["boot"], bought=["laces"]) != ["laces"]
    assert await recommended(make_settings(), ["boot"], bought=["jacket"]) == ["scarf"]


def test_a_bad_model_stops_delivery_at_start_up(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    train(tmp_path / "model")
    (tmp_path / "model" / "metadata.json").write_text("{broken")
    settings = make_settings(model_dir=tmp_path / "model")
    with pytest.raises(ModelError):
        make_recommender(settings, SharedState(aioredis.from_url(settings.redis_url or "")))
    without = make_recommender(
        make_settings(), SharedState(aioredis.from_url(settings.redis_url or ""))
    )
    assert isinstance(without.current, PopularRecommender), "no model: best sellers"


async def test_recently_viewed_is_the_customers_own_products_newest_first(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    client = aioredis.from_url(settings.redis_url or "")
    shared = SharedState(client, settings.redis_namespace)
    try:
        await shared.put_products(
            {"product_id": p, "title": p, "url": f"https://s.example/{p}", "price": 1.0,
             "currency": "EUR", "category_ids": [], "available": p != "gone"}
            for p in ("boot", "hat", "gone", "scarf", "best")
        )  # fmt: skip
        await shared.bump_popularity({"best": 10.0})
        recs = await PopularRecommender(shared).recommend(
            "c1", "recently_viewed", 3, ["hat"], ["boot", "hat", "gone", "scarf", "boot"]
        )
        assert [r["product_id"] for r in recs] == ["boot", "scarf", "best"], (
            "newest first, no duplicates, nothing excluded or unavailable, topped up"
        )
    finally:
        await client.aclose()


CAMPING = {"tent": ["outdoor", "camping"], "stove": ["outdoor", "camping"],
           "lamp": ["home"], "mug": ["home"]}  # fmt: skip


async def popular_in(
    settings: Settings, category: str, context: dict[str, Any], count: int = 2
) -> list[str]:
    return await recommended_ids(
        settings,
        CAMPING,
        {"mug": 10.0, "lamp": 9.0, "tent": 5.0, "stove": 4.0},
        {"algorithm": "popular", "count": count, "category": category},
        context,
    )


@pytest.mark.parametrize("with_model", [False, True], ids=["redis best sellers", "model"])
async def test_popular_in_the_messages_category(
    make_settings: Callable[..., Settings], tmp_path: Path, with_model: bool
) -> None:
    settings = make_settings()
    if with_model:
        records = [(f"s{n}", p, 1.0, 1_700_000_000.0)
                   for p, times in (("mug", 10), ("lamp", 9), ("tent", 5), ("stove", 4))
                   for n in range(times)]  # fmt: skip
        model = ItemKNN.fit(interactions_from_records(records), TrainParams(), categories=CAMPING)
        settings = make_settings(model_dir=model.save(tmp_path / "model"))
    abandoned_category = {"category": {"category_id": "camping", "name": "Camping"}}
    assert await popular_in(settings, "current", abandoned_category) == ["tent", "stove"]
    assert await popular_in(settings, "outdoor", {}) == ["tent", "stove"]
    # a product message: the first product's own category; the block is topped up
    lamp = {"items": [{"product_id": "lamp"}]}
    assert await popular_in(settings, "current", lamp) == ["mug", "tent"]
    assert await popular_in(settings, "no-such-category", {}) == ["mug", "lamp"]


def test_a_category_is_only_for_popular_and_must_be_an_id() -> None:
    def define(recommendations: dict[str, Any]) -> Any:
        flow = parse_flow({"id": "t", "kind": "abandoned_view", "recommendations": recommendations})
        send = flow.steps[1]
        assert isinstance(send, SendStep)
        return send.send.recommendations

    wanted = define({"algorithm": "popular", "category": 42})
    assert (wanted.algorithm, wanted.count, wanted.category) == ("popular", 4, "42")
    with pytest.raises(ConfigError, match="applies to the popular algorithm"):
        define({"algorithm": "personal", "category": "shoes"})
    with pytest.raises(ConfigError, match=r"recommendations\.category: Input should be"):
        define({"algorithm": "popular", "category": ["shoes"]})


async def test_a_cached_ranking_is_read_once_per_ttl_and_shared_by_concurrent_readers(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    client = aioredis.from_url(settings.redis_url or "")
    shared = SharedState(client, settings.redis_namespace)
    clock = ManualClock()
    reads = 0
    real_ids = shared.popular_ids

    async def counted_ids(start: int, count: int) -> list[str]:
        nonlocal reads
        reads += 1
        return await real_ids(start, count)

    shared.popular_ids = counted_ids  # type: ignore[method-assign]
    try:
        await shared.put_products(
            {"product_id": p, "title": p, "url": f"https://s.example/{p}", "price": 1.0,
             "currency": "EUR", "category_ids": cats, "available": True}
            for p, cats in CAMPING.items()
        )  # fmt: skip
        await shared.bump_popularity({"mug": 10.0, "lamp": 9.0, "tent": 5.0, "stove": 4.0})
        cached = PopularRecommender(shared, cache_s=1.0, clock=clock)

        async def ids(**kwargs: Any) -> list[str]:
            recs = await cached.recommend("c1", "popular", 2, **kwargs)
            return [r["product_id"] for r in recs]

        together = await asyncio.gather(*(ids(exclude=[]) for _ in range(5)))
        assert together == [["mug", "lamp"]] * 5 and reads == 1, "one read for all five"
        assert await ids(exclude=["mug"], category="camping") == ["tent", "stove"]
        await shared.bump_popularity({"stove": 100.0})
        assert await ids(exclude=[]) == ["mug", "lamp"], "within the ttl: the cached order"
        assert reads == 1
        clock.advance(1.0)
        assert await ids(exclude=[]) == ["stove", "mug"], "past the ttl: read again"
        assert reads == 2
        uncached = await PopularRecommender(shared).recommend("c1", "popular", 2, ["stove"])
        assert [r["product_id"] for r in uncached] == ["mug", "lamp"]
    finally:
        await client.aclose()
