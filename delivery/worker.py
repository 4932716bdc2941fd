"""The Kafka side of delivery: consume send commands, report outcomes, commit.

Offsets are committed only after every command of a batch reached an outcome and its
delivery event was acknowledged by the broker. A crash before that replays the batch,
which the send ledger turns into "already sent" for whatever did go out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from delivery.context import PopularRecommender, Recommender
from delivery.deferred import DeferredQueue
from delivery.idempotency import SendLedger
from delivery.metrics import DeliveryMetrics
from delivery.pipeline import Deliverer, Outcome, TriggerLookup, validate
from delivery.smtp import Transport
from models.commands import DeadLetter, DeliveryEvent, SendCommand
from nudge.clock import Clock
from nudge.errors import InvalidMessage
from nudge.settings import Settings
from nudge.shared_state import SharedState

log = logging.getLogger(__name__)

_DEFERRED_POLL_S = 1.0
_FETCH_MAX_WAIT_MS = 25


class DeliveryWorker:
    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        transport: Transport,
        shared_state: SharedState,
        triggers: TriggerLookup,
        clock: Clock,
        *,
        registry: CollectorRegistry | None = None,
        recommender: Recommender | None = None,
        owner: str | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = DeliveryMetrics(registry or CollectorRegistry())
        self.ledger = SendLedger(redis, shared_state.key, clock, owner=owner)
        self.deferred = DeferredQueue(redis, shared_state.key)
        self.deliverer = Deliverer(
            settings,
            redis,
            transport,
            shared_state,
            triggers,
            clock,
            self.ledger,
            recommender or PopularRecommender(shared_state),
            self.metrics,
        )
        self._slots = asyncio.Semaphore(settings.delivery_concurrency)
        self._producer: AIOKafkaProducer | None = None
        self.running = False

    # -- lifecycle -------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is finished first."""
        s = self.settings
        consumer = AIOKafkaConsumer(
            s.topic("send-commands"),
            bootstrap_servers=s.kafka_bootstrap,
            # The prefix isolates deployments (and benchmark runs) sharing one broker, as
            # it does for the stream worker's Faust app id.
            group_id=f"{s.topic_prefix}{s.app_id}-delivery",
            enable_auto_commit=False,
            # The default (500 ms) makes a fetch on a quiet topic wait that long before
            # the broker answers, and a command arriving meanwhile waits with it.
            fetch_max_wait_ms=_FETCH_MAX_WAIT_MS,
            auto_offset_reset="earliest",
            session_timeout_ms=int(s.session_timeout_s * 1000),
            heartbeat_interval_ms=max(100, int(s.session_timeout_s * 1000 / 3)),
            max_poll_records=s.delivery_concurrency * 4,
        )
        producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all", linger_ms=5)
        await producer.start()
        self._producer = producer
        try:
            await consumer.start()
            self.running = True
            deferred = asyncio.create_task(self._deferred_loop(stop), name="delivery-deferred")
            try:
                while not stop.is_set():
                    batches = await consumer.getmany(timeout_ms=500)
                    for tp, records in batches.items():
                        await self._consume(consumer, tp, records)
                    if deferred.done():
                        deferred.result()  # surface a crash of the deferred loop
            finally:
                self.running = False
                deferred.cancel()
                await asyncio.gather(deferred, return_exceptions=True)
                await consumer.stop()
        finally:
            self._producer = None
            await producer.stop()

    async def _consume(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: Sequence[ConsumerRecord]
    ) -> None:
        try:
            await self.handle_records(records)
        except Exception:
            # Redis or Kafka trouble mid-batch: replay it from its start after a pause.
            # Commands already sent come back as duplicates, so this is safe.
            log.exception("delivery batch on %s failed; replaying it", tp)
            consumer.seek(tp, records[0].offset)
            await asyncio.sleep(max(self.settings.send_backoff_s, 1.0))
            return
        try:
            await consumer.commit({tp: records[-1].offset + 1})
        except (CommitFailedError, KafkaError) as exc:
            # Rebalanced away mid-batch: the new owner replays it, the ledger dedupes.
            log.warning("commit on %s failed (%s); it will be replayed", tp, exc)

    # -- records ---------------------------------------------------------------
    async def handle_records(self, records: Sequence[ConsumerRecord]) -> None:
        """Every record to an outcome, concurrently; returns once all are reported."""
        acks = await asyncio.gather(*(self._handle_record(r) for r in records))
        await asyncio.gather(*(ack for ack in acks if ack is not None))

    async def _handle_record(self, record: ConsumerRecord) -> asyncio.Future[Any] | None:
        raw = record.value or b""
        try:
            command = SendCommand.from_bytes(raw)
            validate(command)
        except InvalidMessage as exc:
            return await self._dead_letter(record, exc)
        async with self._slots:
            outcome = await self.deliverer.deliver(command)
        if outcome.status == "deferred":
            assert outcome.until_ms is not None
            await self.deferred.add(command.id, raw, outcome.until_ms)
            self.metrics.count("deferred", outcome.reason)
            return None
        return await self._report(command, outcome)

    async def _report(self, command: SendCommand, outcome: Outcome) -> asyncio.Future[Any]:
        if outcome.status == "duplicate":
            # Re-announce it: consumers dedupe events by command_id, and the first
            # event may be what a crash lost. Not counted as a second send.
            status, reason = "sent", outcome.reason
        else:
            status, reason = outcome.status, outcome.reason
            self.metrics.count(status, reason)
        event = DeliveryEvent(
            command_id=command.id,
            status=status,
            reason=reason,
            customer_id=command.customer_id,
            trigger_id=command.trigger_id,
            channel=command.channel,
            ts=self.clock.now_ms(),
            attempts=outcome.attempts,
            detail=outcome.detail,
        )
        return await self._require_producer().send(
            self.settings.topic("delivery-events"),
            event.to_bytes(),
            key=command.customer_id.encode(),
        )

    async def _dead_letter(
        self, record: ConsumerRecord, exc: InvalidMessage
    ) -> asyncio.Future[Any]:
        log.warning("dead-lettering %s@%s: %s", record.topic, record.offset, exc)
        self.metrics.dead_letters.labels(reason=exc.reason).inc()
        letter = DeadLetter.of(record, exc, self.clock.now_ms())
        return await self._require_producer().send(
            self.settings.topic("dead-letter"),
            letter.value,
            key=letter.key,
            headers=letter.headers(),
        )

    def _require_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("DeliveryWorker is not running")
        return self._producer

    # -- deferred commands -----------------------------------------------------
    async def _deferred_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                due = await self.deferred.take_due(self.clock.now_ms())
                await asyncio.gather(*(self._handle_deferred(cid, raw) for cid, raw in due))
            except Exception:
                log.exception("deferred delivery pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _DEFERRED_POLL_S)

    async def _handle_deferred(self, command_id: str, raw: bytes) -> None:
        try:
            command = SendCommand.from_bytes(raw)
        except InvalidMessage:
            await self.deferred.done(command_id)  # it parsed once; cannot happen, but never loop
            return
        async with self._slots:
            outcome = await self.deliverer.deliver(command)
        if outcome.status == "deferred":
            assert outcome.until_ms is not None
            await self.deferred.add(command.id, raw, outcome.until_ms)
            return
        await (await self._report(command, outcome))
        await self.deferred.done(command_id)
