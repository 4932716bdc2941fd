"""A synthetic storefront: a catalogue, customers, and shoppers who browse, leave and buy.

Everything is deterministic per ``seed`` (timestamps aside, which come from an injected
clock). ``play`` knows nothing about Kafka: it calls an injected ``producer_send``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from random import Random
from typing import Any

import orjson

from nudge.clock import Clock, SystemClock
from nudge.demo.vocabulary import (
    ADJECTIVES,
    COLOURS,
    DEMO_CATEGORIES,
    FIRST_NAMES,
    LAST_NAMES,
    RANGES,
    TIMEZONES,
)
from nudge.settings import Settings

log = logging.getLogger(__name__)

#: ``async (topic_name, key, value) -> None``; the topic name already carries the prefix.
ProducerSend = Callable[[str, bytes, bytes], Awaitable[None]]

SHOP_URL = "https://shop.example.com"
CURRENCY = "EUR"

#: The first sessions of every run, so each abandonment kind (and a cancelled one) shows
#: up within a minute; after them the stories are drawn at random with these weights.
_OPENING = (
    "abandoned_cart",
    "abandoned_view",
    "abandoned_category",
    "abandoned_search",
    "buyer",
    "comeback_buyer",
)
_WEIGHTS: dict[str, int] = {
    "abandoned_cart": 3,
    "abandoned_view": 3,
    "abandoned_category": 2,
    "abandoned_search": 2,
    "buyer": 3,
    "comeback_buyer": 1,
    "cart_cleared": 1,
}
_DESCRIPTIONS: dict[str, str] = {
    "abandoned_cart": "fills a cart and leaves",
    "abandoned_view": "looks at a product and leaves",
    "abandoned_category": "browses a category and leaves",
    "abandoned_search": "searches and leaves",
    "buyer": "searches, adds to cart and buys",
    "comeback_buyer": "adds to cart, leaves, and comes back to buy",
    "cart_cleared": "adds to cart, changes their mind and empties it",
}
_BASE_INTERVAL_S = 0.4  # ~2.5 events/s at speed 1
_CONCURRENT_SESSIONS = 3


def _uuid(rng: Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _dumps(value: Mapping[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in value.items() if v is not None})


def demo_catalog(
    n: int = 40, seed: int = 42, *, image_base: str | None = None
) -> list[dict[str, Any]]:
    """``n`` products spread over the primary categories; about one in twelve unavailable.

    A product's picture is ``<image_base>/<product_id>.png``: a running ``ImageServer``'s
    ``base_url`` (``nudge dev --demo``), else the shop's, where nothing answers.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    rng = Random(f"catalog:{seed}")
    primaries = list(RANGES)
    unavailable = set(rng.sample(range(1, n), n // 12)) if n >= 12 else set()
    seen: set[str] = set()
    products: list[dict[str, Any]] = []
    for i in range(n):
        category = primaries[i % len(primaries)]
        nouns, low, high = RANGES[category]
        title = ""
        for _ in range(20):
            title = f"{rng.choice(ADJECTIVES)} {rng.choice(nouns)}, {rng.choice(COLOURS)}"
            if title not in seen:
                break
        else:
            title = f"{title} No. {i + 1}"
        seen.add(title)
        category_ids = [category]
        roll = rng.random()
        if roll < 0.15:
            category_ids.append("c-sale")
        elif roll < 0.30:
            category_ids.append("c-new")
        product_id = f"p-{1001 + i}"
        products.append(
            {
                "product_id": product_id,
                "title": title,
                "url": f"{SHOP_URL}/p/{product_id}",
                "image_url": f"{image_base or SHOP_URL + '/img'}/{product_id}.png",
                "price": round(rng.randint(low, high) + 0.99, 2),
                "currency": CURRENCY,
                "category_ids": category_ids,
                "category_path": [DEMO_CATEGORIES[c] for c in category_ids],
                "available": i not in unavailable,
            }
        )
    return products


def demo_customers(
    n: int = 12, seed: int = 42, *, clock: Clock | None = None
) -> list[dict[str, Any]]:
    """``n`` customer upserts; all consent to email except one (never the first)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    rng = Random(f"customers:{seed}")
    ts = (clock or SystemClock()).now_ms()
    unsubscribed = rng.randrange(1, n) if n >= 2 else -1
    emails: set[str] = set()
    customers: list[dict[str, Any]] = []
    for i in range(n):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = f"{first}.{last}".lower()
        if local in emails:
            local = f"{local}{i + 1}"
        emails.add(local)
        customers.append(
            {
                "event_id": _uuid(rng),
                "customer_id": f"cust-{1001 + i}",
                "ts": ts,
                "email": f"{local}@example.com",
                "first_name": first,
                "last_name": last,
                "timezone": rng.choice(TIMEZONES),
                "consent": {"email": "unsubscribed" if i == unsubscribed else "subscribed"},
                "attributes": {"loyalty_tier": rng.choice(("bronze", "silver", "gold"))},
            }
        )
    return customers


async def publish_reference_data(
    producer_send: ProducerSend,
    *,
    settings: Settings,
    customers: Sequence[Mapping[str, Any]],
    catalog: Sequence[Mapping[str, Any]],
) -> int:
    """Put the catalogue (keyed by product id) and the customers on their topics."""
    for product in catalog:
        key = str(product["product_id"]).encode()
        await producer_send(settings.topic("catalog"), key, _dumps(product))
    for customer in customers:
        key = str(customer["customer_id"]).encode()
        await producer_send(settings.topic("customers"), key, _dumps(customer))
    return len(catalog) + len(customers)


@dataclass(slots=True)
class _Step:
    topic: str  # "clickstream" or "orders"
    payload: dict[str, Any]
    wait_ticks: int = 0  # idle ticks before this step, e.g. a shopper who comes back


@dataclass(slots=True)
class _Session:
    customer_id: str
    story: str
    session_id: str
    steps: deque[_Step] = field(default_factory=deque)
    ready_at: int = 0


class _Stories:
    """Builds the scripted steps of one shopping session per story."""

    def __init__(self, rng: Random, catalog: Sequence[Mapping[str, Any]]) -> None:
        self.rng = rng
        products = [dict(p) for p in catalog]
        self.buyable = [p for p in products if p.get("available", True)] or products
        self.buyable_ids = {p["product_id"] for p in self.buyable}
        self.by_category: dict[str, list[dict[str, Any]]] = {}
        for product in products:
            for category in product.get("category_ids") or []:
                self.by_category.setdefault(category, []).append(product)
        browsable = [c for c in RANGES if c in self.by_category]
        self.categories = browsable or sorted(self.by_category) or ["c-misc"]

    def build(self, story: str) -> list[_Step]:
        result: list[_Step] = getattr(self, f"_{story}")()
        return result

    # building blocks -------------------------------------------------------------
    def _product(self, category: str | None = None, *, not_id: str | None = None) -> dict[str, Any]:
        pool = [
            p
            for p in self.by_category.get(category or "", [])
            if p["product_id"] in self.buyable_ids and p["product_id"] != not_id
        ]
        if not pool:
            pool = [p for p in self.buyable if p["product_id"] != not_id] or self.buyable
        return self.rng.choice(pool)

    def _click(self, kind: str, product: Mapping[str, Any] | None = None, **extra: Any) -> _Step:
        payload: dict[str, Any] = {"type": kind, **extra}
        if product is not None:
            payload["product_id"] = product["product_id"]
            payload["price"] = product["price"]
            categories = product.get("category_ids") or []
            payload.setdefault("category_id", categories[0] if categories else None)
        return _Step("clickstream", payload)

    def _cart_add(self, product: Mapping[str, Any]) -> tuple[_Step, dict[str, Any]]:
        quantity = 1 if self.rng.random() < 0.8 else 2
        item = {
            "product_id": product["product_id"],
            "quantity": quantity,
            "price": product["price"],
        }
        return self._click("cart_add", product, quantity=quantity), item

    def _query(self, product: Mapping[str, Any]) -> str:
        title = str(product["title"]).split(",")[0]
        words = title.lower().split()
        return " ".join(words[1:]) if len(words) > 1 and self.rng.random() < 0.7 else title.lower()

    def _order(self, items: list[dict[str, Any]], wait_ticks: int = 0) -> list[_Step]:
        order_id = f"o-{self.rng.getrandbits(40):010x}"
        total = round(sum(i["price"] * i["quantity"] for i in items), 2)
        base = {"order_id": order_id, "items": items, "total": total, "currency": CURRENCY}
        placed = _Step("orders", {"type": "order_placed", "status": "placed", **base}, wait_ticks)
        shipped = _Step(
            "orders", {"type": "order_status", "status": "shipped", **base}, self.rng.randint(8, 20)
        )
        return [placed, shipped]

    # stories ---------------------------------------------------------------------
    def _abandoned_cart(self) -> list[_Step]:
        category = self.rng.choice(self.categories)
        kept = self._product(category)
        other = self._product(not_id=kept["product_id"])
        add_kept, _ = self._cart_add(kept)
        add_other, _ = self._cart_add(other)
        return [
            self._click("category_view", category_id=category),
            self._click("product_view", kept),
            add_kept,
            self._click("product_view", other),
            add_other,
            self._click("cart_remove", other, quantity=add_other.payload["quantity"]),
        ]

    def _abandoned_view(self) -> list[_Step]:
        product = self._product()
        steps = [self._click("product_view", product)]
        if self.rng.random() < 0.5:
            again = self._click("product_view", product)
            again.wait_ticks = 2
            steps.append(again)
        if self.rng.random() < 0.3:  # "tell me when the price drops"
            steps.append(self._click("product_subscribe", product, topic="price_drop"))
        return steps

    def _abandoned_category(self) -> list[_Step]:
        category = self.rng.choice(self.categories)
        return [
            self._click("category_view", category_id=category)
            for _ in range(self.rng.randint(1, 2))
        ]

    def _abandoned_search(self) -> list[_Step]:
        return [self._click("search", query=self._query(self._product()))]

    def _buyer(self) -> list[_Step]:
        product = self._product()
        add, item = self._cart_add(product)
        return [
            self._click("search", query=self._query(product)),
            self._click("product_view", product),
            add,
            *self._order([item]),
        ]

    def _comeback_buyer(self) -> list[_Step]:
        product = self._product()
        add, item = self._cart_add(product)
        back = self._click("product_view", product)
        back.wait_ticks = self.rng.randint(8, 14)  # back well before the cart trigger fires
        return [self._click("product_view", product), add, back, *self._order([item])]

    def _cart_cleared(self) -> list[_Step]:
        product = self._product()
        add, item = self._cart_add(product)
        return [
            self._click("product_view", product),
            add,
            self._click("cart_remove", product, quantity=item["quantity"]),
        ]


async def _pause(stop_event: asyncio.Event | None, seconds: float) -> None:
    if stop_event is None or seconds <= 0.001:
        await asyncio.sleep(max(seconds, 0.0))
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop_event.wait(), seconds)


async def play(
    producer_send: ProducerSend,
    *,
    settings: Settings,
    customers: Sequence[Mapping[str, Any]],
    catalog: Sequence[Mapping[str, Any]],
    seed: int = 42,
    speed: float = 1.0,
    stop_event: asyncio.Event | None = None,
    clock: Clock | None = None,
    max_events: int | None = None,
) -> int:
    """Simulate shoppers until ``stop_event`` is set (or ``max_events`` were sent).

    A scripted opening makes every abandonment kind happen, plus a purchase and a
    shopper who comes back to buy (cancelling their abandoned cart); random sessions
    follow. About 2.5 events per second times ``speed``. Returns the events sent.
    """
    if speed <= 0:
        raise ValueError("speed must be positive")
    if not customers or not catalog:
        raise ValueError("play needs at least one customer and one product")
    rng = Random(seed)
    clock = clock or SystemClock()
    stories = _Stories(rng, catalog)
    topics = {name: settings.topic(name) for name in ("clickstream", "orders")}
    names = {str(c["customer_id"]): str(c.get("first_name") or c["customer_id"]) for c in customers}
    reachable = [
        str(c["customer_id"])
        for c in customers
        if (c.get("consent") or {}).get("email", "subscribed") == "subscribed"
    ]
    opening = deque(_OPENING)
    active: list[_Session] = []
    interval = _BASE_INTERVAL_S / speed
    tick = sent = 0

    def start_session() -> _Session | None:
        busy = {s.customer_id for s in active}
        story = (
            opening[0]
            if opening
            else rng.choices(list(_WEIGHTS), weights=list(_WEIGHTS.values()))[0]
        )
        # The opening goes to customers who can receive mail, so its emails show up.
        pool = [c for c in (reachable if opening else names) if c not in busy]
        if not pool and opening:
            pool = [c for c in names if c not in busy]
        if not pool:
            return None
        if opening:
            opening.popleft()
        customer_id = rng.choice(pool)
        session = _Session(
            customer_id, story, f"s-{rng.getrandbits(48):012x}", deque(stories.build(story)), tick
        )
        log.info("demo shopper %s (%s) %s", names[customer_id], customer_id, _DESCRIPTIONS[story])
        return session

    while not (stop_event is not None and stop_event.is_set()):
        if max_events is not None and sent >= max_events:
            break
        tick += 1
        ready = [s for s in active if s.ready_at <= tick]
        if (len(active) < _CONCURRENT_SESSIONS or not ready) and (
            len(active) < 2 * _CONCURRENT_SESSIONS
        ):
            new = start_session()
            if new is not None:
                active.append(new)
                ready.append(new)
        if ready:
            session = rng.choice(ready)
            step = session.steps.popleft()
            value: dict[str, Any] = {
                "event_id": _uuid(rng),
                **step.payload,
                "customer_id": session.customer_id,
                "ts": clock.now_ms(),
            }
            if step.topic == "clickstream":
                value["session_id"] = session.session_id
            await producer_send(topics[step.topic], session.customer_id.encode(), _dumps(value))
            sent += 1
            if session.steps:
                session.ready_at = tick + 1 + session.steps[0].wait_ticks
            else:
                active.remove(session)
        await _pause(stop_event, interval * rng.uniform(0.5, 1.5))
    return sent
