"""``create_app(settings)``: the Faust app, its topics, table, agents and timer.

Agents stay thin: they batch records and hand them to the ``Processor``, which
reports a batch applied (``mark_applied``, into ``OffsetProgress``) once every effect
of it is acknowledged; the consumer commits nothing past records not applied. Every
dependency (Redis, clock, registry) is built here and handed down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka.errors import KafkaError
from redis.asyncio import Redis

from nudge import codec
from nudge.clock import Clock, SystemClock
from nudge.models.catalog import CatalogSignal
from nudge.models.commands import DeliveryEvent, SendCommand
from nudge.models.sellers import SellerRecord
from nudge.settings import Settings
from nudge.shared_state import SharedState
from nudge.streams.catalog_join import CatalogJoin
from nudge.streams.consumer import NudgeApp
from nudge.streams.dead_letter import DeadLetterSink
from nudge.streams.metrics import StreamMetrics
from nudge.streams.offsets import OffsetProgress
from nudge.streams.processor import Processor
from nudge.streams.quiet_monitor import QuietMonitor
from nudge.streams.scheduler import run_timers
from nudge.streams.seller_side import SellerSide
from nudge.streams.table import (
    AudienceStore,
    SellerStore,
    StateStore,
    declare_audience_table,
    declare_seller_table,
    declare_table,
)
from nudge.streams.waiting import Waits
from nudge.trigger_registry import TriggerFeed, TriggerRegistry

log = logging.getLogger(__name__)

BATCH_MAX = 1000
BATCH_WITHIN_S = 0.05
#: Input topics whose commits follow ``OffsetProgress`` (the compacted catalogue
#: keeps Faust's own bookkeeping: it is an upsert log, and a skipped record is
#: repaired by the next import).
GUARDED_TOPICS = (
    "clickstream",
    "orders",
    "customers",
    "catalog-signals",
    "product-interest",
    "catalog-changes",
    "sellers",
    "seller-messages",
)
#: How long a partition's position may stand still behind fetched records before
#: it is sought back and fetched again.
STALL_AFTER_S = 5.0


@dataclass
class Worker:
    """The app plus what tests and the web views need to reach."""

    app: faust.App
    settings: Settings
    processor: Processor
    registry: TriggerRegistry
    shared: SharedState
    metrics: StreamMetrics
    redis: Redis
    progress: OffsetProgress[Any]
    waits: Waits


def _broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip()]


def create_app(
    settings: Settings, *, redis: Redis | None = None, clock: Clock | None = None
) -> Worker:
    clock = clock or SystemClock()
    progress: OffsetProgress[Any] = OffsetProgress(
        [settings.topic(name) for name in GUARDED_TOPICS], stall_after_s=STALL_AFTER_S
    )
    app = NudgeApp(
        f"{settings.topic_prefix}{settings.app_id}",
        offset_progress=progress,
        broker=_broker_urls(settings.kafka_bootstrap),
        store=settings.store,
        datadir=str(settings.data_dir / "faust"),
        autodiscover=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_disable_leader=True,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(1.0, settings.session_timeout_s / 3),
        broker_rebalance_timeout=max(30.0, settings.session_timeout_s * 5),
        consumer_auto_offset_reset="earliest",
        broker_max_poll_records=5000,
        consumer_max_fetch_size=8 * 1024 * 1024,
        stream_buffer_maxsize=16384,
        table_standby_replicas=0,
        producer_linger=0.005,
        web_enabled=True,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_in_thread=False,
        loghandlers=[],
        monitor=QuietMonitor(),
    )
    metrics = StreamMetrics()
    waits = Waits()
    redis_client = redis or Redis.from_url(settings.redis_url or "redis://127.0.0.1:6379/0")
    shared = SharedState(redis_client, settings.redis_namespace)
    registry = TriggerRegistry(smart_sending_ms=round(settings.smart_sending * 1000))

    def raw_topic(name: str, **kwargs: Any) -> Any:
        return app.topic(
            settings.topic(name), key_serializer="raw", value_serializer="raw", **kwargs
        )

    clicks = raw_topic("clickstream")
    orders = raw_topic("orders")
    customers = raw_topic("customers")
    catalog = raw_topic("catalog")
    commands = raw_topic("send-commands")
    dead_letter = raw_topic("dead-letter")
    delivery_events = raw_topic("delivery-events")
    changes = raw_topic("catalog-changes")
    interests = raw_topic("product-interest")
    signals = raw_topic("catalog-signals")
    sellers = raw_topic("sellers")
    seller_messages = raw_topic("seller-messages")
    table = declare_table(app, "customer-state", settings.partitions)
    audiences = declare_audience_table(app, settings.partitions)
    seller_table = declare_seller_table(app, settings.partitions)

    def mark_applied(messages: Sequence[Any]) -> None:
        _mark_applied(progress, messages)

    send_command = _command_sender(commands, seller_messages)

    async def send_event(event: DeliveryEvent) -> None:
        future = await delivery_events.send(key=event.customer_id.encode(), value=event.to_bytes())
        await future

    processor = Processor(
        store=StateStore(table),
        registry=registry,
        shared=shared,
        dead_letters=DeadLetterSink(dead_letter, clock, metrics),
        send_command=send_command,
        clock=clock,
        metrics=metrics,
        max_payload_bytes=settings.max_payload_bytes,
        waits=waits,
        applied=mark_applied,
        send_event=send_event,
    )
    dead_letters = processor.dead_letters

    async def send_interest(partition: int, value: bytes) -> Any:
        return await interests.send(value=value, partition=partition)

    processor.catalog = CatalogJoin(
        store=AudienceStore(audiences),
        registry=registry,
        dead_letters=dead_letters,
        send_interest=send_interest,
        send_signal=_keyed(signals),
        partitions=settings.partitions,
        clock=clock,
        metrics=metrics,
        applied=mark_applied,
    )

    processor.sellers = SellerSide(
        store=SellerStore(seller_table),
        registry=registry,
        dead_letters=dead_letters,
        send_record=_keyed(seller_messages),
        send_command=send_command,
        record_notes=processor.record,
        clock=clock,
        metrics=metrics,
        applied=mark_applied,
    )
    registry.on_reject.append(lambda name, reason: metrics.trigger_rejections.inc())
    registry.on_plan.append(processor.plan_applied)
    feed = TriggerFeed.from_settings(registry, settings, keep_versions=True)

    def batched(topic: Any, handler: Any, decode: Any) -> None:
        _batch_path(app, registry, topic, handler, decode)

    batched(clicks, processor.on_clicks, codec.decode_click)
    batched(orders, processor.on_orders, codec.decode_order)
    batched(customers, processor.on_customers, codec.decode_customer_partial)
    batched(signals, processor.on_signals, _decode_signal)
    batched(interests, processor.catalog.on_interests, None)
    batched(changes, processor.catalog.on_changes, None)
    batched(sellers, processor.sellers.on_sellers, None)
    batched(seller_messages, processor.sellers.on_seller_messages, None)
    # The compacted catalogue keeps Faust's agent and its acknowledgements.
    _batch_agent(app, registry, catalog, processor.on_catalog, codec.decode_product)

    @app.task
    async def follow_triggers() -> None:
        await feed.run()

    @app.task
    async def write_customer_views() -> None:
        await processor.views.run()

    def active_partitions() -> set[int]:
        name = clicks.get_topic_name()
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == name}

    @table.on_recover
    async def rebuild_timers() -> None:
        processor.rebuild_due(active_partitions())

    @app.timer(1.0, name="replay_stalled_partitions")
    async def replay_stalled_partitions() -> None:
        if app.rebalancing or waits:
            return  # a handler waiting for a dependency holds its position on purpose
        await _replay_stalled(app, progress, metrics)

    @app.timer(15.0, name="log_consumer_state")
    async def log_consumer_state() -> None:
        consumer: Any = app.consumer  # a GuardedConsumer: NudgeApp's transport makes it
        log.info("consumer: %s", consumer.describe())

    @app.timer(1.0, name="flush_popularity")
    async def flush_popularity() -> None:
        await processor.flush_popularity()

    @app.task
    async def fire_due_timers() -> None:
        fire = _settled(app, registry, lambda: processor.fire(active_partitions()))
        await run_timers(fire, processor.due, clock, retry_s=settings.timer_tick_s)

    worker = Worker(
        app, settings, processor, registry, shared, metrics, redis_client, progress, waits
    )
    from nudge.streams.web import register_views

    register_views(worker, customers_topic=customers, clock=clock)
    return worker


def _settled(
    app: Any, registry: TriggerRegistry, fire: Callable[[], Awaitable[int]]
) -> Callable[[], Awaitable[None]]:
    """``fire``, skipped while partitions move or before the flows are known."""

    async def fire_when_settled() -> None:
        if not app.rebalancing and registry.ready.is_set():
            await fire()

    return fire_when_settled


def _mark_applied(progress: OffsetProgress[Any], messages: Sequence[Any]) -> None:
    now = time.monotonic()
    for tp, offsets in _offsets_by_partition(messages).items():
        progress.applied(tp, offsets, now)


def _command_sender(
    commands: Any, seller_messages: Any
) -> Callable[[SendCommand], Awaitable[None]]:
    """Sending a command to delivery; one to a seller goes by the seller side first,
    which holds the seller's contact. Returns once the broker acknowledged it."""

    async def send_command(command: SendCommand) -> None:
        if command.seller_id and not command.recipient:
            record = SellerRecord(message=command)
            future = await seller_messages.send(
                key=command.seller_id.encode(), value=record.to_bytes()
            )
        else:
            future = await commands.send(key=command.customer_id.encode(), value=command.to_bytes())
        await future

    return send_command


