"""The standard flows end to end, as shipped in ``flows/examples`` with their waits
shortened to seconds: `nudge worker` and `nudge deliver` as real processes on the
real broker, Redis and SMTP server."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import yaml
from redis.asyncio import Redis

from nudge.cli.triggers import publish_definitions
from nudge.promo import PromoPools
from tests.pipeline_support import read_topic, wait_for
from tests.test_pipeline_e2e import Pipeline, pipeline  # noqa: F401  (the fixture)

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[1] / "flows" / "examples"


def example(name: str, **waits: Any) -> dict[str, Any]:
    """An example flow with some of its steps' waits replaced, by step index."""
    definition: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    for index, value in waits.items():
        step = definition["steps"][int(index.removeprefix("step"))]
        if "wait" in step:
            step["wait"] = value
        else:
            step["wait_for"] = {**step["wait_for"], "timeout": value}
    return definition


def order(p: Pipeline, customer: str, order_id: str, **fields: Any) -> None:
    p.shop.event(
        "orders", customer, order_id=order_id, total=89.0, currency="EUR",
        items=[{"product_id": "p1", "quantity": 1, "price": 89.0}], **fields,
    )  # fmt: skip


def test_welcome_thank_you_and_order_status(pipeline: Callable[..., Pipeline]) -> None:  # noqa: F811
    flows = [
        example("welcome", step1=4),  # the reminder 4 s after the welcome
        example("thank-you", step0=2),
        example("order-status"),
    ]
    p = pipeline(flows)
    asyncio.run(load_pool(p, "WELCOME10", ["W-ONLY1"]))  # one code: the second customer's fails
    p.start()
    shop = p.shop
    shop.product("p1", "Trail Shoe", 89.0, category_ids=["shoes"])
    shop.customer("ann", "ann@example.com", first_name="Ann")
    shop.customer("bob", "bob@example.com", first_name="Bob")
    shop.customer("cat", "cat@example.com", historical=True)  # an existing customer
    shop.customer("dan", "dan@example.com", consent={"email": "unsubscribed"})

    wait_for(lambda: len(p.mail_to("bob@example.com")) == 1, "bob's welcome")
    order(p, "bob", "o-bob", type="order_placed")  # ends bob's welcome run
    order(p, "dan", "o-dan", type="order_status", status="shipped")
    order(p, "dan", "o-dan", type="order_status", status="packed")  # not a configured status

    wait_for(lambda: len(p.mail_to("ann@example.com")) == 2, "ann's welcome and reminder")
    welcome, reminder = p.mail_to("ann@example.com")
    assert welcome["Subject"] == "Welcome, Ann!"
    assert reminder["Subject"] == "10% off your first order"
    assert "W-ONLY1" in body_text(reminder), "the pool's one code"
    assert "List-Unsubscribe" in welcome

    wait_for(lambda: len(p.mail_to("bob@example.com")) == 2, "bob's thank-you")
    time.sleep(5)  # past the welcome reminder's time: bob ordered, he gets none
    subjects = [m["Subject"] for m in p.mail_to("bob@example.com")]
    assert subjects == ["Welcome, Bob!", "Thank you for your order o-bob"]

    [status] = p.mail_to("dan@example.com")
    assert status["Subject"] == "Your order o-dan: shipped"
    assert "List-Unsubscribe" not in status, "transactional: no unsubscribe link"
    assert p.mail_to("cat@example.com") == [], "imported customers get no welcome"

    # A second customer reaches the reminder with the pool used up: it fails, named.
    shop.customer("eve", "eve@example.com")
    events = wait_for(lambda: failed_promo(p), "eve's reminder to fail with promo_pool_empty")
    assert [e["customer_id"] for e in events] == ["eve"]
    assert len(p.mail_to("eve@example.com")) == 1, "only the welcome"


async def load_pool(p: Pipeline, pool: str, codes: list[str]) -> None:
    redis = Redis.from_url(p.settings.redis_url or "")
    try:
        await PromoPools(redis, p.settings.redis_namespace).add(pool, codes)
    finally:
        await redis.aclose()


def failed_promo(p: Pipeline) -> list[dict[str, Any]]:
    records = read_topic(p.settings, "delivery-events")
    events = [orjson.loads(r.value()) for r in records]
    return [e for e in events if e["reason"] == "promo_pool_empty"]


