"""The synthetic storefront and the bundled trigger files, without Kafka."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from nudge.clock import ManualClock
from nudge.demo import (
    DEMO_CATEGORIES,
    DEMO_TRIGGERS_PATH,
    PRODUCTION_TRIGGERS_PATH,
    demo_catalog,
    demo_customers,
    play,
    publish_reference_data,
)
from nudge.flows.plan import FlowPlan
from nudge.flows.shorthand import SHORTHAND_KINDS, AbandonmentShorthand
from nudge.models.events import CLICK_TYPES, ClickEvent, CustomerEvent, OrderEvent, Product
from nudge.settings import Settings

Sent = list[tuple[str, bytes, bytes]]


def _collector() -> tuple[Sent, Any]:
    sent: Sent = []

    async def producer_send(topic: str, key: bytes, value: bytes) -> None:
        sent.append((topic, key, value))

    return sent, producer_send


async def _play(seed: int = 7, max_events: int = 200, **kwargs: Any) -> Sent:
    sent, producer_send = _collector()
    settings = kwargs.pop("settings", Settings(topic_prefix="t."))
    count = await play(
        producer_send,
        settings=settings,
        customers=kwargs.pop("customers", demo_customers(8, seed=1, clock=ManualClock())),
        catalog=kwargs.pop("catalog", demo_catalog(30, seed=1)),
        seed=seed,
        speed=1e6,
        stop_event=asyncio.Event(),
        clock=kwargs.pop("clock", ManualClock()),
        max_events=max_events,
        **kwargs,
    )
    assert count == len(sent)
    return sent


# catalogue and customers ----------------------------------------------------------


def test_catalog_is_deterministic_per_seed() -> None:
    assert demo_catalog(40, seed=3) == demo_catalog(40, seed=3)
    assert demo_catalog(40, seed=3) != demo_catalog(40, seed=4)


def test_catalog_is_valid_and_plausible() -> None:
    catalog = demo_catalog(40, seed=3)
    assert len(catalog) == 40
    products = [Product(**d) for d in catalog]
    ids = [p.product_id for p in products]
    assert len(set(ids)) == len(ids)
    assert len({p.title for p in products}) == len(products)
    for p in products:
        assert p.url == f"https://shop.example.com/p/{p.product_id}"
        assert p.image_url is not None and p.image_url.startswith("https://")
        assert p.price > 0 and p.currency == "EUR"
        assert p.category_ids and all(c in DEMO_CATEGORIES for c in p.category_ids)
    unavailable = [p for p in products if not p.available]
    assert 1 <= len(unavailable) <= 5
    assert len({p.category_ids[0] for p in products}) >= 5


def test_catalog_rejects_empty() -> None:
    with pytest.raises(ValueError):
        demo_catalog(0)


def test_customers_are_deterministic_and_valid() -> None:
    clock = ManualClock()
    customers = demo_customers(12, seed=5, clock=clock)
    assert customers == demo_customers(12, seed=5, clock=clock)
    assert customers != demo_customers(12, seed=6, clock=clock)
    records = [CustomerEvent(**d) for d in customers]
    assert len({r.customer_id for r in records}) == 12
    assert len({r.email for r in records}) == 12
    consents = Counter((r.consent or {}).get("email") for r in records)
    assert consents == {"subscribed": 11, "unsubscribed": 1}
    assert records[0].consent == {"email": "subscribed"}
    for r in records:
        assert r.email is not None and r.email.endswith("@example.com")
        assert r.first_name and r.timezone and r.ts == clock.now_ms()


def test_a_single_customer_is_subscribed() -> None:
    (only,) = demo_customers(1, seed=5, clock=ManualClock())
    assert only["consent"] == {"email": "subscribed"}


async def test_publish_reference_data_keys_and_topics() -> None:
    sent, producer_send = _collector()
    catalog, customers = demo_catalog(5, seed=1), demo_customers(3, seed=1)
    n = await publish_reference_data(
        producer_send, settings=Settings(topic_prefix="t."), customers=customers, catalog=catalog
    )
    assert n == len(sent) == 8
    assert [(t, k) for t, k, _ in sent[:5]] == [
        ("t.catalog", p["product_id"].encode()) for p in catalog
    ]
    assert [(t, k) for t, k, _ in sent[5:]] == [
        ("t.customers", c["customer_id"].encode()) for c in customers
    ]
    assert Product(**orjson.loads(sent[0][2])).title == catalog[0]["title"]


# the shopper simulation ------------------------------------------------------------


async def test_play_produces_every_click_type_and_orders() -> None:
    customers = demo_customers(8, seed=1, clock=ManualClock())
    catalog = demo_catalog(30, seed=1)
    sent = await _play(customers=customers, catalog=catalog, max_events=200)
    assert len(sent) == 200
    known = {c["customer_id"] for c in customers}
    available = {p["product_id"] for p in catalog if p["available"]}
    types: Counter[str] = Counter()
    for topic, key, value in sent:
        payload = orjson.loads(value)
        assert key.decode() == payload["customer_id"] and key.decode() in known
        if topic == "t.clickstream":
            click = ClickEvent(**payload)
            assert click.type in CLICK_TYPES and click.session_id
            if click.type in ("cart_add", "cart_remove"):
                assert click.product_id in available and (click.quantity or 0) >= 1
            if click.type == "search":
                assert click.query
            if click.type == "category_view":
                assert click.category_id in DEMO_CATEGORIES
            types[click.type] += 1
        else:
            assert topic == "t.orders"
            order = OrderEvent(**payload)
            assert order.items and order.currency == "EUR"
            items = payload["items"]
            assert order.total == round(sum(i["price"] * i["quantity"] for i in items), 2)
            types[order.type] += 1
    assert set(CLICK_TYPES) <= set(types)
    assert types["order_placed"] >= 1
    assert len({orjson.loads(v)["event_id"] for _, _, v in sent}) == len(sent)


async def test_play_opening_shows_every_story_quickly() -> None:
    """The scripted opening: each abandonment kind and a purchase in the first events."""
    sent = await _play(max_events=40)
    types = {orjson.loads(v)["type"] for _, _, v in sent}
    assert set(CLICK_TYPES) | {"order_placed"} <= types


async def test_buyers_buy_what_they_added() -> None:
    sent = await _play(max_events=300)
    added: dict[str, set[str]] = {}
    orders = 0
    for topic, key, value in sent:
        payload = orjson.loads(value)
        if payload["type"] == "cart_add":
            added.setdefault(key.decode(), set()).add(payload["product_id"])
        if topic == "t.orders" and payload["type"] == "order_placed":
            orders += 1
            bought = {i["product_id"] for i in payload["items"]}
            assert bought <= added.get(key.decode(), set())
    assert orders >= 2


async def test_play_is_deterministic_per_seed() -> None:
    assert await _play(seed=11, max_events=60) == await _play(seed=11, max_events=60)
    assert await _play(seed=11, max_events=60) != await _play(seed=12, max_events=60)


async def test_play_uses_the_injected_clock() -> None:
    clock = ManualClock(start_ms=1_234_000)
    sent = await _play(clock=clock, max_events=10)
    assert {orjson.loads(v)["ts"] for _, _, v in sent} == {1_234_000}


async def test_play_stops_when_the_event_is_set() -> None:
    sent, producer_send = _collector()
    stop = asyncio.Event()
    task = asyncio.create_task(
        play(
            producer_send,
            settings=Settings(),
            customers=demo_customers(4, seed=1),
            catalog=demo_catalog(10, seed=1),
            speed=50.0,
            stop_event=stop,
        )
    )
    await asyncio.sleep(0.2)
    stop.set()
    count = await asyncio.wait_for(task, timeout=2)
    assert count == len(sent) >= 1
    assert {t for t, _, _ in sent} <= {"clickstream", "orders"}


async def test_play_with_one_customer_and_one_product() -> None:
    sent = await _play(
        customers=demo_customers(1, seed=2), catalog=demo_catalog(1, seed=2), max_events=30
    )
    assert len(sent) == 30


async def test_play_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        await _play(max_events=1, customers=[])
    _, producer_send = _collector()
    with pytest.raises(ValueError):
        await play(
            producer_send,
            settings=Settings(),
            customers=demo_customers(1),
            catalog=demo_catalog(1),
            speed=0,
            max_events=1,
        )


# trigger files ---------------------------------------------------------------------


def _load(path: Path, *, shorthand_only: bool = True) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, list)
    return [d for d in data if "kind" in d] if shorthand_only else data


@pytest.mark.parametrize("path", [DEMO_TRIGGERS_PATH, PRODUCTION_TRIGGERS_PATH])
def test_trigger_files_are_valid(path: Path) -> None:
    for definition in _load(path, shorthand_only=False):
        FlowPlan.parse(definition)  # each runs as a flow
    triggers = [AbandonmentShorthand.model_validate(d) for d in _load(path)]
    assert {t.kind for t in triggers} == set(SHORTHAND_KINDS)
    assert len({t.id for t in triggers}) == len(triggers)
    assert all(t.enabled and t.channel == "email" for t in triggers)
    cart = next(t for t in triggers if t.kind == "abandoned_cart")
    assert cart.follow_up is not None and cart.follow_up.delay > cart.delay
    assert cart.subject and "customer.first_name" in cart.subject
    assert all(t.recommendations is not None for t in triggers)
    # Some triggers rely on the built-in templates.
    assert any(t.subject is None and t.html is None for t in triggers)


def test_demo_triggers_fire_within_a_minute() -> None:
    triggers = [AbandonmentShorthand.model_validate(d) for d in _load(DEMO_TRIGGERS_PATH)]
    assert all(t.delay <= 30_000 for t in triggers)
    cart = next(t for t in triggers if t.kind == "abandoned_cart")
    assert cart.follow_up is not None and cart.follow_up.delay <= 60_000
    wanted = {t.kind: t.recommendations for t in triggers}
    for recommendations in wanted.values():
        # The demo has no trained model: only the algorithms that need none.
        assert recommendations is not None and recommendations.algorithm in ("popular", "search")
        assert recommendations.count == 4
    search, category = wanted["abandoned_search"], wanted["abandoned_category"]
    assert search is not None and search.algorithm == "search", "products matching the query"
    assert category is not None and category.category == "current", "the browsed category's"


def test_production_triggers_have_realistic_delays() -> None:
    triggers = [AbandonmentShorthand.model_validate(d) for d in _load(PRODUCTION_TRIGGERS_PATH)]
    assert all(t.delay >= 3_600_000 for t in triggers)


async def test_every_event_passes_the_topic_codec() -> None:
    """What the demo publishes is what the stream workers accept."""
    codec = pytest.importorskip("nudge.codec")
    sent, producer_send = _collector()
    settings, catalog, customers = Settings(), demo_catalog(), demo_customers()
    await publish_reference_data(
        producer_send, settings=settings, customers=customers, catalog=catalog
    )
    await play(
        producer_send,
        settings=settings,
        customers=customers,
        catalog=catalog,
        speed=1e6,
        max_events=300,
    )
    for topic, _, value in sent:
        codec.DECODERS[topic](value)
