"""Retry scheduling: the pure policy, the deferred queue's retry state, and the worker's
retry path with a test-double transport and a clock moved by hand (no Kafka)."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from nudge.clock import ManualClock
from nudge.delivery.deferred import DeferredQueue
from nudge.delivery.message import OutgoingMessage
from nudge.delivery.retry import GiveUp, Retry, RetryPolicy, RetryState
from nudge.delivery.sent_messages import message_ref
from nudge.delivery.smtp import DataHook, SmtpTransient
from nudge.delivery.worker import DeliveryWorker
from nudge.errors import ConfigError
from nudge.flows.plan import FlowPlan
from nudge.models.commands import DeliveryEvent, SendCommand
from nudge.models.message import MessageContext
from nudge.settings import DEV_SECRET, Settings
from nudge.shared_state import SharedState

T0 = 1_700_000_000_000
MINUTE = 60_000
DAY = 86_400_000


def policy(rng: Callable[[], float] = random.random, **overrides: int) -> RetryPolicy:
    values = {"retry_for_ms": 2 * DAY, "backoff_base_ms": 500, "backoff_max_ms": 10 * MINUTE}
    values.update(overrides)
    return RetryPolicy(rng=rng, **values)


# -- the pure policy ---------------------------------------------------------------
def test_backoff_ceiling_doubles_up_to_the_cap() -> None:
    p = policy()
    assert [p.ceiling_ms(n) for n in range(1, 6)] == [500, 1000, 2000, 4000, 8000]
    assert p.ceiling_ms(11) == 512_000
    assert p.ceiling_ms(12) == p.ceiling_ms(500) == 10 * MINUTE


def test_full_jitter_stays_within_zero_and_the_ceiling() -> None:
    assert policy(rng=lambda: 0.0).backoff_ms(7) == 0
    assert policy(rng=lambda: 0.999999).backoff_ms(7) == 31_999
    p = policy(rng=random.Random(8).random)
    waits = [p.backoff_ms(3) for _ in range(2000)]
    assert all(0 <= w < 2000 for w in waits)
    # Spread over the whole range, not bunched: that is the point of the jitter.
    assert min(waits) < 100 and max(waits) > 1900


def test_first_failure_starts_the_window_and_later_ones_keep_it() -> None:
    p = policy(rng=lambda: 0.5)
    first = p.after_failure(None, now_ms=T0, reason="smtp_451", detail="later", attempts=1)
    assert first == Retry(T0 + 250, RetryState(T0, 1, 1, "smtp_451", "later"))
    second = p.after_failure(
        first.state, now_ms=T0 + 300, reason="smtp_unavailable", detail="refused", attempts=1
    )
    assert isinstance(second, Retry)
    assert second.state == RetryState(T0, 2, 2, "smtp_unavailable", "refused")
    assert second.due_ms == T0 + 300 + 500


def test_window_ends_only_after_retry_for_and_last_try_is_at_the_deadline() -> None:
    clock = ManualClock(T0)
    p = policy(rng=lambda: 0.999999, retry_for_ms=30 * MINUTE)
    state: RetryState | None = None
    dues = []
    while True:
        now = clock.now_ms()
        step = p.after_failure(state, now_ms=now, reason="smtp_451", detail="x", attempts=1)
        if isinstance(step, GiveUp):
            break
        assert clock.now_ms() < T0 + 30 * MINUTE
        dues.append(step.due_ms)
        state = step.state
        clock._now = step.due_ms
    assert clock.now_ms() == T0 + 30 * MINUTE  # it gave up at, not before, the deadline
    assert dues[-1] == T0 + 30 * MINUTE
    assert all(b - a <= 10 * MINUTE for a, b in itertools.pairwise(dues))
    assert step.state.attempts == len(dues) + 1 and step.state.last_error == "x"


def test_expires_after_shortens_the_window_from_the_due_time() -> None:
    p = policy(rng=lambda: 0.999999)
    due = T0 - 50 * MINUTE  # the message was due 50 minutes before its first failure
    state = RetryState(first_failure_ms=T0)
    assert p.deadline_ms(state, anchor_ms=due, expires_after_ms=None) == T0 + 2 * DAY
    assert p.deadline_ms(state, anchor_ms=due, expires_after_ms=3600_000) == due + 3600_000
    # A longer expiry than the retry window changes nothing.
    assert p.deadline_ms(state, anchor_ms=due, expires_after_ms=7 * DAY) == T0 + 2 * DAY
    # Without a due time, from the first failure.
    assert p.deadline_ms(state, anchor_ms=None, expires_after_ms=MINUTE) == T0 + MINUTE

    kwargs: dict[str, Any] = {"reason": "r", "detail": "d", "attempts": 1, "anchor_ms": due}
    step = p.after_failure(None, now_ms=T0, expires_after_ms=55 * MINUTE, **kwargs)
    assert isinstance(step, Retry) and step.due_ms == T0 + 499
    # 100 ms before expiry: one last try right at it, not after a longer backoff.
    now = due + 55 * MINUTE - 100
    late = p.after_failure(None, now_ms=now, expires_after_ms=55 * MINUTE, **kwargs)
    assert isinstance(late, Retry) and late.due_ms == due + 55 * MINUTE
    # Already expired at the first failure: no retry at all.
    assert isinstance(p.after_failure(None, now_ms=T0, expires_after_ms=MINUTE, **kwargs), GiveUp)


def test_retry_settings_and_trigger_expiry_parse_durations() -> None:
    p = RetryPolicy.from_settings(
        Settings(send_retry_for="PT1H", send_backoff_s=0.25, send_backoff_max_s=30)
    )
    assert (p.retry_for_ms, p.backoff_base_ms, p.backoff_max_ms) == (3600_000, 250, 30_000)
    assert Settings().send_retry_for == 2 * 86400
    trigger = FlowPlan.parse({"id": "t", "kind": "abandoned_cart", "expires_after": "P1D"})
    assert trigger.flow.expires_after == DAY
    assert FlowPlan.parse({"id": "t", "kind": "abandoned_cart"}).flow.expires_after is None
    for bad in ("soon", -5, 0):
        with pytest.raises(ConfigError, match=r"expires_after"):
            FlowPlan.parse({"id": "t", "kind": "abandoned_cart", "expires_after": bad})


def test_retry_state_round_trip() -> None:
    state = RetryState(T0, 3, 4, "smtp_451", "try later")
    assert RetryState.from_json(state.to_json()) == state
    assert RetryState.from_json(None) is None
    assert RetryState.from_json(b"{not json") is None
    assert RetryState.from_json(b'{"unknown": 1}') is None


# -- the deferred queue -------------------------------------------------------------
@pytest.fixture
async def redis(make_settings: Callable[..., Settings]) -> AsyncIterator[tuple[Any, Settings]]:
    settings = make_settings()
    assert settings.redis_url
    client = aioredis.from_url(settings.redis_url)
    yield client, settings
    await client.aclose()


async def test_deferred_queue_keeps_retry_state_and_hands_out_big_batches(redis: Any) -> None:
    client, settings = redis
    queue = DeferredQueue(client, SharedState(client, settings.redis_namespace).key)
    state = RetryState(T0, 2, 2, "smtp_451", "later")
    await queue.add("a", b"{}", T0 + 10, state)
    await queue.add("a", b"{}", T0 + 20)  # quiet hours after a retry: the state stays
    assert await queue.retry_state("a") == state
    assert await queue.next_due_ms() == T0 + 20
    for i in range(250):
        await queue.add(f"b{i}", b"{}", T0)
    entries = await queue.take_due(T0 + 20)
    assert len(entries) == 251  # not 100 a pass
    assert next(e for e in entries if e.command_id == "a").retry == state
    assert await queue.next_due_ms() == T0 + 20 + queue.lease_ms
    await queue.done("a")
    assert await queue.retry_state("a") is None


async def test_deferred_lease_renewal_keeps_only_leases_still_held(redis: Any) -> None:
    client, settings = redis
    queue = DeferredQueue(client, SharedState(client, settings.redis_namespace).key)
    for cid in ("held", "reparked", "finished"):
        await queue.add(cid, b"{}", T0)
    taken = {e.command_id: e.leased_until_ms for e in await queue.take_due(T0)}
    assert set(taken.values()) == {T0 + queue.lease_ms}
    await queue.add("reparked", b"{}", T0 + 5)  # failed again meanwhile: its own due time
    await queue.done("finished")
    later = T0 + queue.lease_ms // 2
    renewed = await queue.renew(taken, later)
    assert renewed == {"held": later + queue.lease_ms}
    assert await client.zscore(queue.zkey, "held") == later + queue.lease_ms
    assert await client.zscore(queue.zkey, "reparked") == T0 + 5
    assert await client.zscore(queue.zkey, "finished") is None  # not revived
    assert await queue.renew({}, later) == {}


# -- the worker's retry path ----------------------------------------------------------
class FlakyTransport:
    """A ``Transport`` double: fails transiently ``failures`` times, then accepts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.accepted: list[OutgoingMessage] = []

    async def send(self, message: OutgoingMessage, on_data: DataHook | None = None) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise SmtpTransient("451 4.3.0 try again later", 451)
        if on_data is not None:
            await on_data()
        self.accepted.append(message)

    async def close(self) -> None:
        pass


