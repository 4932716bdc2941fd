"""Bounces, complaints and mailto unsubscribes end to end: the real broker and Redis,
the delivery worker sending to a real SMTP sink, and ``nudge inbound``'s server run
in-process on a free port, reached over SMTP by aiosmtplib like a remote mail system."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiosmtpd.smtp import SMTP, Envelope, Session

from nudge.clock import SystemClock
from nudge.codec import decode_customer
from nudge.delivery.return_path import return_path, unsubscribe_address
from nudge.delivery.sent_messages import SentMessage, SentMessages, message_ref
from nudge.embedded import MailCatcher, free_port
from nudge.embedded.net import is_listening
from nudge.inbound.server import ProducerPublisher, Receiver, run_inbound, serve
from nudge.models.commands import DeliveryEvent
from nudge.models.engagement import EngagementEvent
from nudge.models.events import CustomerEvent
from nudge.settings import Settings
from nudge.shared_state import SharedState
from tests.test_delivery_e2e import Events, command, produce, running_worker, wait_until

pytestmark = pytest.mark.e2e

TOPICS = ("send-commands", "delivery-events", "dead-letter", "customers", "engagement")
FIXTURES = Path(__file__).parent / "fixtures" / "inbound"
#: The ref and address the samples name, replaced by those of the message under test.
SAMPLE_REF = "k5nvq3xr7d2mhw4tj6pylc2zea"
SAMPLE_TO = "ann@example.net"
DOMAIN = "bounces.example.com"


def sample(name: str, ref: str, address: str = "ann@example.com") -> bytes:
    raw = (FIXTURES / name).read_bytes()
    return raw.replace(SAMPLE_REF.encode(), ref.encode()).replace(
        SAMPLE_TO.encode(), address.encode()
    )


class Recording:
    """In front of the sink: records each envelope sender, refuses ``refused`` at RCPT."""

    def __init__(self, inner: Any, refused: str = "") -> None:
        self.inner = inner
        self.refused = refused
        self.senders: list[str] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address == self.refused:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.senders.append(str(envelope.mail_from))
        result: str = await self.inner.handle_DATA(server, session, envelope)
        return result


Env = tuple[Settings, MailCatcher, SharedState]


@pytest.fixture
async def env(
    make_settings: Callable[..., Settings],
    create_topics: Callable[..., None],
    mail_catcher: Callable[..., MailCatcher],
) -> AsyncIterator[Callable[..., Awaitable[Env]]]:
    """Factory: settings, topics, the sink, Redis with subscribed customers c1 and c2."""
    clients: list[aioredis.Redis] = []

    async def make(refused: str = "", **overrides: Any) -> Env:
        catcher = mail_catcher(lambda inner: Recording(inner, refused))
        settings = make_settings(
            smtp_port=catcher.port,
            inbound_host="127.0.0.1",
            inbound_port=free_port(),
            bounce_domain=DOMAIN,
            **overrides,
        )
        create_topics(settings, TOPICS)
        assert settings.redis_url
        redis = aioredis.from_url(settings.redis_url)
        clients.append(redis)
        shared = SharedState(redis, settings.redis_namespace)
        for customer_id in ("c1", "c2"):
            await shared.set_consent(customer_id, "email", "subscribed")
        return settings, catcher, shared

    yield make
    for client in clients:
        await client.aclose()


@asynccontextmanager
async def inbound(settings: Settings) -> AsyncIterator[None]:
    """``nudge inbound``'s production wiring (its own Redis client and producer)."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_inbound(settings, stop=stop))
    await wait_until(
        lambda: task.done() or is_listening("127.0.0.1", settings.inbound_port), "inbound up"
    )
    if task.done():
        task.result()
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def mail_in(settings: Settings, recipient: str, raw: bytes) -> str:
    """Deliver ``raw`` to the inbound server as a remote MTA would (null sender)."""
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=settings.inbound_port) as smtp:
        _, reply = await smtp.sendmail("", [recipient], raw)
    return reply


def customers(events: Events) -> list[CustomerEvent]:
    return [decode_customer(r.value) for r in events.records]


def engagement(events: Events) -> list[EngagementEvent]:
    return [EngagementEvent.from_bytes(r.value) for r in events.records]


