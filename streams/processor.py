"""What the agents do with a batch of records: decode, call the pure core, write, send.

Kept free of Faust's agent machinery so the same code serves agents, timers and
benchmarks. The contract of every ``on_*`` handler: it calls ``applied(messages)``
once every effect of the batch (state changelog, send commands, dead letters, Redis
views) is acknowledged, and only then; the consumer commits nothing past records not
applied, which are fetched again. A dependency that is down (Redis) is waited for,
not skipped: see ``streams.waiting`` and ``streams.views``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from nudge.clock import Clock
from nudge.errors import InvalidMessage
from nudge.flows.engine import apply as apply_starts
from nudge.flows.engine import fire as fire_runs
from nudge.flows.engine import started_marks
from nudge.flows.plan import FlowPlan
from nudge.flows.replenishment import Repurchase
from nudge.flows.step_context import Note
from nudge.flows.triggers import start_for_existing
from nudge.models.catalog import CatalogSignal
from nudge.models.commands import DeliveryEvent, SendCommand
from nudge.models.events import ClickEvent, CustomerEvent, OrderEvent
from nudge.models.state import CustomerState
from nudge.shared_state import SharedState
from nudge.streams.catalog_join import CatalogJoin
from nudge.streams.dead_letter import DeadLetterSink
from nudge.streams.logic import apply_event, apply_signal
from nudge.streams.logic.profile import resubscription_ignored
from nudge.streams.metrics import StreamMetrics
from nudge.streams.repurchase import RepurchaseStats
from nudge.streams.scheduler import DueIndex
from nudge.streams.seller_side import SellerSide
from nudge.streams.shop_signals import ShopSignals
from nudge.streams.table import StateStore
from nudge.streams.views import CustomerViews
from nudge.streams.waiting import until_available
from nudge.trigger_registry import TriggerRegistry
from nudge.waits import Waits

log = logging.getLogger(__name__)

Decoder = Callable[[bytes | None, Any, int], Any]
Event = ClickEvent | OrderEvent | CustomerEvent | CatalogSignal


class Processor:
    def __init__(
        self,
        *,
        store: StateStore,
        registry: TriggerRegistry,
        shared: SharedState,
        dead_letters: DeadLetterSink,
        send_command: Callable[[SendCommand], Any],
        clock: Clock,
        metrics: StreamMetrics,
        max_payload_bytes: int,
        waits: Waits | None = None,
        applied: Callable[[Sequence[Any]], None] = lambda messages: None,
        send_event: Callable[[DeliveryEvent], Any] | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.shared = shared
        self.dead_letters = dead_letters
        self.send_command = send_command
        self.clock = clock
        self.metrics = metrics
        self.max_payload_bytes = max_payload_bytes
        self.waits = waits if waits is not None else Waits()
        self.applied = applied
        self.send_event = send_event
        self.repurchases = RepurchaseStats(shared)
        #: flows whose trigger condition failed on an event of the batch being applied
        self._notes: list[Note] = []
        self._warned: set[tuple[str, str]] = set()
        self.views = CustomerViews(shared, store.get, self.waits, applied)
        self.due = DueIndex()
        self.signals = ShopSignals(shared)
        #: the product side of the catalogue triggers, when the app wires one
        self.catalog: CatalogJoin | None = None
        #: the seller side of a marketplace, when the app wires one
        self.sellers: SellerSide | None = None
        #: ``include_existing`` flows applied since the last timer pass
        self._to_arm: dict[str, FlowPlan] = {}

    def decode_batch(
        self, messages: Sequence[Any], decode: Decoder, topic: str
    ) -> list[tuple[Any, Event]]:
        """Decode each record; unusable ones go to dead-letter and the rest go on."""
        good: list[tuple[Any, Event]] = []
        for message in messages:
            try:
                decoded = decode(message.value, message.headers, self.max_payload_bytes)
                # A decoder that can refuse single fields answers (event, rejections):
                # the record is applied without them, each recorded as a dead letter.
                event, rejected = decoded if isinstance(decoded, tuple) else (decoded, ())
                key = message.key
                if key is not None and key.decode("utf-8", "replace") != event.customer_id:
                    raise InvalidMessage(
                        "key_mismatch",
                        f"record key {key!r} is not customer id {event.customer_id!r}",
                    )
            except InvalidMessage as exc:
                self.dead_letters.send(message, exc)
                continue
            for rejection in rejected:
                self.dead_letters.send(message, rejection.error())
            good.append((message, event))
        self.metrics.events.labels(topic).inc(len(messages))
        return good

    def fold(
        self,
        decoded: Sequence[tuple[Any, Event]],
        categories: dict[str, list[str]] | None = None,
        repurchase: Mapping[str, Repurchase] | None = None,
    ) -> dict[bytes, CustomerState]:
        """Apply events in order; write each touched customer once per batch."""
        triggers = self.registry.current
        now = self.clock.now_ms()
        touched: dict[bytes, CustomerState] = {}
        originals: dict[bytes, CustomerState | None] = {}
        for message, event in decoded:
            key = event.customer_id.encode()
            state = touched.get(key)
            if state is None:
                state = self.store.get(key)
                originals[key] = state
                if state is None:
                    state = CustomerState(event.customer_id, message.partition)
            if state.partition != message.partition:
                state = replace(state, partition=message.partition)
            if isinstance(event, CatalogSignal):
                new = apply_signal(state, event, triggers, now)
            else:
                new = apply_event(
                    state, event, triggers, now, categories or {}, repurchase or {}, self._notes
                )
            if repurchase is not None and isinstance(event, OrderEvent) and not event.historical:
                self.repurchases.saw(state, event, min(event.ts, now))
            if isinstance(event, CustomerEvent) and resubscription_ignored(state, new, event):
                self.metrics.resubscriptions_ignored.inc()
                log.info(
                    "customer %s: an upsert without newer consent evidence did not undo "
                    "their opt-out (record %s)",
                    event.customer_id,
                    event.event_id,
                )
            touched[key] = new
        changed = {k: s for k, s in touched.items() if s is not originals.get(k)}
        for key, state in changed.items():
            self.store.put(key, state)
            self.due.push(key, state.next_due_ms())
        return changed

    async def _durable(self) -> None:
        """Ship the batch's state changes and dead letters; return once acknowledged.
        Then what the batch's trigger conditions failed on is recorded."""
        await self.store.flush()
        await self.dead_letters.flush()
        notes, self._notes = self._notes, []
        await self.record(notes)

    async def _redis(self, call: Callable[[], Any]) -> Any:
        return await until_available(call, what="redis", waits=self.waits)

    async def on_clicks(self, messages: Sequence[Any], decode: Decoder, topic: str) -> None:
        decoded = self.decode_batch(messages, decode, topic)
        self.fold(decoded)
        catalog = self.catalog
        interests = catalog.interests([e for _, e in decoded]) if catalog else []
        try:
            if catalog and interests:
                await catalog.publish(interests)
            await self._durable()
        except BaseException:
            if catalog and interests:
                catalog.forget(interests)  # the replayed batch sends them again
            raise
        self.applied(messages)
        for _, event in decoded:
            self.signals.saw(event.type, getattr(event, "product_id", None))

    async def on_orders(self, messages: Sequence[Any], decode: Decoder, topic: str) -> None:
        decoded = self.decode_batch(messages, decode, topic)
        wanted = self._products_needing_categories(decoded)
        refills = self.repurchases.products(decoded) if self.registry.current.per_item else set()
        categories: dict[str, list[str]] = {}
        repurchase: dict[str, Repurchase] | None = None
        if wanted or refills:
            products = await self._redis(lambda: self.shared.get_products(wanted | refills))
            categories = {pid: list(p.get("category_ids", ())) for pid, p in products.items()}
            if refills:
                repurchase = await self._redis(lambda: self.repurchases.facts(refills, products))
        self.fold(decoded, categories, repurchase)
        if self.sellers is not None:
            await self.sellers.publish(self.sellers.sales([e for _, e in decoded]))
        await self._durable()
        self.applied(messages)
        for _, event in decoded:
            if isinstance(event, OrderEvent) and event.type == "order_placed":
                state = self.store.get(event.customer_id.encode())
                self.signals.ordered(state.searches if state else (), event)

    async def on_customers(self, messages: Sequence[Any], decode: Decoder, topic: str) -> None:
        decoded = self.decode_batch(messages, decode, topic)
        self.fold(decoded)
        await self._durable()
        # The batch counts as applied once the delivery side's copy is written too:
        # of every customer in it, changed or not. A record replayed after a crash
        # changes nothing in the state it already reached, but the copy may not have.
        self.views.add((event.customer_id.encode() for _, event in decoded), messages)

    async def on_signals(self, messages: Sequence[Any], decode: Decoder, topic: str) -> None:
        """A price drop or a return to stock, for customers of this worker (the fan-out
        of ``CatalogJoin.on_changes``)."""
        self.fold(self.decode_batch(messages, decode, topic))
        await self._durable()
        self.applied(messages)

    async def on_catalog(self, messages: Sequence[Any], decode: Decoder, topic: str) -> None:
        products = []
        for message in messages:
            try:
                product = decode(message.value, message.headers, self.max_payload_bytes)
            except InvalidMessage as exc:
                self.dead_letters.send(message, exc)
                continue
            products.append(product.asdict())
        self.metrics.events.labels(topic).inc(len(messages))
        await self.dead_letters.flush()
        if products:
            await self._redis(lambda: self.shared.put_products(products))
        self.applied(messages)

    async def flush_popularity(self) -> None:
        """Write the shop signals and repurchase intervals counted since the last call."""
        await self.signals.flush()
        await self.repurchases.flush()

    def _products_needing_categories(self, decoded: Sequence[tuple[Any, Event]]) -> set[str]:
        """The products of the batch's orders, when a category flow is on: an order
        ends a browsed category's run, and one applied before the view it answers (the
        topics are read independently) must still know what it bought from."""
        if not self.registry.current.abandonment("category"):
            return set()
        return {
            item.product_id
            for _, event in decoded
            if isinstance(event, OrderEvent) and event.type == "order_placed"
            for item in event.items
        }

    async def record(self, notes: Sequence[Note]) -> None:
        """Runs that ended without their message, on ``delivery-events`` beside what
        was sent, so results (an A/B control group above all) can be compared."""
        for note in notes:
            self.metrics.runs_ended.labels(note.flow_id, note.reason).inc()
            if note.detail and (note.flow_id, note.reason) not in self._warned:
                # Once per flow and reason: a condition failing on every event would
                # otherwise flood the log; the metric and delivery-events count them all.
                self._warned.add((note.flow_id, note.reason))
                log.warning(
                    "flow %s, customer %s: %s (further ones counted, not logged)",
                    note.flow_id,
                    note.customer_id,
                    note.detail,
                )
            if self.send_event is not None:
                await self.send_event(
                    DeliveryEvent(
                        command_id=f"{note.flow_id}:{note.customer_id}:{note.episode}:run",
                        status="suppressed",
                        reason=note.reason,
                        customer_id=note.customer_id,
                        trigger_id=note.flow_id,
                        channel="email",
                        ts=self.clock.now_ms(),
                        detail=note.detail,
                        variant=note.variant,
                    )
                )

    # -- include_existing ----------------------------------------------------
    def plan_applied(self, plan: FlowPlan) -> None:
        """A time-based flow that also reaches customers without activity since: armed
        for every customer this worker holds at its next timer pass."""
        if plan.enabled and plan.flow.include_existing:
            self._to_arm[plan.id] = plan

    async def arm_existing(self, active_partitions: set[int]) -> int:
        """Arm the flows applied since the last pass for the customers of these
        partitions, once each (a flow mark remembers it across restarts). Returns how
        many customers were armed."""
        plans, self._to_arm = list(self._to_arm.values()), {}
        flows, now = self.registry.current, self.clock.now_ms()
        armed = 0
        for key, state in list(self.store.items()):
            if state.partition not in active_partitions:
                continue
            new = state
            for plan in plans:
                start = start_for_existing(plan, new, now)
                if start is not None:
                    new = apply_starts(new, "flow_enabled", {}, [start], flows, now, now)
                    new = new.evolve(flow_marks=started_marks(new, plan.id, now))
            if new is not state:
                self.store.put(key, new)
                self.due.push(key, new.next_due_ms())
                armed += 1
        await self.store.flush()
        if plans:
            log.info("armed %d customers for %s", armed, ", ".join(p.id for p in plans))
        return armed

    # -- timers --------------------------------------------------------------
    def rebuild_due(self, active_partitions: set[int]) -> None:
        self.due.rebuild(
            (key, state.next_due_ms())
            for key, state in self.store.items()
            if state.partition in active_partitions
        )
        self.metrics.pending_timers.set(len(self.due))

    async def fire(self, active_partitions: set[int]) -> int:
        """Send every due timer of the partitions this worker owns. Returns commands sent.

        Commands go out and are acknowledged *before* the table forgets the timer: a
        crash in between replays the timer, and its stable command id makes the
        replay harmless downstream.
        """
        if self._to_arm:
            await self.arm_existing(active_partitions)
        now = self.clock.now_ms()
        sent = 0
        for key in self.due.pop_due(now):
            sent_ids: set[str] = set()
            while True:
                state = self.store.get(key)
                if state is None or state.partition not in active_partitions:
                    break
                fired = fire_runs(state, self.registry.current, self.clock.now_ms())
                new, commands = fired.state, fired.commands
                unsent = [c for c in commands if c.id not in sent_ids]
                if not unsent:
                    # The pass that writes the state is the one whose notes count.
                    await self.record(fired.notes)
                    if new is not state:
                        self.store.put(key, new)
                    self.due.push(key, new.next_due_ms())
                    break
                for command in unsent:
                    await self.send_command(command)
                    sent_ids.add(command.id)
                    self.metrics.commands.labels(command.kind, str(command.step)).inc()
                    self.metrics.timer_lag.observe(
                        max(0, self.clock.now_ms() - command.due_ms) / 1000
                    )
                    sent += 1
        await self.store.flush()
        self.metrics.pending_timers.set(len(self.due))
        return sent
