"""The delivery worker end to end: real Tansu broker, real Redis, real SMTP server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiosmtpd.smtp import SMTP, Envelope, Session
from prometheus_client import CollectorRegistry

from nudge.clock import SystemClock
from nudge.delivery.pipeline import NoTriggers
from nudge.delivery.sent_messages import message_ref
from nudge.delivery.service import run_delivery
from nudge.delivery.smtp import SmtpPool
from nudge.delivery.worker import DeliveryWorker
from nudge.embedded import MailCatcher
from nudge.flows.plan import FlowPlan
from nudge.models.commands import DeliveryEvent, SendCommand
from nudge.models.message import Message
from nudge.settings import Settings
from nudge.shared_state import SharedState
from nudge.signing import verify

pytestmark = pytest.mark.e2e

TOPICS = ("send-commands", "delivery-events", "dead-letter")
WAIT_S = 60.0


async def wait_until(cond: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        result = cond()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def refs(settings: Settings, *command_ids: str) -> list[str]:
    """The X-Nudge-Ref headers of these commands' messages, sorted."""
    return sorted(message_ref(cid, settings.secret_key) for cid in command_ids)


def command(cid: str = "cmd-1", **overrides: Any) -> SendCommand:
    values: dict[str, Any] = {
        "id": cid,
        "trigger_id": "cart-1h",
        "kind": "abandoned_cart",
        "step": 0,
        "channel": "email",
        "customer_id": "c1",
        "recipient": "ann@example.com",
        "version": "v1",
        "context": {"items": [{"product_id": "p1", "quantity": 2, "price": 10.0}]},
        "due_ms": 0,
        "created_ms": 0,
    }
    values.update(overrides)
    return SendCommand(**values)