class FakeProducer:
    def __init__(self) -> None:
        self.events: list[DeliveryEvent] = []

    async def send(self, topic: str, value: bytes, **_: Any) -> asyncio.Future[None]:
        self.events.append(DeliveryEvent.from_bytes(value))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class Rig:
    def __init__(
        self, settings: Settings, redis: Any, failures: int, triggers: dict[str, FlowPlan]
    ) -> None:
        self.settings, self.redis = settings, redis
        self.clock = ManualClock(T0)
        self.shared = SharedState(redis, settings.redis_namespace)
        self.transport = FlakyTransport(failures)
        self.producer = FakeProducer()
        self.triggers = triggers
        self.worker = self.new_worker()

    def new_worker(self) -> DeliveryWorker:
        """Another process, as after a restart: only Redis carries over."""
        worker = DeliveryWorker(
            self.settings,
            self.redis,
            self.transport,
            self.shared,
            self.triggers,
            self.clock,
            retry_policy=RetryPolicy.from_settings(self.settings, rng=lambda: 0.999999),
        )
        worker._producer = cast(Any, self.producer)
        return worker

    def command(self, cid: str = "cmd-1", expires_after_ms: int | None = None) -> SendCommand:
        now = self.clock.now_ms()
        return SendCommand(
            id=cid,
            trigger_id="cart",
            kind="abandoned_cart",
            step=0,
            channel="email",
            customer_id="c1",
            recipient="ann@example.com",
            context=MessageContext(items=({"product_id": "p1", "quantity": 1, "price": 5.0},)),
            due_ms=now,
            created_ms=now,
            expires_at_ms=None if expires_after_ms is None else now + expires_after_ms,
        )

    async def consume(self, command: SendCommand) -> None:
        record = SimpleNamespace(
            value=command.to_bytes(), topic="send-commands", partition=0, offset=0, key=b"c1"
        )
        await self.worker.handle_records([cast(Any, record)])

    async def next_due(self) -> int:
        """Move the clock to the next parked command and run what is due."""
        due = await self.worker.deferred.next_due_ms()
        assert due is not None
        self.clock._now = max(self.clock.now_ms(), due)
        entries = await self.worker.deferred.take_due(self.clock.now_ms())
        for entry in entries:
            await self.worker.handle_deferred(entry)
        return len(entries)


