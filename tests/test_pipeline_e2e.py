"""The whole service end to end: `nudge worker` and `nudge deliver` as real processes,
a real Kafka-protocol broker (Tansu), real Redis and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from nudge.cli.triggers import publish_definitions
from nudge.codec import AVRO_HEADERS, encode_avro
from nudge.delivery.sent_messages import SentMessage
from nudge.embedded import MailCatcher
from nudge.settings import Settings
from nudge.topics import create_topics
from tests.pipeline_support import (
    NudgeProcess,
    Storefront,
    committed_offsets,
    read_topic,
    running,
    wait_for,
)

pytestmark = pytest.mark.e2e

CART = {"id": "cart", "kind": "abandoned_cart", "delay": 2, "follow_up": {"delay": 3}}
VIEW = {"id": "view", "kind": "abandoned_view", "delay": 2}
SEARCH = {"id": "search", "kind": "abandoned_search", "delay": 2}
CATEGORY = {"id": "category", "kind": "abandoned_category", "delay": 2}


class Pipeline:
    def __init__(self, settings: Settings, catcher: MailCatcher, logs: Path) -> None:
        self.settings = settings
        self.catcher = catcher
        self.logs = logs
        self.shop = Storefront(settings)
        self.worker = NudgeProcess("worker", settings, logs / "worker.log")
        self.deliver = NudgeProcess("deliver", settings, logs / "deliver.log")

    def start(self, *, deliver: bool = True) -> Pipeline:
        self.worker.start()
        if deliver:
            self.deliver.start()
        wait_for(self.healthy, "the stream worker to be ready")
        return self

    def healthy(self) -> bool:
        assert running([self.worker]), self.worker.log()[-3000:]
        try:
            with urllib.request.urlopen(self.url("/health"), timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}{path}"

    def mail_to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.catcher.messages() if m["To"] == address]

    def command_id(self, mail: EmailMessage) -> str:
        """The send command a mail was for: its opaque X-Nudge-Ref, looked up as a bounce's."""
        client = redis.Redis.from_url(self.settings.redis_url or "")
        try:
            raw = client.get(f"{self.settings.redis_namespace}:sent:{mail['X-Nudge-Ref']}")
        finally:
            client.close()
        assert isinstance(raw, bytes), "every sent message is on record under its ref"
        return SentMessage.from_bytes(raw).command_id

    def stop(self) -> None:
        self.deliver.stop()
        self.worker.stop()


@pytest.fixture
def pipeline(
    make_settings: Callable[..., Settings],
    mail_catcher: Callable[..., MailCatcher],
    tmp_path: Path,
) -> Iterator[Callable[..., Pipeline]]:
    started: list[Pipeline] = []

    def make(triggers: list[dict[str, Any]], **overrides: Any) -> Pipeline:
        catcher = mail_catcher()
        settings = make_settings(smtp_port=catcher.port, **overrides)
        settings = settings.model_copy(
            update={
                "public_url": f"http://127.0.0.1:{settings.web_port}",
                "data_dir": tmp_path / f"data-{len(started)}",
            }
        )
        create_topics(settings)
        publish_definitions(settings.kafka_bootstrap, settings.topic("trigger-config"), triggers)
        built = Pipeline(settings, catcher, tmp_path)
        started.append(built)
        return built

    yield make
    for built in started:
        built.stop()


