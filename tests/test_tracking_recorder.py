"""The tracking endpoints' recorder when its dependencies fail: a hit is never lost
silently. (The working path runs end to end in ``test_tracking_e2e``.)"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis

from nudge.clock import SystemClock
from nudge.delivery.sent_messages import SentMessage, SentMessages, message_ref
from nudge.embedded import free_port
from nudge.streams.tracking import Hit, Recorder

REF = message_ref("cmd-1", "k")


def hit(ref: str = REF) -> Hit:
    return Hit("clicked", ref, 1_000, "Mozilla/5.0 (X11) Firefox/120", "https://s/p", head=False)


class BrokerDown:
    """A topic whose producer fails every send, as a lost broker's does."""

    async def send(self, **_: Any) -> Any:
        raise ConnectionError("broker unreachable")


async def test_a_hit_while_redis_is_down_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    redis = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    try:
        recorder = Recorder(SentMessages(redis, "ns"), BrokerDown(), SystemClock())
        with caplog.at_level(logging.WARNING, logger="nudge.streams.tracking"):
            await recorder._record(hit())
    finally:
        await redis.aclose()
    assert f"clicked of {REF} not recorded: Redis" in caplog.text


async def test_an_event_the_broker_refuses_is_logged_whole(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    redis = Redis.from_url(redis_url)
    sent = SentMessages(redis, f"test-{uuid.uuid4().hex[:10]}")
    try:
        record = SentMessage("cmd-1", "c1", "flow-1", "abandoned_cart", "email", "a@x.io", 0)
        await sent.remember(REF, record)
        recorder = Recorder(sent, BrokerDown(), SystemClock())
        with caplog.at_level(logging.WARNING, logger="nudge.streams.tracking"):
            await recorder._record(hit("unknownref"))  # not on record: nothing to publish
            assert caplog.text == ""
            await recorder._record(hit())
    finally:
        await redis.delete(sent.key(REF))
        await redis.aclose()
    [line] = caplog.messages
    assert "engagement event not published (broker unreachable)" in line
    assert '"message_id":"cmd-1"' in line and '"url":"https://s/p"' in line