@pytest.fixture
async def rig(make_settings: Callable[..., Settings]) -> AsyncIterator[Callable[..., Any]]:
    clients: list[Any] = []

    async def make(
        failures: int, triggers: dict[str, FlowPlan] | None = None, **overrides: Any
    ) -> Rig:
        values = {"send_backoff_s": 1.0, "send_backoff_max_s": 60, "send_retry_for": "PT1H"}
        settings = make_settings(**{**values, **overrides})
        assert settings.redis_url
        client = aioredis.from_url(settings.redis_url)
        clients.append(client)
        r = Rig(settings, client, failures, triggers or {})
        await r.shared.set_consent("c1", "email", "subscribed")
        return r

    yield make
    for client in clients:
        await client.aclose()


async def test_transient_failures_are_parked_with_backoff_then_sent_once(rig: Any) -> None:
    r = await rig(failures=3)
    await r.consume(r.command())
    assert r.producer.events == [] and await r.worker.deferred.size() == 1
    waits = []
    for _ in range(3):
        before = r.clock.now_ms()
        assert await r.next_due() == 1
        waits.append(r.clock.now_ms() - before)
    # Full jitter at (almost) its top: each wait just under base * 2^(n-1).
    assert waits == [999, 1999, 3999]
    [event] = r.producer.events
    assert (event.status, event.attempts) == ("sent", 4)
    assert len(r.transport.accepted) == 1
    assert await r.worker.deferred.size() == 0
    assert await r.worker.deferred.retry_state("cmd-1") is None


async def test_window_survives_a_restart_and_then_ends_failed(rig: Any) -> None:
    r = await rig(failures=10_000, send_retry_for="PT10M")
    await r.consume(r.command())
    for _ in range(5):
        await r.next_due()
    r.worker = r.new_worker()
    # A replayed copy from Kafka must not start the window over either.
    await r.consume(r.command())
    state = await r.worker.deferred.retry_state("cmd-1")
    assert state is not None and state.first_failure_ms == T0 and state.attempts == 7
    while not r.producer.events:
        await r.next_due()
    [event] = r.producer.events
    assert (event.status, event.reason) == ("failed", "retry_window_expired")
    assert "smtp_451" in event.detail and "try again later" in event.detail
    assert r.clock.now_ms() == T0 + 10 * MINUTE
    assert event.attempts == r.transport.calls
    assert r.transport.accepted == [] and await r.worker.deferred.size() == 0


