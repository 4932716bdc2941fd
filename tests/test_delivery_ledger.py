"""The send ledger's stages against real Redis, with a clock moved by hand."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from nudge.clock import ManualClock
from nudge.delivery.idempotency import Claim, ClaimLost, ClaimState, SendLedger

LEASE_MS = 60_000
CLAIM_LEASE_MS = 15_000
NAMESPACE = f"test-ledger-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    yield client
    keys = [k async for k in client.scan_iter(match=f"{NAMESPACE}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def key(*parts: str) -> str:
    return ":".join((NAMESPACE, *parts))


def ledger(redis: aioredis.Redis, clock: ManualClock, owner: str) -> SendLedger:
    return SendLedger(
        redis, key, clock, owner=owner, lease_ms=LEASE_MS, claim_lease_ms=CLAIM_LEASE_MS
    )


async def value(led: SendLedger, cid: str) -> str:
    raw = await led.redis.get(led.key(cid))
    return raw.decode() if raw is not None else ""


async def test_stages_claimed_then_data_then_sent(redis: aioredis.Redis) -> None:
    clock = ManualClock()
    a, b = ledger(redis, clock, "a"), ledger(redis, clock, "b")
    claim = await a.claim("c")
    assert claim.state is ClaimState.CLAIMED and claim.stage == "claimed" and not claim.replaced
    assert await value(a, "c") == f"claimed:a:{clock.now_ms()}"
    assert (await b.claim("c")).state is ClaimState.IN_FLIGHT

    clock.advance(1)
    claim = await a.handing_over("c", claim)
    assert claim.stage == "data" and await value(a, "c") == f"data:a:{clock.now_ms()}"
    assert await b.peek("c") is ClaimState.IN_FLIGHT

    await a.mark_sent("c")
    assert await b.peek("c") is ClaimState.SENT
    assert (await b.claim("c")).state is ClaimState.SENT
    clock.advance(3600)
    assert (await b.claim("c")).state is ClaimState.SENT


async def test_lapsed_claim_before_data_is_taken_over_and_fences_the_old_holder(
    redis: aioredis.Redis,
) -> None:
    clock = ManualClock()
    crashed, alive = ledger(redis, clock, "crashed"), ledger(redis, clock, "alive")
    old = await crashed.claim("c")
    clock.advance(CLAIM_LEASE_MS / 1000)
    assert (await alive.claim("c")).state is ClaimState.IN_FLIGHT  # at the lease: still live
    clock.advance(0.001)
    assert await alive.peek("c") is ClaimState.STALE

    new = await alive.claim("c")
    assert new.state is ClaimState.CLAIMED and new.replaced == old.token
    # The old holder was only stalled, not dead: it must not reach DATA now.
    with pytest.raises(ClaimLost):
        await crashed.handing_over("c", old)
    # Nor may it free the claim it lost.
    await crashed.release(old, "c")
    assert await value(alive, "c") == new.token
    await alive.handing_over("c", new)


async def test_lapsed_claim_after_data_is_uncertain(redis: aioredis.Redis) -> None:
    clock = ManualClock()
    crashed, other = ledger(redis, clock, "crashed"), ledger(redis, clock, "other")
    await crashed.handing_over("c", await crashed.claim("c"))
    clock.advance(LEASE_MS / 1000 + 1)
    assert (await other.claim("c")).state is ClaimState.UNCERTAIN
    # The same process after the lease is no exception: it cannot know either.
    assert (await crashed.claim("c")).state is ClaimState.UNCERTAIN
    taken = await other.claim("c", take_uncertain=True)
    assert taken.state is ClaimState.CLAIMED and taken.replaced.startswith("data:crashed:")


async def test_entries_from_before_stages(redis: aioredis.Redis) -> None:
    clock = ManualClock()
    led = ledger(redis, clock, "new")
    now = clock.now_ms()
    await redis.set(led.key("sent"), f"sent:{now - 10}")
    await redis.set(led.key("live"), f"sending:host-1-old:{now - 10}")
    await redis.set(led.key("lapsed"), f"sending:host-1-old:{now - LEASE_MS - 1}")
    await redis.set(led.key("junk"), "sending:garbage")
    assert await led.peek("sent") is ClaimState.SENT
    assert await led.peek("live") is ClaimState.IN_FLIGHT
    # Old claims were held across the whole transaction: maybe past DATA.
    assert await led.peek("lapsed") is ClaimState.UNCERTAIN
    assert await led.peek("junk") is ClaimState.UNCERTAIN
    assert await led.peek("free") is None


async def test_release_frees_only_our_own_claim(redis: aioredis.Redis) -> None:
    clock = ManualClock()
    a, b = ledger(redis, clock, "a"), ledger(redis, clock, "b")
    claim = await a.claim("c")
    await b.release(Claim(ClaimState.CLAIMED, "claimed:b:1"), "c")
    assert await a.peek("c") is ClaimState.IN_FLIGHT
    await a.release(Claim(ClaimState.IN_FLIGHT), "c")  # not a claim of ours: no-op
    assert await a.peek("c") is ClaimState.IN_FLIGHT
    await a.release(claim, "c")
    assert await a.peek("c") is None
    assert (await b.claim("c")).state is ClaimState.CLAIMED


async def test_two_workers_taking_over_the_same_lapsed_claim_one_wins(
    redis: aioredis.Redis,
) -> None:
    clock = ManualClock()
    crashed = ledger(redis, clock, "crashed")
    workers = [ledger(redis, clock, f"w{i}") for i in range(2)]
    ids = [f"c{i}" for i in range(50)]
    for cid in ids:
        await crashed.claim(cid)
    clock.advance(LEASE_MS / 1000 + 1)

    for cid in ids:
        claims = await asyncio.gather(*(w.claim(cid) for w in workers))
        won = [c for c in claims if c.state is ClaimState.CLAIMED]
        assert len(won) == 1, (cid, claims)
        assert [c.state for c in claims if c is not won[0]] == [ClaimState.IN_FLIGHT]
        assert await value(workers[0], cid) == won[0].token


async def test_lease_counts_from_data_not_from_the_claim(redis: aioredis.Redis) -> None:
    """A send that waited for a connection is not uncertain the moment DATA starts, and
    an unsent claim lapses sooner than a send in DATA."""
    clock = ManualClock()
    a, b = ledger(redis, clock, "a"), ledger(redis, clock, "b")
    claim = await a.claim("c")
    clock.advance(CLAIM_LEASE_MS / 1000 - 1)
    await a.handing_over("c", claim)
    clock.advance(CLAIM_LEASE_MS / 1000 + 1)
    assert await b.peek("c") is ClaimState.IN_FLIGHT  # past the claim lease, but in DATA
    clock.advance(LEASE_MS / 1000)
    assert await b.peek("c") is ClaimState.UNCERTAIN