def test_abandonment_emails_end_to_end(pipeline: Callable[..., Pipeline]) -> None:
    p = pipeline([CART, VIEW, SEARCH, CATEGORY]).start()
    shop = p.shop
    shop.product("p1", "Trail Shoe", 89.0, category_ids=["shoes"])
    shop.product("p2", "Rain Jacket", 120.0, category_ids=["coats"])
    shop.product("p3", "Waterproof Hiking Boots", 140.0, category_ids=["boots"])
    people = {n: f"{n}@example.com" for n in ("ann", "bob", "cat", "dan", "eve", "fay")}
    for name, email in people.items():
        shop.customer(name, email, first_name=name.title())
    # The catalogue first, as a real shop's feed precedes its orders: an order cancels a
    # category's email only once the worker knows the categories of what was bought.
    client = redis.Redis.from_url(p.settings.redis_url or "")
    catalog = f"{p.settings.redis_namespace}:catalog"
    wait_for(lambda: all(client.hexists(catalog, p) for p in ("p1", "p2", "p3")), "catalogue")
    time.sleep(1)  # profiles first, as a real shop's sign-up precedes browsing

    shop.click("ann", "cart_add", product_id="p1", quantity=2, price=89.0)
    shop.click("bob", "cart_add", product_id="p2", quantity=1, price=120.0)
    shop.event(
        "orders",
        "bob",
        type="order_placed",
        order_id="o-bob",
        total=120.0,
        currency="EUR",
        items=[{"product_id": "p2", "quantity": 1, "price": 120.0}],
    )
    shop.click("cat", "product_view", product_id="p2")
    shop.click("dan", "search", query="waterproof boots")
    shop.click("eve", "category_view", category_id="coats")
    shop.click("fay", "category_view", category_id="shoes")
    shop.event(
        "orders",
        "fay",
        type="order_placed",
        order_id="o-fay",
        total=89.0,
        currency="EUR",
        items=[{"product_id": "p1", "quantity": 1, "price": 89.0}],
    )

    for name in ("ann", "cat", "dan", "eve"):
        wait_for(lambda name=name: p.mail_to(people[name]), f"an email to {name}")
    follow_ups = wait_for(
        lambda: len(p.mail_to(people["ann"])) >= 2 and p.mail_to(people["ann"]), "ann's follow-up"
    )
    time.sleep(3)  # long enough for any wrongly armed timer (delay 2 s) to have fired
    assert p.mail_to(people["bob"]) == [], "an order cancels the abandoned cart"
    assert p.mail_to(people["fay"]) == [], "buying from the category cancels it"
    assert len(p.mail_to(people["ann"])) == 2, "one first email and one follow-up, no more"
    assert len(p.mail_to(people["cat"])) == 1

    first = follow_ups[0]
    body = first.get_body(("html",)).get_content()
    assert "Trail Shoe" in body and "utm_source=" in body
    assert p.settings.postal_address in body
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    searched = p.mail_to(people["dan"])[0].get_body(("html",)).get_content()
    assert "waterproof boots" in searched
    assert "Waterproof Hiking Boots" in searched, "a search email recommends what matches it"

    # One-click unsubscribe (RFC 8058): GET only confirms, POST unsubscribes.
    # The one-click link first, then the mailto: alternative (for `nudge inbound`).
    link, mailto = (uri.strip(" <>") for uri in first["List-Unsubscribe"].split(","))
    assert mailto.startswith("mailto:unsubscribe+")
    assert link.startswith(p.settings.public_url)
    with urllib.request.urlopen(link, timeout=5) as page:
        assert page.status == 200 and b"<form" in page.read()
    tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(tampered, method="POST"), timeout=5)
    assert 400 <= refused.value.code < 500
    client = redis.Redis.from_url(p.settings.redis_url or "")
    consent_key = f"{p.settings.redis_namespace}:consent:ann"
    assert client.hget(consent_key, "email") == b"subscribed", "a refused token changes nothing"
    with urllib.request.urlopen(urllib.request.Request(link, method="POST"), timeout=5) as done:
        assert done.status == 200
    assert client.hget(consent_key, "email") == b"unsubscribed"
    opt_outs = [orjson.loads(r.value()) for r in read_topic(p.settings, "customers")]
    assert {"email": "unsubscribed"} in [
        o.get("consent") for o in opt_outs if o["customer_id"] == "ann"
    ]

    shop.click("ann", "cart_add", product_id="p2", quantity=1, price=120.0)
    time.sleep(4)
    assert len(p.mail_to(people["ann"])) == 2, "no email after unsubscribing"