async def test_a_flows_expires_after_ends_retries_sooner(rig: Any) -> None:
    """The command carries the flow's ``expires_after`` as it was when it was sent."""
    r = await rig(failures=10_000)
    await r.consume(r.command(expires_after_ms=90_000))
    while not r.producer.events:
        await r.next_due()
    assert r.producer.events[0].reason == "retry_window_expired"
    assert r.clock.now_ms() == T0 + 90_000


async def test_unsubscribe_while_waiting_for_a_retry_stops_it(rig: Any) -> None:
    r = await rig(failures=1)
    await r.consume(r.command())
    await r.shared.set_consent("c1", "email", "unsubscribed")
    await r.next_due()
    [event] = r.producer.events
    assert (event.status, event.reason) == ("suppressed", "consent_unsubscribed")
    assert r.transport.accepted == [] and await r.worker.deferred.size() == 0


async def eventually(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


class SlowFor:
    """Accepts at once, except the message of command ``command_id`` (found by its
    opaque ref in the bytes, as ``X-Nudge-Ref``): held until ``release`` is set."""

    def __init__(self, command_id: str, secret: Any = DEV_SECRET) -> None:
        self.marker = message_ref(command_id, secret).encode()
        self.release = asyncio.Event()
        self.accepted: list[bytes] = []

    async def send(self, message: OutgoingMessage, on_data: DataHook | None = None) -> None:
        if self.marker in message.data:
            await self.release.wait()
        if on_data is not None:
            await on_data()
        self.accepted.append(message.data)

    async def close(self) -> None:
        pass


async def test_deferred_loop_is_not_held_up_by_one_slow_send_nor_capped_at_100(
    rig: Any,
) -> None:
    r = await rig(failures=0, delivery_concurrency=16)
    slow = SlowFor("slow-one", r.worker.settings.secret_key)
    r.worker.deliverer.transport = slow
    for cid in ["slow-one", *(f"cmd-{i}" for i in range(150))]:
        await r.worker.deferred.add(cid, r.command(cid).to_bytes(), T0)
    stop = asyncio.Event()
    loop = asyncio.create_task(r.worker._deferred_loop(stop))
    try:
        await eventually(lambda: len(r.producer.events) == 150, "all but the slow one")
        assert await r.worker.deferred.size() == 1  # only the slow one, still in hand
        slow.release.set()
        await eventually(lambda: len(r.producer.events) == 151, "the slow one too")
    finally:
        stop.set()
        await asyncio.wait_for(loop, 10)
    assert sorted(e.status for e in r.producer.events) == ["sent"] * 151
    assert await r.worker.deferred.size() == 0


async def test_a_send_outlasting_the_lease_keeps_its_entry_from_other_workers(rig: Any) -> None:
    r = await rig(failures=0)
    slow = SlowFor("slow-one", r.worker.settings.secret_key)
    r.worker.deliverer.transport = slow
    await r.worker.deferred.add("slow-one", r.command("slow-one").to_bytes(), T0)
    other = r.new_worker()  # a second process, polling the same queue
    stop = asyncio.Event()
    loop = asyncio.create_task(r.worker._deferred_loop(stop))
    try:
        await eventually(lambda: "slow-one" in r.worker._retrying, "the slow one in hand")
        for _ in range(4):  # well past the first lease, a third of one at a time
            r.clock._now += r.worker.deferred.lease_ms // 3 + 1
            renewed_until = r.clock.now_ms() + r.worker.deferred.lease_ms
            r.worker._wake.set()
            await eventually(
                lambda until=renewed_until: r.worker._leases.get("slow-one") == until,
                "a renewal",
            )
            assert await other.deferred.take_due(r.clock.now_ms()) == []
        slow.release.set()
        await eventually(lambda: len(r.producer.events) == 1, "the slow one sent")
    finally:
        stop.set()
        await asyncio.wait_for(loop, 10)
    assert [e.status for e in r.producer.events] == ["sent"]
    assert await r.worker.deferred.size() == 0


async def test_a_crashed_workers_deferred_entries_come_back_after_one_lease(rig: Any) -> None:
    r = await rig(failures=0)
    await r.worker.deferred.add("cmd-1", r.command().to_bytes(), T0)
    assert len(await r.worker.deferred.take_due(T0)) == 1  # taken, then the taker died
    successor = r.new_worker()
    assert await successor.deferred.take_due(T0 + successor.deferred.lease_ms - 1) == []
    [entry] = await successor.deferred.take_due(T0 + successor.deferred.lease_ms)
    await successor.handle_deferred(entry)
    assert [e.status for e in r.producer.events] == ["sent"]
