"""The per-command pipeline against real Redis and a real SMTP server (no Kafka)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from aiosmtpd.smtp import SMTP, Envelope, Session
from prometheus_client import CollectorRegistry

from nudge.clock import ManualClock
from nudge.delivery.context import PopularRecommender
from nudge.delivery.deferred import DeferredQueue
from nudge.delivery.idempotency import SendLedger
from nudge.delivery.metrics import DeliveryMetrics
from nudge.delivery.pipeline import Deliverer, NoTriggers, Outcome
from nudge.delivery.smtp import SmtpPool
from nudge.embedded import MailCatcher
from nudge.models.commands import SendCommand
from nudge.models.message import MessageContext
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
        context=MessageContext(items=({"product_id": "p1"},)),
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


def counter(s: Setup, name: str, **labels: str) -> float:
    value = s.deliverer.metrics.registry.get_sample_value(f"{name}_total", labels)
    return value or 0.0


async def test_lapsed_claim_past_data_is_not_resent_by_default(setup: Any) -> None:
    s = await setup()
    old = s.clock.now_ms() - 120_000
    # ``sending:`` is the format from before stages: read as "maybe past DATA".
    for cid, stage in (("cmd-1", "data"), ("cmd-2", "sending")):
        await s.redis.set(s.ledger.key(cid), f"{stage}:host-9-dead:{old}")
        outcome = await s.deliver(cid)
        assert (outcome.status, outcome.reason) == ("failed", "interrupted_uncertain")
    assert s.catcher.messages() == []
    assert counter(s, "nudge_delivery_uncertain", action="skipped") == 2


async def test_lapsed_claim_past_data_is_resent_when_the_policy_says_so(setup: Any) -> None:
    s = await setup(uncertain_policy="resend")
    old = s.clock.now_ms() - 120_000
    await s.redis.set(s.ledger.key("cmd-1"), f"data:host-9-dead:{old}")
    assert (await s.deliver("cmd-1")).status == "sent"
    assert len(s.catcher.messages()) == 1
    assert counter(s, "nudge_delivery_uncertain", action="resent") == 1


async def test_lapsed_claim_before_data_is_taken_over_and_sent_once(setup: Any) -> None:
    s = await setup()
    old = s.clock.now_ms() - 120_000
    await s.redis.set(s.ledger.key("cmd-1"), f"claimed:host-9-dead:{old}")
    assert (await s.deliver("cmd-1")) == Outcome("sent", "", 1)
    assert (await s.deliver("cmd-1")) == Outcome("duplicate", "already_sent")
    assert len(s.catcher.messages()) == 1
    assert counter(s, "nudge_delivery_claims_taken_over", stage="claimed") == 1
    assert counter(s, "nudge_delivery_uncertain", action="skipped") == 0


async def test_live_claim_of_another_worker_is_waited_for_then_retried(setup: Any) -> None:
    s = await setup()
    await s.redis.set(s.ledger.key("cmd-1"), f"claimed:other-worker:{s.clock.now_ms()}")
    outcome = await s.deliver("cmd-1")
    assert (outcome.status, outcome.reason, outcome.attempts) == ("retry", "claim_held", 0)
    assert s.catcher.messages() == []


@pytest.mark.parametrize(
    ("carried", "stored", "expected"),
    [
        ("subscribed", None, "sent"),  # Redis lags behind the stream
        ("unsubscribed", "subscribed", "consent_unsubscribed"),
        ("subscribed", "unsubscribed", "consent_unsubscribed"),
        ("subscribed", "pending", "consent_pending"),
        (None, None, "no_consent"),
    ],
)
async def test_consent_is_the_stricter_of_command_and_redis(
    setup: Any, carried: str | None, stored: str | None, expected: str
) -> None:
    s = await setup()
    await s.redis.delete(s.shared.consent_key("c1"))
    if stored is not None:
        await s.shared.set_consent("c1", "email", stored)
    customer = {"consent": {"email": carried}} if carried else {}
    cmd = replace(command("cmd-1"), context=MessageContext(customer=customer))
    outcome = await s.deliverer.deliver(cmd)
    assert (outcome.reason or outcome.status) == expected


class Refuse451:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "451 4.3.0 try again later"


async def test_transient_failure_is_a_retry_outcome_and_frees_the_claim(setup: Any) -> None:
    s = await setup(wrap=Refuse451)
    outcome = await s.deliver("cmd-1")
    assert (outcome.status, outcome.reason, outcome.attempts) == ("retry", "smtp_451", 1)
    assert "451" in outcome.detail
    assert await s.ledger.peek("cmd-1") is None


class DropDuringData:
    """Takes the body, then hangs up without a reply: did the server keep it?"""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert server.transport is not None
        server.transport.close()
        return "250 OK"


async def test_connection_lost_after_data_is_uncertain_and_keeps_its_claim(setup: Any) -> None:
    s = await setup(wrap=DropDuringData)
    outcome = await s.deliver("cmd-1")
    assert (outcome.status, outcome.reason) == ("failed", "interrupted_uncertain")
    raw = await s.redis.get(s.ledger.key("cmd-1"))
    assert raw.decode().startswith("data:me:")
    assert counter(s, "nudge_delivery_uncertain", action="skipped") == 1
    s.clock.advance(3600)  # lapsed, and still not resent
    assert (await s.deliver("cmd-1")).reason == "interrupted_uncertain"


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
    [entry] = await queue.take_due(s.clock.now_ms())
    assert entry.retry is None
    assert await queue.take_due(s.clock.now_ms()) == []  # leased, not handed out twice
    assert (await s.deliverer.deliver(SendCommand.from_bytes(entry.raw))).status == "sent"
    await queue.done(entry.command_id)
    assert await queue.size() == 0
    assert len(s.catcher.messages()) == 1


async def test_frequency_cap_per_day(setup: Any) -> None:
    s = await setup(frequency_cap_per_day=1, cap_hold=0)  # first come, first served
    assert (await s.deliver("a")).status == "sent"
    midnight = int(datetime(2024, 6, 2, tzinfo=BERLIN).timestamp() * 1000)
    assert (await s.deliver("b")) == Outcome("deferred", "frequency_cap", until_ms=midnight)
    skip = replace(command("c"), on_cap="skip")
    assert (await s.deliverer.deliver(skip)) == Outcome("suppressed", "frequency_cap")
    stale = replace(command("d"), expires_at_ms=midnight - 1)  # tomorrow would be too late
    assert (await s.deliverer.deliver(stale)) == Outcome("suppressed", "frequency_cap")
    s.clock.advance(24 * 3600)
    assert (await s.deliver("e")).status == "sent"


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