def test_bad_input_is_dead_lettered_and_the_rest_goes_on(pipeline: Callable[..., Pipeline]) -> None:
    p = pipeline([CART], max_payload_bytes=2048).start()
    shop = p.shop
    for name in ("gus", "hal", "ivy"):
        shop.customer(name, f"{name}@example.com")
    time.sleep(1)
    shop.click("gus", "cart_add", product_id="p9", quantity=1, price=5.0)
    shop.send("clickstream", "x", b"{not json")
    shop.send("clickstream", "x", b"\x00\x01garbage", headers=AVRO_HEADERS)
    shop.send(
        "clickstream",
        "x",
        orjson.dumps({"event_id": "e", "type": "teleport", "customer_id": "x", "ts": 1}),
    )
    shop.send(
        "clickstream",
        None,
        orjson.dumps({"event_id": "e", "type": "search", "query": "q", "ts": 1}),
    )
    shop.send(
        "clickstream",
        "x",
        orjson.dumps(
            {"event_id": "e", "type": "search", "customer_id": "x", "ts": 1, "query": "q" * 4000}
        ),
    )
    avro_event = {
        "event_id": "e-avro",
        "type": "cart_add",
        "customer_id": "hal",
        "ts": int(time.time() * 1000),
        "product_id": "p9",
        "quantity": 1,
        "price": 5.0,
    }
    shop.send("clickstream", "hal", encode_avro("clickstream", avro_event), headers=AVRO_HEADERS)
    # One bad field is refused alone: ivy keeps her address, the name is applied.
    shop.event("customers", "ivy", email="ivy\r\nBcc: x@evil.com", first_name="Ivy")
    shop.click("ivy", "cart_add", product_id="p9", quantity=1, price=5.0)

    for name in ("gus", "hal", "ivy"):
        wait_for(lambda name=name: p.mail_to(f"{name}@example.com"), f"an email to {name}")
    letters = wait_for(
        lambda: (
            len(read_topic(p.settings, "dead-letter")) >= 6
            and read_topic(p.settings, "dead-letter")
        ),
        "six dead letters",
    )
    reasons = {dict(r.headers())["nudge.dlq.reason"].decode() for r in letters}
    assert reasons == {
        "malformed_json",
        "bad_avro",
        "unknown_type",
        "missing_customer_id",
        "oversized_payload",
        "bad_field",
    }
    assert "Ivy" in p.mail_to("ivy@example.com")[0].get_body(("html",)).get_content()
    assert b"{not json" in [r.value() for r in letters], "the original bytes are kept"
    for letter in letters:
        headers = dict(letter.headers())
        source = "customers" if headers["nudge.dlq.reason"] == b"bad_field" else "clickstream"
        assert headers["nudge.dlq.topic"] == p.settings.topic(source).encode()
        assert int(headers["nudge.dlq.offset"]) >= 0


def test_trigger_config_applies_live_and_bad_config_is_rejected(
    pipeline: Callable[..., Pipeline],
) -> None:
    p = pipeline([{**CART, "enabled": False}]).start()
    shop = p.shop
    shop.customer("jon", "jon@example.com")
    shop.customer("kim", "kim@example.com")
    time.sleep(1)
    shop.click("jon", "cart_add", product_id="p1", quantity=1, price=5.0)
    broken = {**CART, "id": "broken", "subject": "{% if %}"}
    shop.send("trigger-config", "broken", orjson.dumps(broken))
    shop.send("trigger-config", "slow", orjson.dumps({**CART, "id": "slow", "delay": "soon"}))

    def rejected() -> dict[str, str]:
        with urllib.request.urlopen(p.url("/health"), timeout=2) as response:
            found: dict[str, str] = orjson.loads(response.read())["rejected_triggers"]
        return found if {"broken", "slow"} <= set(found) else {}

    reasons = wait_for(rejected, "both bad trigger configs to be rejected")
    assert "subject" in reasons["broken"] and "duration" in reasons["slow"]
    time.sleep(3)
    assert p.mail_to("jon@example.com") == [], "a disabled trigger sends nothing"

    shop.send(
        "trigger-config",
        "cart",
        orjson.dumps({**CART, "subject": "Still thinking, {{ customer.first_name or 'friend' }}?"}),
    )
    time.sleep(1)
    shop.click("kim", "cart_add", product_id="p1", quantity=1, price=5.0)
    mail = wait_for(lambda: p.mail_to("kim@example.com"), "the re-enabled trigger's email")
    assert mail[0]["Subject"] == "Still thinking, friend?"