def body_text(message: Any) -> str:
    part = message.get_body(("plain",))
    return str(part.get_content()) if part is not None else ""


def test_double_opt_in_confirms_by_post_and_releases_the_welcome(
    pipeline: Callable[..., Pipeline],  # noqa: F811
) -> None:
    flows = [example("double-opt-in", step1=3), example("welcome", step1=600)]
    p = pipeline(flows)
    asyncio.run(load_pool(p, "WELCOME10", ["W-CODE1"]))
    p.start()
    p.shop.customer("ann", "ann@example.com", consent={"email": "pending"})
    p.shop.customer("bob", "bob@example.com", consent={"email": "pending"})

    wait_for(lambda: len(p.mail_to("ann@example.com")) == 1, "ann's confirmation request")
    [request] = p.mail_to("ann@example.com")
    assert request["Subject"] == "Please confirm your subscription"
    assert "List-Unsubscribe" not in request, "transactional"
    [link] = re.findall(r"Confirm my subscription: (\S+)", body_text(request))
    with urllib.request.urlopen(link, timeout=5) as page:  # a GET changes nothing
        assert b"ann@example.com" in page.read()
    time.sleep(1)
    assert len(p.mail_to("ann@example.com")) == 1, "no welcome before the POST"
    request_post = urllib.request.Request(link, data=b"", method="POST")
    with urllib.request.urlopen(request_post, timeout=5) as page:
        assert b"you are subscribed" in page.read()

    wait_for(lambda: len(p.mail_to("ann@example.com")) == 2, "ann's welcome, released")
    assert p.mail_to("ann@example.com")[1]["Subject"] == "Welcome!"
    client = redis.Redis.from_url(p.settings.redis_url or "")
    consent_key = f"{p.settings.redis_namespace}:consent:ann"
    assert client.hget(consent_key, "email") == b"subscribed"

    # bob never confirms: one reminder, and no marketing message at all.
    wait_for(lambda: len(p.mail_to("bob@example.com")) == 2, "bob's reminder")
    subjects = [m["Subject"] for m in p.mail_to("bob@example.com")]
    assert subjects == ["Please confirm your subscription",
                        "Reminder: please confirm your subscription"]  # fmt: skip
    time.sleep(4)
    assert len(p.mail_to("bob@example.com")) == 2
    assert len(p.mail_to("ann@example.com")) == 2, "ann confirmed: no reminder"


def test_a_split_records_its_control_group_and_the_variant_of_each_mail(
    pipeline: Callable[..., Pipeline],  # noqa: F811
) -> None:
    split = {
        "id": "ab",
        "trigger": {"event": "search"},
        "steps": [{"split": {"variants": {"A": 1, "B": 1}, "control": 40,
                             "steps": {"A": [{"send": {"subject": "A"}}],
                                       "B": [{"send": {"subject": "B"}}]}}}],
    }  # fmt: skip
    p = pipeline([split]).start()
    people = [f"s{i}" for i in range(12)]
    for person in people:
        p.shop.customer(person, f"{person}@example.com")
    time.sleep(1)
    for person in people:
        p.shop.click(person, "search", query="tea")

    def outcomes() -> dict[str, dict[str, Any]]:
        events = [orjson.loads(r.value()) for r in read_topic(p.settings, "delivery-events")]
        return {e["customer_id"]: e for e in events if e["trigger_id"] == "ab"}

    def all_outcomes() -> dict[str, dict[str, Any]] | None:
        found = outcomes()
        return found if len(found) == len(people) else None

    seen = wait_for(all_outcomes, "an outcome for each of the 12 customers")
    for person, event in seen.items():
        mails = p.mail_to(f"{person}@example.com")
        if event["variant"] == "control":
            assert (event["status"], event["reason"]) == ("suppressed", "control_group")
            assert mails == []
        else:
            assert event["status"] == "sent" and [m["Subject"] for m in mails] == [event["variant"]]
    assert {e["variant"] for e in seen.values()} == {"A", "B", "control"}


