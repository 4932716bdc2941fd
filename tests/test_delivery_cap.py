"""The frequency cap's slots by priority (``delivery.cap``), against real Redis and a
real SMTP server: messages that enter within ``NUDGE_CAP_HOLD`` of each other compete,
and the highest priority wins whichever came first."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from nudge.delivery.message import message_id
from nudge.delivery.pipeline import Outcome
from nudge.models.commands import SendCommand
from tests.test_delivery_pipeline import BERLIN, command, setup  # noqa: F401  (the fixture)

HOLD_MS = 120_000


def prioritised(cid: str, priority: int) -> SendCommand:
    return replace(command(cid), priority=priority)


async def test_the_higher_priority_takes_the_last_slot_whichever_came_first(
    setup: Any,  # noqa: F811
) -> None:
    s = await setup(frequency_cap_per_day=1, cap_hold="PT2M")
    start = s.clock.now_ms()
    low, high = prioritised("welcome", 50), prioritised("price-drop", 60)
    assert await s.deliverer.deliver(low) == Outcome(
        "deferred", "cap_hold", until_ms=start + HOLD_MS
    )
    s.clock.advance(30)
    assert await s.deliverer.deliver(high) == Outcome(
        "deferred", "cap_hold", until_ms=start + 30_000 + HOLD_MS
    )
    s.clock._now = start + HOLD_MS  # the low one's hold is over first: it lost
    midnight = int(datetime(2024, 6, 2, tzinfo=BERLIN).timestamp() * 1000)
    assert await s.deliverer.deliver(low) == Outcome("deferred", "frequency_cap", until_ms=midnight)
    s.clock._now = start + 30_000 + HOLD_MS
    assert (await s.deliverer.deliver(high)).status == "sent"
    [mail] = s.catcher.messages()
    assert mail["Message-ID"] == message_id("price-drop", s.settings.mail_from)
    s.clock._now = midnight  # tomorrow: a slot again, after a hold of its own
    assert (await s.deliverer.deliver(low)).status == "deferred"
    s.clock._now = midnight + HOLD_MS
    assert (await s.deliverer.deliver(low)).status == "sent"


async def test_with_slots_enough_everyone_sends_after_the_hold(setup: Any) -> None:  # noqa: F811
    s = await setup(frequency_cap_per_day=2, cap_hold="PT2M")
    a, b = prioritised("a", 10), prioritised("b", 90)
    assert (await s.deliverer.deliver(a)).reason == "cap_hold"
    assert (await s.deliverer.deliver(b)).reason == "cap_hold"
    s.clock.advance(HOLD_MS / 1000)
    assert [(await s.deliverer.deliver(c)).status for c in (a, b)] == ["sent", "sent"]


async def test_messages_more_than_a_hold_apart_do_not_compete(setup: Any) -> None:  # noqa: F811
    s = await setup(frequency_cap_per_day=1, cap_hold="PT2M")
    low = prioritised("low", 10)
    assert (await s.deliverer.deliver(low)).reason == "cap_hold"
    s.clock.advance(HOLD_MS / 1000)
    assert (await s.deliverer.deliver(low)).status == "sent"
    high = replace(prioritised("high", 90), on_cap="skip")
    assert (await s.deliverer.deliver(high)).reason == "cap_hold"
    s.clock.advance(HOLD_MS / 1000)
    assert await s.deliverer.deliver(high) == Outcome("suppressed", "frequency_cap")


async def test_transactional_messages_neither_wait_nor_count(setup: Any) -> None:  # noqa: F811
    s = await setup(frequency_cap_per_day=1, cap_hold="PT2M")
    receipt = replace(command("receipt"), marketing=False)
    assert (await s.deliverer.deliver(receipt)).status == "sent"
    assert (await s.deliverer.deliver(prioritised("m", 50))).reason == "cap_hold"
