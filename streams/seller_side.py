"""The seller side of a marketplace: a seller-keyed table fed by two topics.

* ``sellers`` (input): a seller's contact, upserted.
* ``seller-messages`` (internal): the customer-keyed side repartitions to it, by
  seller, each placed order's share of every seller (``sales``, counted for the
  ``seller_sales`` milestones) and each message of a buyer's flow to a seller
  (``send.to: seller``), which this side addresses from the seller's contact.

Handlers follow the processor's contract: ``applied(messages)`` only once the table's
changelog, the send commands and dead letters are acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from nudge.clock import Clock
from nudge.codec import decode_seller
from nudge.errors import InvalidMessage
from nudge.flows.step_context import Note
from nudge.flows.triggers.seller import shares
from nudge.models.commands import SendCommand
from nudge.models.events import OrderEvent, event_data
from nudge.models.sellers import SellerProfile, SellerRecord, SellerSale, SellerState
from nudge.streams.dead_letter import DeadLetterSink
from nudge.streams.logic.seller import Outcome, apply_message, apply_profile, apply_sale
from nudge.streams.metrics import StreamMetrics
from nudge.streams.table import SellerStore
from nudge.trigger_registry import TriggerRegistry

log = logging.getLogger(__name__)

Send = Callable[[bytes, bytes], Awaitable[Awaitable[Any]]]


class SellerSide:
    def __init__(
        self,
        *,
        store: SellerStore,
        registry: TriggerRegistry,
        dead_letters: DeadLetterSink,
        send_record: Send,
        send_command: Callable[[SendCommand], Awaitable[None]],
        record_notes: Callable[[Sequence[Note]], Awaitable[None]],
        clock: Clock,
        metrics: StreamMetrics,
        applied: Callable[[Sequence[Any]], None],
    ) -> None:
        self.store = store
        self.registry = registry
        self.dead_letters = dead_letters
        self.send_record = send_record
        self.send_command = send_command
        self.record_notes = record_notes
        self.clock = clock
        self.metrics = metrics
        self.applied = applied

    # -- the customer-keyed side's part ---------------------------------------------
    @staticmethod
    def sales(events: Sequence[Any]) -> list[SellerRecord]:
        """Each placed order's share of every seller it names."""
        records = []
        for event in events:
            if not isinstance(event, OrderEvent) or event.type != "order_placed":
                continue
            if event.seller_id is None and all(i.seller_id is None for i in event.items):
                continue  # not a marketplace order: spare the copy below
            for seller_id, items in shares(event_data(event)).items():
                sale = SellerSale(
                    seller_id=seller_id,
                    order_id=event.order_id,
                    customer_id=event.customer_id,
                    ts=event.ts,
                    items=tuple(items),
                    currency=event.currency,
                    historical=event.historical,
                )
                records.append(SellerRecord(sale=sale))
        return records

    async def publish(self, records: Sequence[SellerRecord]) -> None:
        """Repartition to ``seller-messages``; return once the broker has them all."""
        acks = [await self.send_record(r.seller_id.encode(), r.to_bytes()) for r in records]
        await asyncio.gather(*acks)

    # -- the seller-keyed handlers ---------------------------------------------------
    async def on_sellers(self, messages: Sequence[Any], decode: Any, topic: str) -> None:
        await self._apply(messages, topic, decode_seller)

    async def on_seller_messages(self, messages: Sequence[Any], decode: Any, topic: str) -> None:
        await self._apply(messages, topic, SellerRecord.from_bytes)

    async def _apply(self, messages: Sequence[Any], topic: str, decode: Callable[..., Any]) -> None:
        flows = self.registry.current
        now = self.clock.now_ms()
        commands: list[SendCommand] = []
        notes: list[Note] = []
        touched: dict[bytes, SellerState] = {}
        for message in messages:
            try:
                record = decode(message.value)
                key = record.seller_id.encode()
                if message.key is not None and message.key != key:
                    raise InvalidMessage(
                        "key_mismatch", f"record key {message.key!r} is not seller id {key!r}"
                    )
            except InvalidMessage as exc:
                self.dead_letters.send(message, exc)
                continue
            state = touched.get(key) or self.store.get(key)
            if state is None:
                state = SellerState(record.seller_id, message.partition)
            outcome: Outcome
            if isinstance(record, SellerProfile):
                outcome = apply_profile(state, record, now)
            elif record.sale is not None:
                outcome = apply_sale(state, record.sale, flows, now)
            else:
                assert record.message is not None
                outcome = apply_message(state, record.message, now)
            new, sent, noted = outcome
            if new is not state:
                touched[key] = new
            commands.extend(sent)
            notes.extend(noted)
        self.metrics.events.labels(topic).inc(len(messages))
        for command in commands:
            await self.send_command(command)
            self.metrics.commands.labels(command.kind, str(command.step)).inc()
        for key, state in touched.items():
            self.store.put(key, state)
        await self.store.flush()
        await self.dead_letters.flush()
        await self.record_notes(notes)
        self.applied(messages)