def test_timer_survives_a_worker_crash(pipeline: Callable[..., Pipeline]) -> None:
    p = pipeline([{**CART, "delay": 8, "follow_up": None}]).start()
    p.shop.customer("lea", "lea@example.com")
    time.sleep(1)
    added = p.shop.click("lea", "cart_add", product_id="p1", quantity=1, price=5.0)
    time.sleep(2)
    p.worker.kill()
    p.worker.start()
    mail = wait_for(lambda: p.mail_to("lea@example.com"), "the email after the crash")
    received = time.time() * 1000
    assert received >= added["ts"] + 8000, "never before the due time"
    time.sleep(4)
    assert len(p.mail_to("lea@example.com")) == 1, "exactly one email across the crash"
    assert "cart" in p.command_id(mail[0])


def test_timers_move_with_partitions_when_workers_scale(
    pipeline: Callable[..., Pipeline], tmp_path: Path
) -> None:
    """A second worker takes over partitions, then the first one dies: every armed
    timer still fires once, from whichever worker owns its partition by then."""
    from nudge.embedded import free_port

    p = pipeline([{**CART, "delay": 12, "follow_up": None}], partitions=4).start()
    names = [f"sc{i}" for i in range(12)]
    for name in names:
        p.shop.customer(name, f"{name}@example.com")
    time.sleep(1)
    added = {
        name: p.shop.click(name, "cart_add", product_id="p1", quantity=1, price=5.0)
        for name in names
    }
    second_settings = p.settings.model_copy(
        update={"web_port": free_port(), "data_dir": tmp_path / "second-worker"}
    )
    second = NudgeProcess("worker", second_settings, tmp_path / "worker-2.log").start()
    try:
        time.sleep(4)
        p.worker.kill()
        for name in names:
            wait_for(lambda name=name: p.mail_to(f"{name}@example.com"), f"{name}'s email")
        time.sleep(3)
        for name in names:
            mails = p.mail_to(f"{name}@example.com")
            assert len(mails) == 1, f"{name} got {len(mails)} emails"
            assert int(p.command_id(mails[0]).split(":")[2]) == added[name]["ts"]
    finally:
        second.stop()


def test_offsets_are_committed_once_the_records_are_applied(
    pipeline: Callable[..., Pipeline],
) -> None:
    """The worker commits its own positions (not Faust's acknowledgements): they must
    still reach the end of what it applied, bad records included."""
    p = pipeline([CART]).start(deliver=False)
    for i in range(30):
        p.shop.click(f"cm{i}", "product_view", product_id=f"p{i}")
    p.shop.send("clickstream", "x", b"{not json")
    p.shop.customer("cm0", "cm0@example.com")

    def caught_up() -> bool:
        clicks = committed_offsets(p.settings, "clickstream")
        customers = committed_offsets(p.settings, "customers")
        return sum(max(o, 0) for o in clicks.values()) == 31 and max(customers.values()) == 1

    wait_for(caught_up, "the committed offsets to reach every applied record")
    changelog = read_topic(p.settings, f"{p.settings.app_id}-customer-state-changelog")
    assert {r.key() for r in changelog} >= {f"cm{i}".encode() for i in range(30)}
