"""CustomerViews: Redis copies written behind the table, latest state only, and the
records reported applied only once their copies are written."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from nudge.models.state import CustomerState, Profile
from nudge.shared_state import SharedState
from nudge.streams import waiting
from nudge.streams.views import CustomerViews
from nudge.waits import Waits


class FlakySharedState(SharedState):
    """Real Redis behind it; the first ``failures`` writes fail as an outage would."""

    def __init__(self, redis: Redis, namespace: str, failures: int) -> None:
        super().__init__(redis, namespace)
        self.failures = failures
        self.writes = 0

    async def put_customers(self, views: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise RedisConnectionError("Connection refused")
        self.writes += 1
        await super().put_customers(views)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def state(customer_id: str, consent: str) -> CustomerState:
    profile = Profile(email=f"{customer_id}@example.com", consent={"email": consent})
    return CustomerState(customer_id, 0, profile=profile)


async def test_latest_state_is_written_once_and_batches_applied_after(redis: Redis) -> None:
    shared = FlakySharedState(redis, f"test-{uuid.uuid4().hex[:8]}", failures=0)
    table = {b"ann": state("ann", "subscribed")}
    applied: list[Sequence[Any]] = []
    views = CustomerViews(shared, table.get, Waits(), applied.append)
    views.add([b"ann"], ["batch-1"])
    table[b"ann"] = state("ann", "unsubscribed")
    views.add([b"ann"], ["batch-2"])
    assert applied == [] and len(views) == 1
    await views.write_pending()
    assert shared.writes == 1, "two changes of one customer, one write"
    assert await shared.get_consent("ann", "email") == "unsubscribed"
    assert applied == [["batch-1"], ["batch-2"]]
    await redis.delete(shared.profile_key("ann"), shared.consent_key("ann"))


async def test_an_outage_is_waited_out_and_nothing_counts_as_applied_meanwhile(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(waiting, "FIRST_BACKOFF_S", 0.01)
    shared = FlakySharedState(redis, f"test-{uuid.uuid4().hex[:8]}", failures=3)
    table = {b"bob": state("bob", "unsubscribed")}
    applied: list[Sequence[Any]] = []
    waits = Waits()
    views = CustomerViews(shared, table.get, waits, applied.append)
    views.add([b"bob"], ["batch"])
    writer = asyncio.create_task(views.write_pending())
    for _ in range(100):
        if waits:
            break
        await asyncio.sleep(0.001)
    assert "redis" in waits.describe() and applied == []
    await asyncio.wait_for(writer, 5)
    assert not waits and applied == [["batch"]]
    assert await shared.get_consent("bob", "email") == "unsubscribed"
    await redis.delete(shared.profile_key("bob"), shared.consent_key("bob"))


async def test_a_cancelled_write_keeps_its_work(redis: Redis) -> None:
    shared = FlakySharedState(redis, f"test-{uuid.uuid4().hex[:8]}", failures=1000)
    table = {b"cy": state("cy", "subscribed")}
    applied: list[Sequence[Any]] = []
    views = CustomerViews(shared, table.get, Waits(), applied.append)
    views.add([b"cy"], ["batch"])
    writer = asyncio.create_task(views.write_pending())
    await asyncio.sleep(0.05)
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    assert len(views) == 1 and applied == []
    shared.failures = 0
    await views.write_pending()
    assert applied == [["batch"]]
    await redis.delete(shared.profile_key("cy"), shared.consent_key("cy"))