class Events:
    """Reads delivery-events (or any topic) from the beginning, in the background."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.records: list[Any] = []
        self._consumer = AIOKafkaConsumer(
            settings.topic(topic),
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Events:
        await self._consumer.start()
        self._task = asyncio.create_task(self._pump())
        return self

    async def _pump(self) -> None:
        async for record in self._consumer:
            self.records.append(record)

    def events(self) -> list[DeliveryEvent]:
        return [DeliveryEvent.from_bytes(r.value) for r in self.records]

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()


@pytest.fixture
async def env(
    make_settings: Callable[..., Settings],
    create_topics: Callable[..., None],
    mail_catcher: Callable[..., MailCatcher],
) -> AsyncIterator[Callable[..., Awaitable[tuple[Settings, MailCatcher, SharedState]]]]:
    """Factory: settings + topics + SMTP server + Redis seeded with one subscribed customer."""
    clients: list[aioredis.Redis] = []

    async def make(
        wrap: Callable[[Any], Any] | None = None, consent: str = "subscribed", **overrides: Any
    ) -> tuple[Settings, MailCatcher, SharedState]:
        catcher = mail_catcher(wrap)
        settings = make_settings(smtp_port=catcher.port, **overrides)
        create_topics(settings, TOPICS)
        assert settings.redis_url
        redis = aioredis.from_url(settings.redis_url)
        clients.append(redis)
        shared = SharedState(redis, settings.redis_namespace)
        await shared.put_profile(
            "c1", {"email": "ann@example.com", "first_name": "Ann", "timezone": "Europe/Berlin"}
        )
        await shared.set_consent("c1", "email", consent)
        await shared.put_products(
            [
                {
                    "product_id": "p1",
                    "title": "Blue Mug",
                    "url": "https://shop.example.com/p1?ref=x",
                    "price": 12.5,
                    "currency": "EUR",
                    "image_url": "https://cdn.example.com/p1.jpg",
                },
                {
                    "product_id": "p2",
                    "title": "Red Kettle",
                    "url": "https://shop.example.com/p2",
                    "price": 30.0,
                    "currency": "EUR",
                    "image_url": "https://cdn.example.com/p2.jpg",
                },
            ]
        )
        await shared.bump_popularity({"p1": 5, "p2": 3})
        return settings, catcher, shared

    yield make
    for client in clients:
        await client.aclose()


async def produce(settings: Settings, *values: bytes, key: bytes = b"c1") -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(settings.topic("send-commands"), value, key=key)
    finally:
        await producer.stop()


@asynccontextmanager
async def running_worker(settings: Settings, shared: SharedState) -> AsyncIterator[DeliveryWorker]:
    transport = SmtpPool(settings)
    worker = DeliveryWorker(
        settings,
        shared.redis,
        transport,
        shared,
        NoTriggers(),
        SystemClock(),
        registry=CollectorRegistry(),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await transport.close()


async def test_command_becomes_one_email_with_headers_and_sent_event(env: Any) -> None:
    settings, catcher, _ = await env()
    trigger = FlowPlan.parse({"id": "cart-1h", "kind": "abandoned_cart"})
    registry = {"cart-1h": trigger}
    stop = asyncio.Event()
    task = asyncio.create_task(run_delivery(settings, stop=stop, triggers=registry))
    try:
        async with Events(settings, "delivery-events") as events:
            subject = Message(subject="Hi {{ customer.first_name }}")
            await produce(settings, command(message=subject).to_bytes())
            await wait_until(lambda: len(events.records) == 1, "a delivery event")
            await wait_until(lambda: len(catcher.messages()) == 1, "one email")
            event = events.events()[0]
            assert (event.status, event.command_id, event.customer_id) == ("sent", "cmd-1", "c1")
            assert events.records[0].key == b"c1"

            async with aiohttp.ClientSession() as http:
                base = f"http://{settings.web_host}:{settings.delivery_web_port}"
                async with http.get(f"{base}/health") as resp:
                    assert resp.status == 200
                async with http.get(f"{base}/metrics") as resp:
                    assert 'nudge_delivery_sent_total{reason="ok"} 1.0' in await resp.text()
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

    msg = catcher.messages()[0]
    assert msg["Subject"] == "Hi Ann"
    assert msg["To"] == "ann@example.com"
    assert msg["From"] == settings.mail_from
    ref = message_ref("cmd-1", settings.secret_key)
    assert msg["X-Nudge-Ref"] == ref
    assert msg["Message-ID"].endswith("@example.com>")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url, mailto = (uri.strip(" <>") for uri in msg["List-Unsubscribe"].split(","))
    assert mailto == f"mailto:unsubscribe+{ref}@example.com?subject=unsubscribe"
    assert url.startswith(f"{settings.public_url}/unsubscribe/")
    payload = verify(url.rsplit("/", 1)[1], settings.secret_key, int(time.time() * 1000))
    assert payload == {"purpose": "unsubscribe", "customer_id": "c1", "channel": "email"}
    html_part = msg.get_body(("html",))
    assert html_part is not None
    html = html_part.get_content()
    assert "Blue Mug" in html and "utm_campaign=cart-1h" in html and url in html


async def test_redelivered_command_is_sent_once_across_restart(env: Any) -> None:
    settings, catcher, shared = await env()
    async with Events(settings, "delivery-events") as events:
        async with running_worker(settings, shared):
            await produce(settings, command().to_bytes(), command().to_bytes())
            await wait_until(lambda: len(events.records) == 2, "two events")
        async with running_worker(settings, shared):
            await produce(settings, command().to_bytes())
            await wait_until(lambda: len(events.records) == 3, "a third event")
        statuses = sorted((e.status, e.reason) for e in events.events())
        assert statuses == [("sent", ""), ("sent", "already_sent"), ("sent", "already_sent")]
    assert len(catcher.messages()) == 1


async def test_unsubscribed_customer_is_suppressed(env: Any) -> None:
    settings, catcher, shared = await env(consent="unsubscribed")
    async with Events(settings, "delivery-events") as events, running_worker(settings, shared):
        await produce(settings, command().to_bytes())
        await wait_until(lambda: len(events.records) == 1, "a delivery event")
    event = events.events()[0]
    assert (event.status, event.reason) == ("suppressed", "consent_unsubscribed")
    assert catcher.messages() == []


class FailFirst:
    """Answers the first message with a 451, then lets the real handler accept."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.refused = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refused == 0:
            self.refused += 1
            return "451 4.3.0 try again later"
        result: str = await self.inner.handle_DATA(server, session, envelope)
        return result


async def test_transient_smtp_failure_is_retried_and_delivered_once(env: Any) -> None:
    settings, catcher, shared = await env(wrap=FailFirst)
    async with Events(settings, "delivery-events") as events, running_worker(settings, shared):
        await produce(settings, command().to_bytes())
        await wait_until(lambda: len(events.records) == 1, "a delivery event")
    event = events.events()[0]
    assert (event.status, event.attempts) == ("sent", 2)
    assert isinstance(catcher.handler, FailFirst) and catcher.handler.refused == 1
    assert len(catcher.messages()) == 1


async def test_bad_command_is_dead_lettered_and_next_one_delivered(env: Any) -> None:
    settings, catcher, shared = await env()
    async with (
        Events(settings, "delivery-events") as events,
        Events(settings, "dead-letter") as dead,
        running_worker(settings, shared),
    ):
        await produce(settings, b"{not json", command("cmd-good").to_bytes())
        await wait_until(lambda: len(events.records) == 1, "a delivery event")
        await wait_until(lambda: len(dead.records) == 1, "a dead letter")
    letter = dead.records[0]
    assert letter.value == b"{not json" and letter.key == b"c1"
    headers = dict(letter.headers)
    assert headers["nudge.dlq.reason"] == b"bad_send_command"
    assert headers["nudge.dlq.topic"] == settings.topic("send-commands").encode()
    assert events.events()[0].command_id == "cmd-good"
    assert len(catcher.messages()) == 1