def _batch_path(
    app: NudgeApp, registry: TriggerRegistry, topic: Any, handler: Any, decode: Any
) -> None:
    """``handler`` takes each fetch of ``topic`` (``NudgeApp.batch_handler``), once the
    flows are known."""
    name = topic.get_topic_name()

    async def handle(messages: Sequence[Any]) -> None:
        await registry.ready.wait()
        try:
            await handler(messages, decode, name)
        except Exception:
            # The handler did not report the batch applied, so the commit stays
            # behind it and the stalled partition is fetched again.
            log.exception("handling a batch of %s failed; it will be replayed", name)

    app.batch_handler(topic, handle)


def _batch_agent(
    app: Any, registry: TriggerRegistry, topic: Any, handler: Any, decode: Any
) -> None:
    """An agent on ``topic`` handing ``handler`` its records in batches, once the flows
    are known."""
    name = topic.get_topic_name()

    async def agent(stream: Any) -> None:
        await registry.ready.wait()
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            # Records fetched before a rebalance may belong to a partition that
            # moved to another worker; the current owner reads them again.
            generation = app.consumer_generation_id
            messages = [e.message for e in events if e.message.generation_id == generation]
            if len(messages) < len(events):
                log.info(
                    "%s: %d records of an earlier generation left to their owner",
                    name,
                    len(events) - len(messages),
                )
            try:
                await handler(messages, decode, name)
            except Exception:
                # Faust acknowledges the batch anyway; the handler did not report
                # it applied, so the commit stays behind it and the stalled
                # partition is fetched again.
                log.exception("handling a batch of %s failed; it will be replayed", name)

    agent.__name__ = f"on_{name.replace('-', '_')}"
    app.agent(topic, name=agent.__name__)(agent)