async def test_a_dsn_to_the_return_path_stops_the_address(env: Any) -> None:
    settings, catcher, shared = await env()
    ref = message_ref("cmd-1", settings.secret_key)
    async with (
        Events(settings, "delivery-events") as delivered,
        Events(settings, "customers") as profile,
        Events(settings, "engagement") as engaged,
        running_worker(settings, shared),
        inbound(settings),
    ):
        await produce(settings, command("cmd-1").to_bytes())
        await wait_until(lambda: len(delivered.records) == 1, "the first message sent")
        assert catcher.handler.senders == [return_path(ref, DOMAIN)], "VERP envelope sender"

        reply = await mail_in(settings, return_path(ref, DOMAIN), sample("gmail_dsn.eml", ref))
        assert "OK" in reply
        await wait_until(lambda: profile.records and engaged.records, "the bounce's effects")

        await produce(settings, command("cmd-2").to_bytes())
        await wait_until(lambda: len(delivered.records) == 2, "the second command's outcome")

    [change] = customers(profile)
    assert profile.records[0].key == b"c1"
    assert (change.customer_id, change.consent, change.consent_source) == (
        "c1",
        {"email": "unsubscribed"},
        "bounced",
    )
    assert change.email == "ann@example.com", "the bounced address, for the stream worker"
    [bounce] = engagement(engaged)
    assert (bounce.type, bounce.bounce, bounce.message_id, bounce.address) == (
        "bounced",
        "hard",
        "cmd-1",
        "ann@example.com",
    )
    assert bounce.detail and "does not exist" in bounce.detail
    second = DeliveryEvent.from_bytes(delivered.records[1].value)
    assert (second.command_id, second.status, second.reason) == (
        "cmd-2",
        "suppressed",
        "hard_bounce",
    )
    assert len(catcher.messages()) == 1, "no mail reaches the bounced address again"


async def test_a_refusal_in_the_smtp_dialogue_is_a_hard_bounce_too(env: Any) -> None:
    settings, catcher, shared = await env(refused="gone@example.com")
    gone = {"customer_id": "c2", "recipient": "gone@example.com"}
    async with (
        Events(settings, "delivery-events") as delivered,
        Events(settings, "customers") as profile,
        Events(settings, "engagement") as engaged,
        running_worker(settings, shared),
    ):
        await produce(settings, command("cmd-1", **gone).to_bytes(), key=b"c2")
        await wait_until(lambda: len(delivered.records) == 1, "the refusal's outcome")
        await wait_until(lambda: profile.records and engaged.records, "the bounce's effects")
        await produce(settings, command("cmd-2", **gone).to_bytes(), key=b"c2")
        await wait_until(lambda: len(delivered.records) == 2, "the second command's outcome")
    outcomes = [
        (e.status, e.reason)
        for e in map(DeliveryEvent.from_bytes, (r.value for r in delivered.records))
    ]
    assert outcomes == [("failed", "smtp_550"), ("suppressed", "hard_bounce")]
    [change] = customers(profile)
    assert (change.customer_id, change.consent_source, change.email) == (
        "c2",
        "bounced",
        "gone@example.com",
    )
    [bounce] = engagement(engaged)
    assert (bounce.type, bounce.bounce, bounce.customer_id) == ("bounced", "hard", "c2")
    assert bounce.detail and "User unknown" in bounce.detail
    assert catcher.messages() == []


async def test_a_complaint_unsubscribes_the_person(env: Any) -> None:
    settings, catcher, shared = await env()
    ref = message_ref("cmd-1", settings.secret_key)
    async with (
        Events(settings, "delivery-events") as delivered,
        Events(settings, "customers") as profile,
        Events(settings, "engagement") as engaged,
        running_worker(settings, shared),
        inbound(settings),
    ):
        await produce(settings, command("cmd-1").to_bytes())
        await wait_until(lambda: len(delivered.records) == 1, "the first message sent")
        # Feedback loops report to an address of the operator's, not the return path.
        reply = await mail_in(settings, f"fbl@{DOMAIN}", sample("arf_abuse.eml", ref))
        assert "OK" in reply
        await wait_until(lambda: profile.records and engaged.records, "the complaint's effects")
        await produce(settings, command("cmd-2").to_bytes())
        await wait_until(lambda: len(delivered.records) == 2, "the second command's outcome")
    [change] = customers(profile)
    assert (change.consent, change.consent_source, change.email) == (
        {"email": "unsubscribed"},
        "complaint",
        None,
    )
    [complaint] = engagement(engaged)
    assert (complaint.type, complaint.message_id, complaint.user_agent) == (
        "complained",
        "cmd-1",
        "SomeGenerator/1.0",
    )
    assert await shared.get_consent("c1", "email") == "unsubscribed"
    second = DeliveryEvent.from_bytes(delivered.records[1].value)
    assert (second.status, second.reason) == ("suppressed", "consent_unsubscribed")
    assert len(catcher.messages()) == 1


