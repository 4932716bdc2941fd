"""The product side of the catalogue triggers: a Kafka Streams style join.

1. ``interests``: the customer-keyed clickstream handler picks out views, carts and
   ``product_subscribe`` events and repartitions them by product to
   ``product-interest``.
2. ``on_interests``: the ``product-audience`` table (keyed by product, co-partitioned
   with ``product-interest`` and ``catalog-changes``) folds them in.
3. ``on_changes``: a price drop or a return to stock reads its product's audience and
   fans out one customer-keyed ``CatalogSignal`` per customer to ``catalog-signals``,
   whose customer's worker starts the runs (``Processor.on_signals``).

Each handler follows the processor's contract: ``applied(messages)`` only once every
effect (the table's changelog, signals, dead letters) is acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from nudge.clock import Clock
from nudge.errors import InvalidMessage
from nudge.flows.triggers.catalog import ProductAudience, fan_out, keep_ms, note_interests
from nudge.models.catalog import (
    CHANGE_TYPES,
    CatalogChange,
    CatalogSignal,
    Interest,
    decode_interests,
    encode_interests,
)
from nudge.models.events import ClickEvent
from nudge.streams.dead_letter import DeadLetterSink
from nudge.streams.metrics import StreamMetrics
from nudge.streams.partitions import partition_of
from nudge.streams.table import AudienceStore
from nudge.trigger_registry import TriggerRegistry

log = logging.getLogger(__name__)

#: A view or cart is re-sent to the index at most this often per customer and product:
#: lookbacks count in days, so an hour's precision is plenty, and a shopper paging
#: back and forth through one product costs one record.
INTEREST_EVERY_MS = 3_600_000
_REMEMBERED = 200_000  # (product, customer, kind) pairs whose last send is remembered
_KIND_OF = {"product_view": "viewed", "cart_add": "carted"}

Send = Callable[[bytes, bytes], Awaitable[Awaitable[Any]]]
#: (partition, value): records that carry many keys, so no key picks their partition
SendTo = Callable[[int, bytes], Awaitable[Awaitable[Any]]]


class CatalogJoin:
    def __init__(
        self,
        *,
        store: AudienceStore,
        registry: TriggerRegistry,
        dead_letters: DeadLetterSink,
        send_interest: SendTo,
        send_signal: Send,
        partitions: int,
        clock: Clock,
        metrics: StreamMetrics,
        applied: Callable[[Sequence[Any]], None],
    ) -> None:
        self.store = store
        self.registry = registry
        self.dead_letters = dead_letters
        self.send_interest = send_interest
        self.partitions = partitions
        self.send_signal = send_signal
        self.clock = clock
        self.metrics = metrics
        self.applied = applied
        self._sent: OrderedDict[tuple[str, str, str], int] = OrderedDict()

    # -- 1. repartition --------------------------------------------------------------
    def interests(self, events: Sequence[Any]) -> list[Interest]:
        """The index's news in a batch of clicks: new subscriptions, and views and carts
        not sent within the last ``INTEREST_EVERY_MS``."""
        found: list[Interest] = []
        for event in events:
            if not isinstance(event, ClickEvent) or not event.product_id:
                continue
            if event.type == "product_subscribe":
                if event.topic in CHANGE_TYPES:
                    found.append(
                        Interest(
                            event.product_id, event.customer_id, "subscribed", event.ts, event.topic
                        )
                    )
                continue
            kind = _KIND_OF.get(event.type)
            if kind is None:
                continue
            seen = (event.product_id, event.customer_id, kind)
            last = self._sent.get(seen)
            if last is not None and abs(event.ts - last) < INTEREST_EVERY_MS:
                continue
            self._sent[seen] = event.ts
            self._sent.move_to_end(seen)
            if len(self._sent) > _REMEMBERED:
                self._sent.popitem(last=False)
            found.append(Interest(event.product_id, event.customer_id, kind, event.ts))
        return found

    async def publish(self, interests: Sequence[Interest]) -> None:
        """Send to ``product-interest``, one record per partition (each product's with
        the partition its key hashes to, as ``catalog-changes`` is keyed), and wait for
        the broker's acknowledgement."""
        by_partition: dict[int, list[Interest]] = {}
        for interest in interests:
            partition = partition_of(interest.product_id.encode(), self.partitions)
            by_partition.setdefault(partition, []).append(interest)
        acks = [
            await self.send_interest(partition, encode_interests(group))
            for partition, group in sorted(by_partition.items())
        ]
        await asyncio.gather(*acks)

    def forget(self, interests: Sequence[Interest]) -> None:
        """Interests whose publishing failed: the replayed batch must send them again."""
        for i in interests:
            self._sent.pop((i.product_id, i.customer_id, i.kind), None)

    # -- 2. the index ----------------------------------------------------------------
    async def on_interests(self, messages: Sequence[Any], decode: Any, topic: str) -> None:
        by_product: dict[bytes, tuple[int, list[Interest]]] = {}
        for message in messages:
            try:
                found = decode_interests(message.value)
            except InvalidMessage as exc:
                self.dead_letters.send(message, exc)
                continue
            for interest in found:
                key = interest.product_id.encode()
                by_product.setdefault(key, (message.partition, []))[1].append(interest)
        self.metrics.events.labels(topic).inc(len(messages))
        now = self.clock.now_ms()
        keep = keep_ms(self.registry.current.catalog())
        for key, (partition, interests) in by_product.items():
            audience = self.store.get(key) or ProductAudience(key.decode(), partition)
            if audience.partition != partition:
                audience = ProductAudience(audience.product_id, partition, audience.members)
            self.store.put(key, note_interests(audience, interests, now, keep))
        await self.store.flush()
        await self.dead_letters.flush()
        self.applied(messages)

    # -- 3. the fan-out --------------------------------------------------------------
    async def on_changes(self, messages: Sequence[Any], decode: Any, topic: str) -> None:
        plans = self.registry.current.catalog()
        now = self.clock.now_ms()
        signals: list[CatalogSignal] = []
        for message in messages:
            try:
                change = CatalogChange.from_bytes(message.value)
            except InvalidMessage as exc:
                self.dead_letters.send(message, exc)
                continue
            key = change.product_id.encode()
            audience = self.store.get(key)
            if audience is None or not plans:
                continue
            told, after = fan_out(audience, change, plans, now)
            if after is not audience:
                self.store.put(key, after)
            signals.extend(told)
            if told:
                log.info(
                    "%s of %s: %d customers to tell", change.type, change.product_id, len(told)
                )
        self.metrics.events.labels(topic).inc(len(messages))
        acks = [await self.send_signal(s.customer_id.encode(), s.to_bytes()) for s in signals]
        await asyncio.gather(*acks)
        self.metrics.catalog_signals.inc(len(signals))
        await self.store.flush()
        await self.dead_letters.flush()
        self.applied(messages)
