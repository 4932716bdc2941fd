"""``create_app(settings)``: the Faust app, its topics, tables, handlers and timers.

Handlers stay thin: each fetch of a topic goes to the ``Processor`` as one batch
(``wiring.batch_path``), which reports it applied (``mark_applied``, into
``OffsetProgress``) once every effect of it is acknowledged; the consumer commits
nothing past records not applied. Every dependency (Redis, clock, registry) is built
here and handed down.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import faust
from redis.asyncio import Redis

from nudge import codec
from nudge.broker_watch import BrokerWatch
from nudge.clock import Clock, SystemClock
from nudge.models.commands import DeliveryEvent
from nudge.settings import Settings
from nudge.shared_state import SharedState
from nudge.streams.catalog_join import CatalogJoin
from nudge.streams.consumer import NudgeApp
from nudge.streams.dead_letter import DeadLetterSink
from nudge.streams.horizon import sweep_inactive
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
from nudge.streams.wiring import (
    batch_agent,
    batch_path,
    command_sender,
    decode_signal,
    forget_on_recover,
    keyed,
    mark_applied,
    replay_stalled,
    settled,
)
from nudge.trigger_registry import TriggerFeed, TriggerRegistry
from nudge.waits import Waits

log = logging.getLogger(__name__)

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
#: How often the customers inactive past ``NUDGE_STATE_HORIZON`` are compacted.
HORIZON_SWEEP_EVERY_S = 3600.0


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
        broker_max_poll_records=settings.batch_max_records,
        consumer_max_fetch_size=settings.fetch_max_bytes,
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
    engagement = raw_topic("engagement")
    table = declare_table(app, "customer-state", settings.partitions)
    audiences = declare_audience_table(app, settings.partitions)
    seller_table = declare_seller_table(app, settings.partitions)

    def applied(messages: Sequence[Any]) -> None:
        mark_applied(progress, messages)

    send_command = command_sender(commands, seller_messages)

    async def send_event(event: DeliveryEvent) -> None:
        future = await delivery_events.send(key=event.customer_id.encode(), value=event.to_bytes())
        await future

    processor = Processor(
        store=StateStore(table, settings.state_cache),
        registry=registry,
        shared=shared,
        dead_letters=DeadLetterSink(dead_letter, clock, metrics),
        send_command=send_command,
        clock=clock,
        metrics=metrics,
        max_payload_bytes=settings.max_payload_bytes,
        waits=waits,
        applied=applied,
        send_event=send_event,
    )
    dead_letters = processor.dead_letters

    async def send_interest(partition: int, value: bytes) -> Any:
        return await interests.send(value=value, partition=partition)

    processor.catalog = catalog_join = CatalogJoin(
        store=AudienceStore(audiences),
        registry=registry,
        dead_letters=dead_letters,
        send_interest=send_interest,
        send_signal=keyed(signals),
        partitions=settings.partitions,
        clock=clock,
        metrics=metrics,
        applied=applied,
    )

    processor.sellers = seller_side = SellerSide(
        store=SellerStore(seller_table),
        registry=registry,
        dead_letters=dead_letters,
        send_record=keyed(seller_messages),
        send_command=send_command,
        record_notes=processor.record,
        clock=clock,
        metrics=metrics,
        applied=applied,
    )
    registry.on_reject.append(lambda name, reason: metrics.trigger_rejections.inc())
    registry.on_plan.append(processor.plan_applied)
    feed = TriggerFeed.from_settings(registry, settings, keep_versions=True)

    def batched(topic: Any, handler: Any, decode: Any) -> None:
        batch_path(app, registry, topic, handler, decode)

    batched(clicks, processor.on_clicks, codec.decode_click)
    batched(orders, processor.on_orders, codec.decode_order)
    batched(customers, processor.on_customers, codec.decode_customer_partial)
    batched(signals, processor.on_signals, decode_signal)
    batched(interests, processor.catalog.on_interests, None)
    batched(changes, processor.catalog.on_changes, None)
    batched(sellers, processor.sellers.on_sellers, None)
    batched(seller_messages, processor.sellers.on_seller_messages, None)
    # The compacted catalogue keeps Faust's agent and its acknowledgements.
    batch_agent(app, registry, catalog, processor.on_catalog, codec.decode_product)

    @app.task
    async def follow_triggers() -> None:
        await feed.run()

    # Faust starts these with the app and cancels them at stop.
    app.task(processor.views.run)
    app.task(BrokerWatch.of(settings.kafka_bootstrap, waits).run)

    def active_partitions() -> set[int]:
        name = clicks.get_topic_name()
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == name}

    @table.on_recover
    async def rebuild_timers() -> None:
        processor.store.recovered()
        processor.rebuild_due(active_partitions())

    forget_on_recover(audiences, catalog_join.store)
    forget_on_recover(seller_table, seller_side.store)

    @app.timer(1.0, name="replay_stalled_partitions")
    async def replay_stalled_partitions() -> None:
        if app.rebalancing or waits:
            return  # a handler waiting for a dependency holds its position on purpose
        await replay_stalled(app, progress, metrics)

    @app.timer(15.0, name="log_consumer_state")
    async def log_consumer_state() -> None:
        consumer: Any = app.consumer  # a GuardedConsumer: NudgeApp's transport makes it
        log.info("consumer: %s", consumer.describe())

    sweep = settled(
        app,
        registry,
        lambda: sweep_inactive(
            processor.store,
            registry.current,
            clock,
            round(settings.state_horizon * 1000),
            active_partitions(),
        ),
    )

    @app.timer(HORIZON_SWEEP_EVERY_S, name="compact_inactive_customers")
    async def compact_inactive_customers() -> None:
        await sweep()

    @app.timer(1.0, name="flush_popularity")
    async def flush_popularity() -> None:
        await processor.flush_popularity()

    @app.task
    async def fire_due_timers() -> None:
        fire = settled(app, registry, lambda: processor.fire(active_partitions()))
        await run_timers(fire, processor.due, clock, retry_s=settings.timer_tick_s)

    worker = Worker(
        app, settings, processor, registry, shared, metrics, redis_client, progress, waits
    )
    from nudge.streams.web import register_views

    register_views(worker, customers_topic=customers, clock=clock)
    from nudge.streams.tracking import register_tracking_views

    register_tracking_views(worker, engagement_topic=engagement, clock=clock)
    return worker
