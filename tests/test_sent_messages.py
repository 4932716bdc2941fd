"""The opaque message reference and its record in Redis."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from nudge.delivery.sent_messages import SentMessage, SentMessages, message_ref
from nudge.errors import InvalidMessage
from nudge.models.engagement import EngagementEvent


def test_ref_is_opaque_stable_and_keyed() -> None:
    ref = message_ref("cart:c1:1699996400000:0", SecretStr("one"))
    assert ref == message_ref("cart:c1:1699996400000:0", SecretStr("one"))
    assert ref != message_ref("cart:c1:1699996400000:0", SecretStr("two"))
    assert ref != message_ref("cart:c2:1699996400000:0", SecretStr("one"))
    assert len(ref) == 26 and ref.isalnum() and ref == ref.lower()
    assert "c1" not in ref and "cart" not in ref


async def test_remembered_message_is_found_and_a_forged_ref_is_not(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    store = SentMessages(redis, f"t-{uuid.uuid4().hex[:8]}", ttl_s=60)
    sent = SentMessage("cmd-1", "c1", "cart", "cart", "email", "a@example.com", 1, "B")
    ref = message_ref("cmd-1", "secret")
    try:
        await store.remember(ref, sent)
        assert await store.lookup(ref) == sent
        assert await store.lookup(message_ref("cmd-2", "secret")) is None
        assert await store.lookup("../" + ref) is None
    finally:
        await redis.delete(store.key(ref))
        await redis.aclose()


def test_engagement_event_round_trips_and_refuses_unknown_types() -> None:
    event = EngagementEvent("e1", "clicked", "c1", "cmd-1", "cart", "email", 5, url="https://x")
    assert EngagementEvent.from_bytes(event.to_bytes()) == event
    with pytest.raises(InvalidMessage):
        EngagementEvent.from_bytes(event.to_bytes().replace(b"clicked", b"licked"))