class RefuseFor:
    """Answers every message with a 451 for ``seconds`` after the first one arrives."""

    def __init__(self, inner: Any, seconds: float) -> None:
        self.inner = inner
        self.seconds = seconds
        self.until: float | None = None
        self.refused = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        now = time.monotonic()
        if self.until is None:
            self.until = now + self.seconds
        if now < self.until:
            self.refused += 1
            return "451 4.3.0 try again later"
        result: str = await self.inner.handle_DATA(server, session, envelope)
        return result


async def test_smtp_refusing_for_a_while_then_every_message_is_sent_exactly_once(
    env: Any,
) -> None:
    # Longer than the old 5 attempts ever waited (0.5 + 1 + 2 + 4 s); small backoff
    # settings keep the test short while the retries still back off.
    settings, catcher, shared = await env(
        wrap=lambda inner: RefuseFor(inner, 9.0), send_backoff_s=0.05, send_backoff_max_s=1.0
    )
    ids = [f"cmd-{i}" for i in range(5)]
    async with Events(settings, "delivery-events") as events, running_worker(settings, shared):
        await produce(settings, *(command(cid).to_bytes() for cid in ids))
        await wait_until(lambda: len(catcher.messages()) == len(ids), "every email")
        await wait_until(lambda: len(events.records) == len(ids), "an event per command")
    assert isinstance(catcher.handler, RefuseFor) and catcher.handler.refused > len(ids)
    assert sorted(m["X-Nudge-Ref"] for m in catcher.messages()) == refs(settings, *ids)
    sent = {e.command_id: e for e in events.events()}
    assert sorted(sent) == ids and {e.status for e in sent.values()} == {"sent"}
    assert all(e.attempts > 1 for e in sent.values())


async def test_lapsed_claims_of_a_crashed_worker(env: Any) -> None:
    """Before DATA: sent again, once. After DATA: reported uncertain, not sent."""
    settings, catcher, shared = await env()
    lapsed = int(time.time() * 1000) - 120_000  # older than the worker's lease
    await shared.redis.set(shared.key("sent", "cmd-pre"), f"claimed:crashed-host-1-ab:{lapsed}")
    await shared.redis.set(shared.key("sent", "cmd-post"), f"data:crashed-host-1-ab:{lapsed}")
    async with (
        Events(settings, "delivery-events") as events,
        running_worker(settings, shared) as worker,
    ):
        await produce(settings, command("cmd-pre").to_bytes(), command("cmd-post").to_bytes())
        await wait_until(lambda: len(events.records) == 2, "two delivery events")
        # A redelivery afterwards sends nothing more.
        await produce(settings, command("cmd-pre").to_bytes())
        await wait_until(lambda: len(events.records) == 3, "a third event")
        registry = worker.metrics.registry
        uncertain = registry.get_sample_value(
            "nudge_delivery_uncertain_total", {"action": "skipped"}
        )
    outcomes = [(e.command_id, e.status, e.reason) for e in events.events()]
    assert sorted(outcomes) == [
        ("cmd-post", "failed", "interrupted_uncertain"),
        ("cmd-pre", "sent", ""),
        ("cmd-pre", "sent", "already_sent"),
    ]
    assert [m["X-Nudge-Ref"] for m in catcher.messages()] == refs(settings, "cmd-pre")
    assert uncertain == 1


class HoldFor:
    """Holds DATA for one recipient until ``release`` is set; accepts the rest at once."""

    def __init__(self, inner: Any, recipient: str) -> None:
        self.inner = inner
        self.recipient = recipient
        self.release = asyncio.Event()
        self.holding = False

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.recipient in envelope.rcpt_tos:
            self.holding = True
            await self.release.wait()
        result: str = await self.inner.handle_DATA(server, session, envelope)
        return result


async def test_a_slow_partition_does_not_hold_the_others(env: Any) -> None:
    settings, catcher, shared = await env(
        wrap=lambda inner: HoldFor(inner, "slow@example.com"), partitions=2
    )
    handler = catcher.handler
    assert isinstance(handler, HoldFor)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        async with Events(settings, "delivery-events") as events, running_worker(settings, shared):
            slow = command("cmd-slow", recipient="slow@example.com")
            await producer.send_and_wait(
                settings.topic("send-commands"), slow.to_bytes(), partition=0
            )
            await wait_until(lambda: handler.holding, "the slow message at DATA")
            fast = command("cmd-fast")
            await producer.send_and_wait(
                settings.topic("send-commands"), fast.to_bytes(), partition=1
            )
            await wait_until(lambda: len(events.records) == 1, "the other partition's event")
            assert events.events()[0].command_id == "cmd-fast", "sent while the slow one waits"
            handler.release.set()
            await wait_until(lambda: len(events.records) == 2, "the slow message's event")
    finally:
        await producer.stop()
    sent = sorted(m["X-Nudge-Ref"] for m in catcher.messages())
    assert sent == refs(settings, "cmd-fast", "cmd-slow")