def test_replenishment_from_the_catalogue_param_and_repurchases_recorded(
    pipeline: Callable[..., Pipeline],  # noqa: F811
) -> None:
    refill = example("replenishment")
    refill["steps"][0] = {"wait": {"replenish": {"lead": 0, "fallback": "P30D"}}}
    p = pipeline([refill]).start()
    # replenish_days 0.00005 is about 4 s: the product's own param, from the catalogue.
    p.shop.product("tea", "Green Tea", 5.0, params={"replenish_days": "0.00005"})
    p.shop.product("mug", "Mug", 9.0)
    p.shop.customer("ann", "ann@example.com")
    client = redis.Redis.from_url(p.settings.redis_url or "")
    catalog = f"{p.settings.redis_namespace}:catalog"
    wait_for(lambda: client.hexists(catalog, "tea"), "the catalogue in Redis", 20)
    p.shop.event("orders", "ann", type="order_placed", order_id="o1", total=14.0, currency="EUR",
                 items=[{"product_id": "tea", "quantity": 1, "price": 5.0},
                        {"product_id": "mug", "quantity": 1, "price": 9.0}])  # fmt: skip
    wait_for(lambda: len(p.mail_to("ann@example.com")) == 1, "the tea refill reminder", 30)
    [mail] = p.mail_to("ann@example.com")
    assert mail["Subject"] == "Running low on Green Tea?"
    time.sleep(3)
    assert len(p.mail_to("ann@example.com")) == 1, "the mug waits its 30 days"

    # bob buys tea twice, a day apart by their timestamps: the interval is recorded.
    day_ago = int(time.time() * 1000) - 86_400_000 - 60_000
    tea = {
        "currency": "EUR",
        "total": 5.0,
        "items": [{"product_id": "tea", "quantity": 1, "price": 5.0}],
    }
    p.shop.event("orders", "bob", type="order_placed", order_id="b1", ts=day_ago, **tea)
    p.shop.event("orders", "bob", type="order_placed", order_id="b2", **tea)
    key = f"{p.settings.redis_namespace}:repurchase:tea"
    recorded = wait_for(lambda: client.lrange(key, 0, -1), "bob's interval in Redis", 20)
    assert [int(v) // 60_000 for v in recorded] == [24 * 60 + 1]


def _offer(pid: str, price: str, available: bool = True) -> str:
    return (
        f'<offer id="{pid}" available="{str(available).lower()}">'
        f"<url>https://shop.example.com/p/{pid}</url><price>{price}</price>"
        f"<currencyId>EUR</currencyId><name>{pid.title()} Lamp</name></offer>"
    )


def _import_feed(p: Pipeline, path: Path, *offers: str) -> None:
    from nudge.imports.catalog import import_catalog

    path.write_text(
        '<?xml version="1.0"?>\n<yml_catalog><shop><categories>'
        '<category id="1">Lamps</category></categories><offers>\n'
        + "\n".join(offers)
        + "\n</offers></shop></yml_catalog>\n"
    )
    import_catalog(p.settings, str(path), rejects=path.with_suffix(".rejects"), progress=False)


def test_price_drop_and_back_in_stock_reach_subscribers_viewers_and_carters(
    pipeline: Callable[..., Pipeline],  # noqa: F811
    tmp_path: Path,
) -> None:
    p = pipeline([example("price-drop"), example("back-in-stock")]).start()
    feed = tmp_path / "feed.xml"
    _import_feed(p, feed, _offer("desk", "100"), _offer("floor", "50", available=False))
    for person in ("ann", "bob", "cat", "dan", "eve"):
        p.shop.customer(person, f"{person}@example.com")
    p.shop.click("ann", "product_view", product_id="desk")  # a viewer
    p.shop.click("bob", "product_subscribe", product_id="desk", topic="price_drop")
    p.shop.click("cat", "cart_add", product_id="floor", quantity=1, price=50.0)
    p.shop.click("dan", "product_subscribe", product_id="floor", topic="back_in_stock")
    p.shop.click("eve", "product_view", product_id="floor")  # back in stock skips viewers
    p.shop.click("eve", "product_view", product_id="other")
    client = redis.Redis.from_url(p.settings.redis_url or "")
    wait_for(
        lambda: client.hexists(f"{p.settings.redis_namespace}:catalog", "desk"),
        "the catalogue in Redis",
        20,
    )
    time.sleep(3)  # the interests reach the product index (nothing shows it from outside)

    _import_feed(p, feed, _offer("desk", "80"), _offer("floor", "50"))
    wait_for(lambda: len(p.mail_to("ann@example.com")) == 1, "ann's price drop", 30)
    wait_for(lambda: len(p.mail_to("bob@example.com")) == 1, "bob's price drop", 30)
    wait_for(lambda: len(p.mail_to("cat@example.com")) == 1, "cat's back in stock", 30)
    wait_for(lambda: len(p.mail_to("dan@example.com")) == 1, "dan's back in stock", 30)
    [drop] = p.mail_to("ann@example.com")
    assert drop["Subject"] == "Price drop: Desk Lamp, now €80.00"
    assert "€100.00" in body_text(drop), "the old price, struck through"
    assert "something you looked at" in body_text(drop)
    assert "the price you asked us to watch" in body_text(p.mail_to("bob@example.com")[0])
    [back] = p.mail_to("dan@example.com")
    assert back["Subject"] == "Floor Lamp is back in stock"

    time.sleep(2)
    assert p.mail_to("eve@example.com") == [], "back in stock is for carters here, not viewers"


def test_each_seller_hears_of_their_share_of_an_order_and_of_their_first_sale(
    pipeline: Callable[..., Pipeline],  # noqa: F811
) -> None:
    p = pipeline([example("seller-order-status"), example("seller-milestones")]).start()
    shop = p.shop
    shop.send(
        "sellers",
        "s-anna",
        orjson.dumps(
            {"seller_id": "s-anna", "email": "anna@sellers.example", "name": "Anna's Lamps"}
        ),
    )
    shop.customer("ann", "ann@example.com", first_name="Ann")
    items = [
        {"product_id": "lamp", "quantity": 2, "price": 10.0, "seller_id": "s-anna"},
        {"product_id": "rug", "quantity": 1, "price": 50.0},  # the order's seller: bob
    ]
    placed = {"order_id": "o-1", "items": items, "total": 70.0, "currency": "EUR",
              "seller_id": "s-bob"}  # fmt: skip
    shop.event("orders", "ann", type="order_placed", **placed)
    shop.event("orders", "ann", type="order_status", status="shipped", **placed)
    wait_for(lambda: len(p.mail_to("anna@sellers.example")) == 2, "anna's two messages", 30)
    subjects = sorted(m["Subject"] for m in p.mail_to("anna@sellers.example"))
    assert subjects == ["Congratulations on your first sale!", "Order o-1: shipped"]
    shipped = next(m for m in p.mail_to("anna@sellers.example") if "o-1" in m["Subject"])
    assert "lamp" in body_text(shipped).lower() and "rug" not in body_text(shipped).lower()
    # bob's contact arrives late: what waited for it goes now.
    time.sleep(2)
    assert p.mail_to("bob@sellers.example") == []
    shop.send("sellers", "s-bob", orjson.dumps(
        {"seller_id": "s-bob", "email": "bob@sellers.example"}))  # fmt: skip
    wait_for(lambda: len(p.mail_to("bob@sellers.example")) == 2, "bob's held messages", 30)
    bob = next(m for m in p.mail_to("bob@sellers.example") if "o-1" in m["Subject"])
    assert "rug" in body_text(bob).lower() and "lamp" not in body_text(bob).lower()
    assert "List-Unsubscribe" not in bob, "transactional"
    assert len(p.mail_to("ann@example.com")) == 0, "the buyer is not the seller flows' audience"


def test_include_existing_reaches_customers_the_worker_already_holds(
    pipeline: Callable[..., Pipeline],  # noqa: F811
) -> None:
    p = pipeline([]).start()
    p.shop.customer("ann", "ann@example.com", historical=True)  # imported, never active
    client = redis.Redis.from_url(p.settings.redis_url or "")
    consent = f"{p.settings.redis_namespace}:consent:ann"
    wait_for(lambda: client.exists(consent), "ann in the worker's state", 20)

    def win_back(flow_id: str, subject: str, **fields: Any) -> dict[str, Any]:
        definition = example("win-back")
        definition.update(id=flow_id, trigger={"inactivity": {"for": "PT2S"}}, **fields)
        definition["steps"] = [{"send": {"subject": subject}}]
        return definition

    flows = [
        win_back("win-back-all", "We miss you", include_existing=True),
        win_back("win-back-new", "Only the active hear this"),
    ]
    publish_definitions(p.settings.kafka_bootstrap, p.settings.topic("trigger-config"), flows)
    wait_for(lambda: len(p.mail_to("ann@example.com")) == 1, "ann's win-back", 30)
    time.sleep(4)
    assert [m["Subject"] for m in p.mail_to("ann@example.com")] == ["We miss you"]
