"""The Kafka side of delivery: consume send commands, report outcomes, commit.

Offsets are committed only after every command of a batch either reached a final
outcome, its delivery event acknowledged by the broker, or was durably parked in the
deferred queue (quiet hours, or a transient failure to retry). A crash before that
replays the batch, which the send ledger turns into "already sent" for whatever did go
out.

Parked commands come back through the deferred loop, concurrently with fresh
consumption: it keeps up to ``2 x NUDGE_DELIVERY_CONCURRENCY`` of them in flight,
sharing the same concurrency slots first come first served (so neither a retry burst
nor a busy topic starves the other), refills as soon as one finishes, and otherwise
sleeps until the earliest due entry, so each message waits about its own backoff.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import CommitFailedError, KafkaError
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from nudge.clock import Clock
from nudge.delivery.command_check import validate
from nudge.delivery.context import PopularRecommender, Recommender
from nudge.delivery.deferred import DeferredEntry, DeferredQueue
from nudge.delivery.dkim import DkimSigner
from nudge.delivery.idempotency import DEFAULT_LEASE_MS, SendLedger
from nudge.delivery.metrics import DeliveryMetrics
from nudge.delivery.outcome import Outcome, reason_of
from nudge.delivery.pipeline import Deliverer, TriggerLookup
from nudge.delivery.retry import GiveUp, RetryPolicy, RetryState, expiry_anchor_ms
from nudge.delivery.smtp import Transport
from nudge.delivery.suppression import Suppressions
from nudge.errors import InvalidMessage
from nudge.models.commands import DeadLetter, DeliveryEvent, SendCommand
from nudge.recommender.search import CatalogSearch, SearchRecommender
from nudge.settings import Settings
from nudge.shared_state import SharedState

log = logging.getLogger(__name__)

_DEFERRED_POLL_S = 1.0
_FETCH_MAX_WAIT_MS = 25


class _Assignment(ConsumerRebalanceListener):
    """Logs which send-commands partitions this worker owns (an operator's first
    question when some customers' messages stop while others flow), and lets a revoked
    partition's batch in hand finish before the new owner starts on it."""

    def __init__(self, worker: DeliveryWorker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            log.info("send-commands partitions revoked: %s", _partitions(revoked))
            await self.worker.finish_batches(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("send-commands partitions assigned: %s", _partitions(assigned) or "none")


def _partitions(tps: Any) -> str:
    return ", ".join(str(tp.partition) for tp in sorted(tps, key=lambda tp: tp.partition))


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
        retry_policy: RetryPolicy | None = None,
        dkim: DkimSigner | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = DeliveryMetrics(registry or CollectorRegistry())
        # A ``data`` entry younger than its lease is taken for a live transaction, so the
        # lease must outlast DATA, the body and the reply, each bounded by the timeout.
        slowest_s = max(settings.smtp_timeout_s, settings.http_timeout_s)
        lease_ms = max(DEFAULT_LEASE_MS, int(4 * slowest_s * 1000))
        self.ledger = SendLedger(redis, shared_state.key, clock, owner=owner, lease_ms=lease_ms)
        self.deferred = DeferredQueue(redis, shared_state.key)
        self.retry_policy = retry_policy or RetryPolicy.from_settings(settings)
        self.triggers = triggers
        self.deliverer = Deliverer(
            settings,
            redis,
            transport,
            shared_state,
            triggers,
            clock,
            self.ledger,
            # ``search`` wraps whichever recommender serves the other algorithms.
            SearchRecommender(
                recommender or PopularRecommender(shared_state),
                shared_state,
                CatalogSearch(shared_state, clock),
            ),
            self.metrics,
            dkim=dkim,
            # A recipient refused with a 5xx is published as a hard bounce through this
            # worker's producer (consent on ``customers``, ``bounced`` on ``engagement``).
            suppressions=Suppressions(settings, shared_state, self, clock),
        )
        self._slots = asyncio.Semaphore(settings.delivery_concurrency)
        self._retry_capacity = 2 * settings.delivery_concurrency
        self._retrying: dict[str, asyncio.Task[None]] = {}
        self._leases: dict[str, int] = {}  # in hand: the deferred score it was taken with
        self._renewed_at_ms = 0
        self._wake = asyncio.Event()  # a parked command or a free retry place
        self._producer: AIOKafkaProducer | None = None
        self._batches: dict[TopicPartition, asyncio.Task[None]] = {}
        self.running = False

    # -- lifecycle -------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is finished first."""
        s = self.settings
        consumer = AIOKafkaConsumer(
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
            consumer.subscribe([s.topic("send-commands")], listener=_Assignment(self))
            self.running = True
            deferred = asyncio.create_task(self._deferred_loop(stop), name="delivery-deferred")
            try:
                while not stop.is_set():
                    batches = await consumer.getmany(timeout_ms=500)
                    for tp, records in batches.items():
                        self._start_batch(consumer, tp, records)
                    if deferred.done():
                        deferred.result()  # surface a crash of the deferred loop
                # Let the batches and parked commands in hand finish.
                await self.finish_batches(list(self._batches))
                await deferred
            finally:
                self.running = False
                deferred.cancel()
                for batch in self._batches.values():
                    batch.cancel()
                await asyncio.gather(deferred, *self._batches.values(), return_exceptions=True)
                await consumer.stop()
        finally:
            self._producer = None
            await producer.stop()
            await self.deliverer.close()

    def _start_batch(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: Sequence[ConsumerRecord]
    ) -> None:
        """Work on a partition's batch while the other partitions' batches are fetched
        and sent: the SMTP connections then never wait for one batch's last message, its
        reports' acknowledgements and its commit. The partition itself is paused until
        its batch is committed, so its commits stay in order."""
        consumer.pause(tp)
        batch = asyncio.create_task(self._consume(consumer, tp, records), name=f"delivery-{tp}")
        self._batches[tp] = batch

        def finished(_: asyncio.Task[None]) -> None:
            if self._batches.get(tp) is batch:
                del self._batches[tp]
            if tp in consumer.assignment():
                consumer.resume(tp)

        batch.add_done_callback(finished)

    async def finish_batches(self, partitions: Any) -> None:
        """Wait for the batches in hand of these partitions (revoked, or all at a stop)."""
        batches = [self._batches[tp] for tp in partitions if tp in self._batches]
        for outcome in await asyncio.gather(*batches, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.error("a delivery batch failed: %r", outcome)

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
        return await self._settle(command, raw, outcome, None, fresh=True)

    async def _settle(
        self,
        command: SendCommand,
        raw: bytes,
        outcome: Outcome,
        prior: RetryState | None,
        *,
        fresh: bool = False,
    ) -> asyncio.Future[Any] | None:
        """Park the command (None) or report its final outcome (the send's ack).

        ``prior`` is the retry state that came with a parked command; a ``fresh`` one
        from Kafka looks its state up only when it fails, in case it is a replayed copy
        of a command already being retried (its window must not start over).
        """
        if outcome.status == "deferred":
            assert outcome.until_ms is not None
            await self.deferred.add(command.id, raw, outcome.until_ms)
            self.metrics.count("deferred", outcome.reason)
            self._wake.set()
            return None
        if outcome.status == "retry":
            if fresh:
                prior = await self.deferred.retry_state(command.id)
            step = self.retry_policy.after_failure(
                prior,
                now_ms=self.clock.now_ms(),
                reason=outcome.reason,
                detail=outcome.detail,
                attempts=outcome.attempts,
                anchor_ms=expiry_anchor_ms(command),
                expires_after_ms=self._expires_after_ms(command),
                not_before_ms=outcome.until_ms,
            )
            if isinstance(step, GiveUp):
                if fresh and prior is not None:
                    await self.deferred.done(command.id)  # a replayed copy ends it too
                final = step.state
                outcome = Outcome("failed", "retry_window_expired", final.attempts, final.summary())
                return await self._report(command, outcome)
            await self.deferred.add(command.id, raw, step.due_ms, step.state)
            self.metrics.retries.labels(reason=outcome.reason).inc()
            self._wake.set()
            return None
        if prior is not None:
            outcome = replace(outcome, attempts=prior.attempts + outcome.attempts)
        return await self._report(command, outcome)

    @staticmethod
    def _expires_after_ms(command: SendCommand) -> int | None:
        """The flow's ``expires_after``, as the command carries it (counted from due)."""
        if command.expires_at_ms is None:
            return None
        return max(command.expires_at_ms - command.due_ms, 0)

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
            channel=outcome.channel or command.channel,
            ts=self.clock.now_ms(),
            attempts=outcome.attempts,
            detail=outcome.detail,
            variant=command.variant,
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

    async def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """One record through this worker's producer, acknowledged (``Publisher``)."""
        ack = await self._require_producer().send(topic, value, key=key, headers=headers)
        await ack

    def _require_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("DeliveryWorker is not running")
        return self._producer

    # -- deferred commands -----------------------------------------------------
    async def _deferred_loop(self, stop: asyncio.Event) -> None:
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                self._wake.clear()  # before dispatching: a wake meanwhile is kept
                await self._renew_leases()
                wait_s = await self._dispatch_due()
                woken = asyncio.create_task(self._wake.wait())
                await asyncio.wait(
                    {stopping, woken}, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED
                )
                woken.cancel()
        finally:
            stopping.cancel()
            # Finish what was started; an interrupted one stays leased and comes back.
            await asyncio.gather(*self._retrying.values(), return_exceptions=True)

    async def _renew_leases(self) -> None:
        """Keep the entries in hand leased, so no other worker takes them while this one
        is still at it; a third of a lease between renewals leaves room for a slow pass."""
        now_ms = self.clock.now_ms()
        if not self._leases or now_ms - self._renewed_at_ms < self.deferred.lease_ms // 3:
            return
        try:
            renewed = await self.deferred.renew(dict(self._leases), now_ms)
        except Exception:
            log.exception("renewing the leases of deferred commands failed; retrying")
            return
        self._renewed_at_ms = now_ms
        for command_id, until_ms in renewed.items():
            if command_id in self._leases:
                self._leases[command_id] = until_ms

    async def _dispatch_due(self) -> float:
        """Start the due entries there is room for; the seconds until the next is due."""
        room = self._retry_capacity - len(self._retrying)
        if room <= 0:
            return _DEFERRED_POLL_S  # a finishing one wakes the loop sooner
        try:
            entries = await self.deferred.take_due(self.clock.now_ms(), limit=room)
            for entry in entries:
                if entry.command_id in self._retrying:
                    # Still being handled here; taking it renewed its lease.
                    self._leases[entry.command_id] = entry.leased_until_ms
                    continue
                task = asyncio.create_task(self._handle_deferred_logged(entry))
                self._retrying[entry.command_id] = task
                self._leases[entry.command_id] = entry.leased_until_ms
                task.add_done_callback(functools.partial(self._finished, entry.command_id))
            if len(entries) >= room:
                return _DEFERRED_POLL_S
            next_ms = await self.deferred.next_due_ms()
        except Exception:
            log.exception("deferred delivery pass failed; retrying")
            return _DEFERRED_POLL_S
        if next_ms is None:
            return _DEFERRED_POLL_S  # other workers may park some: look now and then
        return min(_DEFERRED_POLL_S, max(0.0, (next_ms - self.clock.now_ms()) / 1000))

    def _finished(self, command_id: str, _: asyncio.Task[None]) -> None:
        self._retrying.pop(command_id, None)
        self._leases.pop(command_id, None)
        self._wake.set()

    async def _handle_deferred_logged(self, entry: DeferredEntry) -> None:
        try:
            await self.handle_deferred(entry)
        except Exception:
            # Redis or Kafka trouble: the entry stays leased and is taken again later.
            log.exception("deferred command %s failed; it will come back", entry.command_id)

    async def handle_deferred(self, entry: DeferredEntry) -> None:
        """One parked command to its next step: sent, re-parked, or reported."""
        try:
            command = SendCommand.from_bytes(entry.raw)
        except InvalidMessage:
            await self.deferred.done(entry.command_id)  # it parsed once; never loop on it
            return
        try:
            async with self._slots:
                outcome = await self.deliverer.deliver(command)
        except Exception as exc:
            # Redis trouble before the send, or a bug: back off like any transient
            # failure, within the window, rather than wait out the queue's lease.
            log.warning("deferred command %s: %s; retrying later", command.id, exc)
            outcome = Outcome("retry", reason_of(exc), 0, str(exc)[:1000])
        ack = await self._settle(command, entry.raw, outcome, entry.retry)
        if ack is not None:
            await ack
            await self.deferred.done(entry.command_id)