async def test_mail_to_the_unsubscribe_address_unsubscribes(env: Any) -> None:
    settings, catcher, shared = await env()
    ref = message_ref("cmd-1", settings.secret_key)
    async with (
        Events(settings, "delivery-events") as delivered,
        Events(settings, "customers") as profile,
        Events(settings, "engagement") as engaged,
        running_worker(settings, shared),
        inbound(settings),
    ):
        await produce(settings, command("cmd-1").to_bytes())
        await wait_until(lambda: len(catcher.messages()) == 1, "the message")
        header = catcher.messages()[0]["List-Unsubscribe"]
        mailto = header.split(",")[1].strip(" <>")
        address = mailto.removeprefix("mailto:").partition("?")[0]
        assert address == unsubscribe_address(ref, DOMAIN)
        # What a mail client sends for List-Unsubscribe's mailto:, from the person.
        note = b"From: ann@example.com\r\nSubject: unsubscribe\r\n\r\n"
        # A forged ref is answered the same, and records nothing.
        forged = unsubscribe_address("a" * 26, DOMAIN)
        assert "OK" in await mail_in(settings, forged, note)
        assert "OK" in await mail_in(settings, address, note)
        await wait_until(lambda: profile.records and engaged.records, "the unsubscribe's effects")
        await produce(settings, command("cmd-2").to_bytes())
        await wait_until(lambda: len(delivered.records) == 2, "the second command's outcome")
    [change] = customers(profile)
    assert (change.customer_id, change.consent, change.consent_source) == (
        "c1",
        {"email": "unsubscribed"},
        "mailto",
    )
    [event] = engagement(engaged)
    assert (event.type, event.message_id) == ("unsubscribed", "cmd-1")
    second = DeliveryEvent.from_bytes(delivered.records[1].value)
    assert (second.status, second.reason) == ("suppressed", "consent_unsubscribed")


async def test_garbage_is_dead_lettered_and_soft_bounces_count_to_a_hard_one(env: Any) -> None:
    settings, _, shared = await env(soft_bounce_limit=2)
    sent = SentMessages(shared.redis, settings.redis_namespace)
    refs = []
    for n in (1, 2):
        ref = message_ref(f"cmd-{n}", settings.secret_key)
        record = SentMessage(
            f"cmd-{n}", "c1", "cart-1h", "abandoned_cart", "email", "ann@example.com", 0
        )
        await sent.remember(ref, record)
        refs.append(ref)
    garbage = (FIXTURES / "garbage.eml").read_bytes()
    async with (
        Events(settings, "dead-letter") as dead,
        Events(settings, "engagement") as engaged,
        Events(settings, "customers") as profile,
        inbound(settings),
    ):
        assert "OK" in await mail_in(settings, return_path(refs[0], DOMAIN), garbage)
        # A well-formed bounce for a message not on record: kept, not acted on.
        unknown = return_path("b" * 26, DOMAIN)
        assert "OK" in await mail_in(settings, unknown, sample("postfix_dsn.eml", "b" * 26))
        await wait_until(lambda: len(dead.records) == 2, "the dead letters")
        # The server goes on: a full mailbox, twice (the same report again counts once).
        soft = sample("soft_mailbox_full.eml", refs[0])
        for _ in range(2):
            assert "OK" in await mail_in(settings, return_path(refs[0], DOMAIN), soft)
        await wait_until(lambda: len(engaged.records) == 2, "two soft bounce events")
        assert profile.records == [], "one message's soft bounces are no hard bounce"
        soft = sample("soft_mailbox_full.eml", refs[1])
        assert "OK" in await mail_in(settings, return_path(refs[1], DOMAIN), soft)
        await wait_until(lambda: profile.records, "the limit's hard bounce")
        await wait_until(lambda: len(engaged.records) == 3, "the hard bounce event")
    # Unkeyed, the letters may sit on different partitions: told apart by reason.
    letters = {dict(r.headers)["nudge.dlq.reason"]: r for r in dead.records}
    assert sorted(letters) == [b"unknown_ref", b"unparseable_dsn"]
    letter = letters[b"unparseable_dsn"]
    assert letter.value.replace(b"\r\n", b"\n") == garbage.replace(b"\r\n", b"\n")
    assert dict(letter.headers)["nudge.dlq.topic"] == b"inbound-smtp"
    kinds = [(e.bounce, e.message_id) for e in engagement(engaged)]
    assert kinds == [("soft", "cmd-1"), ("soft", "cmd-1"), ("hard", "cmd-2")]
    [change] = customers(profile)
    assert change.consent_source == "bounced"
    key = shared.key("bounce", "c1", "email")
    assert await shared.redis.get(key) == b"ann@example.com"