async def _replay_stalled(app: Any, progress: OffsetProgress[Any], metrics: StreamMetrics) -> None:
    """Seek every partition stalled behind records it fetched back to its position."""
    now = time.monotonic()
    for tp in progress.idle(now):
        # Records fetched and dropped before this worker tracked the partition
        # leave no trace but the log's end, which every fetch response reports.
        end = _cached_log_end(app.consumer, tp)
        if end is not None:
            progress.log_ends_at(tp, end)
    stalled = progress.stalled(now)
    if not stalled:
        return
    for tp, _ in stalled:
        position = progress.position(tp)
        log.warning("%s stalled at offset %s behind fetched records; replaying", tp, position)
    # Records below the log start are gone (retention): not a hole to wait on.
    starts = await _bounded(
        app.consumer.earliest_offsets(*(tp for tp, _ in stalled)), "log start offsets"
    )
    for tp, offset in stalled:
        progress.log_starts_at(tp, starts.get(tp, 0), time.monotonic())
        metrics.replays.inc()
        await app.consumer.seek(tp, offset)


def _keyed(topic: Any) -> Callable[[bytes, bytes], Awaitable[Any]]:
    """Sending ``(key, value)`` to ``topic``: the returned future is the broker's ack."""

    async def send(key: bytes, value: bytes) -> Any:
        return await topic.send(key=key, value=value)

    return send


def _decode_signal(value: bytes | None, headers: Any, max_bytes: int) -> CatalogSignal:
    return CatalogSignal.from_bytes(value)


def _cached_log_end(consumer: Any, tp: Any) -> int | None:
    """The partition's end offset as the last fetch response gave it (no request)."""
    try:
        end = consumer.highwater(tp)
    except (KafkaError, AssertionError, AttributeError):
        return None  # not assigned (any more), or no fetch yet
    return end if isinstance(end, int) else None


async def _bounded(request: Awaitable[Mapping[Any, int]], what: str) -> Mapping[Any, int]:
    """Offsets from the broker, or none: a Faust timer whose run hangs never runs again."""
    try:
        return await asyncio.wait_for(request, timeout=10.0)
    except (TimeoutError, KafkaError) as exc:
        log.warning("could not read %s (%s)", what, exc)
        return {}


def _offsets_by_partition(messages: Sequence[Any]) -> dict[Any, list[int]]:
    offsets: dict[Any, list[int]] = {}
    for message in messages:
        offsets.setdefault(message.tp, []).append(message.offset)
    return offsets
