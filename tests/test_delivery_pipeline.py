"""The per-command pipeline against real Redis and a real SMTP server (no Kafka)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from aiosmtpd.smtp import SMTP, Envelope, Session
from prometheus_client import CollectorRegistry

from delivery.context import PopularRecommender
from delivery.deferred import DeferredQueue
from delivery.idempotency import SendLedger
from delivery.metrics import DeliveryMetrics
from delivery.pipeline import Deliverer, NoTriggers, Outcome
from delivery.smtp import SmtpPool
from models.commands import SendCommand, TemplateRef
from nudge.clock import ManualClock
from nudge.embedded import MailCatcher
from nudge.settings import Settings
from nudge.shared_state import SharedState

BERLIN = ZoneInfo("Europe/Berlin")


def command(cid: str) -> SendCommand:
    return SendCommand(
        id=cid,
        trigger_id="t",
        kind="abandoned_view",
        step=0,
        channel="email",
        customer_id="c1",
        recipient="ann@example.com",
        template=TemplateRef("t"),
        context={"items": [{"product_id": "p1"}]},
        due_ms=0,
        created_ms=0,
    )


class Setup:
    def __init__(self, settings: Settings, catcher: MailCatcher, redis: aioredis.Redis) -> None:
        self.settings, self.catcher, self.redis = settings, catcher, redis
        self.clock = ManualClock(int(datetime(2024, 6, 1, 12, tzinfo=BERLIN).timestamp() * 1000))
        self.shared = SharedState(redis, settings.redis_namespace)
        self.transport = SmtpPool(settings)
        self.ledger = SendLedger(redis, self.shared.key, self.clock, owner="me")
        self.deliverer = Deliverer(
            settings,
            redis,
            self.transport,
            self.shared,
            NoTriggers(),
            self.clock,
            self.ledger,
            PopularRecommender(self.shared),
            DeliveryMetrics(CollectorRegistry()),
        )

    async def deliver(self, cid: str) -> Outcome:
        return await self.deliverer.deliver(command(cid))


@pytest.fixture
async def setup(
    make_settings: Callable[..., Settings], mail_catcher: Callable[..., MailCatcher]
) -> AsyncIterator[Callable[..., Any]]:
    made: list[Setup] = []

    async def make(wrap: Any = None, **overrides: Any) -> Setup:
        catcher = mail_catcher(wrap)
        settings = make_settings(smtp_port=catcher.port, **overrides)
        assert settings.redis_url
        s = Setup(settings, catcher, aioredis.from_url(settings.redis_url))
        await s.shared.put_profile("c1", {"first_name": "Ann", "timezone": "Europe/Berlin"})
        await s.shared.set_consent("c1", "email", "subscribed")
        made.append(s)
        return s

    yield make
    for s in made:
        await s.transport.close()
        await s.redis.aclose()


async def test_stale_claim_of_another_worker_is_never_resent(setup: Any) -> None:
    s = await setup()
    old = s.clock.now_ms() - 120_000
    await s.redis.set(s.ledger.key("cmd-1"), f"sending:host-9-dead:{old}")
    outcome = await s.deliver("cmd-1")
    assert (outcome.status, outcome.reason) == ("failed", "interrupted_uncertain")
    assert s.catcher.messages() == []


async def test_sent_then_duplicate(setup: Any) -> None:
    s = await setup()
    assert (await s.deliver("cmd-1")).status == "sent"
    assert (await s.deliver("cmd-1")) == Outcome("duplicate", "already_sent")
    assert len(s.catcher.messages()) == 1


async def test_quiet_hours_defer_then_send_when_due(setup: Any) -> None:
    s = await setup(quiet_hours="22-8")
    s.clock._now = int(datetime(2024, 6, 1, 23, 15, tzinfo=BERLIN).timestamp() * 1000)
    outcome = await s.deliver("cmd-1")
    morning = int(datetime(2024, 6, 2, 8, tzinfo=BERLIN).timestamp() * 1000)
    assert outcome == Outcome("deferred", "quiet_hours", until_ms=morning)

    queue = DeferredQueue(s.redis, s.shared.key)
    await queue.add("cmd-1", command("cmd-1").to_bytes(), morning)
    assert await queue.take_due(s.clock.now_ms()) == []
    s.clock._now = morning
    [(cid, raw)] = await queue.take_due(s.clock.now_ms())
    assert await queue.take_due(s.clock.now_ms()) == []  # leased, not handed out twice
    assert (await s.deliverer.deliver(SendCommand.from_bytes(raw))).status == "sent"
    await queue.done(cid)
    assert await queue.size() == 0
    assert len(s.catcher.messages()) == 1


async def test_frequency_cap_per_day(setup: Any) -> None:
    s = await setup(frequency_cap_per_day=1)
    assert (await s.deliver("a")).status == "sent"
    assert (await s.deliver("b")) == Outcome("suppressed", "frequency_cap")
    s.clock.advance(24 * 3600)
    assert (await s.deliver("c")).status == "sent"


class RefuseRecipient:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        return "550 5.1.1 no such user"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        result: str = await self.inner.handle_DATA(server, session, envelope)
        return result


async def test_hard_bounce_fails_and_suppresses_later_sends(setup: Any) -> None:
    s = await setup(wrap=RefuseRecipient)
    outcome = await s.deliver("a")
    assert (outcome.status, outcome.reason, outcome.attempts) == ("failed", "smtp_550", 1)
    assert (await s.deliver("b")) == Outcome("suppressed", "hard_bounce")
    assert s.catcher.messages() == []