async def test_mail_is_refused_for_later_while_redis_is_away(
    make_settings: Callable[..., Settings], create_topics: Callable[..., None]
) -> None:
    """451, not 250: the sending server keeps the bounce and tries again later."""
    settings = make_settings(inbound_host="127.0.0.1", inbound_port=free_port())
    create_topics(settings, TOPICS)
    nowhere = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    receiver = Receiver(
        settings,
        SharedState(nowhere, settings.redis_namespace),
        ProducerPublisher(producer),
        SystemClock(),
    )
    stop, started = asyncio.Event(), asyncio.Event()
    server = asyncio.create_task(serve(settings, receiver, stop=stop, started=started))
    try:
        await asyncio.wait_for(started.wait(), 10)
        ref = message_ref("cmd-1", settings.secret_key)
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await mail_in(settings, return_path(ref, DOMAIN), sample("postfix_dsn.eml", ref))
        assert refused.value.code == 451
    finally:
        stop.set()
        await asyncio.wait_for(server, 10)
        await producer.stop()
        await nowhere.aclose()


async def test_feedback_on_a_sellers_message_leaves_the_customer_alone(env: Any) -> None:
    """A marketplace seller's message carries the buyer's customer id: the seller's
    complaint or bounce must not unsubscribe the buyer."""
    settings, _, shared = await env()
    sent = SentMessages(shared.redis, settings.redis_namespace)
    to_seller, to_buyer = (message_ref(cid, settings.secret_key) for cid in ("s-cmd", "c-cmd"))
    common = ("c1", "order-flow", "order_confirmation", "email")
    await sent.remember(
        to_seller, SentMessage("s-cmd", *common, "shop@lamps.example", 0, seller_id="s1")
    )
    await sent.remember(to_buyer, SentMessage("c-cmd", *common, "ann@example.com", 0))
    async with (
        Events(settings, "customers") as profile,
        Events(settings, "engagement") as engaged,
        inbound(settings),
    ):
        complaint = sample("arf_abuse.eml", to_seller, "shop@lamps.example")
        assert "OK" in await mail_in(settings, f"fbl@{DOMAIN}", complaint)
        dsn = sample("postfix_dsn.eml", to_seller, "shop@lamps.example")
        assert "OK" in await mail_in(settings, return_path(to_seller, DOMAIN), dsn)
        # The buyer's own unsubscribe afterwards: once its events are in, nothing else is.
        note = b"Subject: unsubscribe\r\n\r\n"
        assert "OK" in await mail_in(settings, unsubscribe_address(to_buyer, DOMAIN), note)
        await wait_until(lambda: profile.records and engaged.records, "the buyer's unsubscribe")
    assert [e.message_id for e in engagement(engaged)] == ["c-cmd"]
    assert [c.consent_source for c in customers(profile)] == ["mailto"]
    assert (
        await shared.redis.get(shared.key("bounce", "seller:s1", "email")) == b"shop@lamps.example"
    )
    assert await shared.redis.get(shared.key("bounce", "c1", "email")) is None
