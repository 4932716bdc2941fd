"""The pure core: ``(state, event, now) -> new state``, and ``fire`` for due runs.

Agents decode an event, call ``apply_event``, reassign the table value; the timer
task calls ``fire_due``. Both return the *same* state object when nothing changed, so
callers skip the changelog write. An event is first folded into what the customer did
(``facts``, ``profile``), then handed to the flows (``flows.engine``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from nudge.flows import engine
from nudge.flows.plan import FlowSet
from nudge.flows.replenishment import NOTHING_KNOWN, Repurchase, item_payloads
from nudge.flows.starts import Start
from nudge.flows.step_context import Note
from nudge.flows.steps.send import STALE_AFTER_MS, command_id
from nudge.flows.triggers import abandonment, date, inactivity
from nudge.flows.triggers.catalog import starts_for_signal
from nudge.flows.triggers.event import starts_for
from nudge.models.catalog import CatalogSignal
from nudge.models.commands import SendCommand
from nudge.models.events import ClickEvent, CustomerEvent, OrderEvent, event_data
from nudge.models.state import CustomerState
from nudge.streams.logic.facts import categories_of_order, fold_click, fold_order
from nudge.streams.logic.profile import apply_customer

Event = ClickEvent | OrderEvent | CustomerEvent
NO_CATEGORIES: Mapping[str, Sequence[str]] = {}
RECENT_EVENTS = 16
_NOT_IDEMPOTENT = frozenset({"cart_add", "cart_remove"})
CUSTOMER_CREATED = "customer_created"


def apply_event(
    state: CustomerState,
    event: Event,
    flows: FlowSet,
    now_ms: int,
    product_categories: Mapping[str, Sequence[str]] = NO_CATEGORIES,
    repurchase: Mapping[str, Repurchase] = NOTHING_KNOWN,
    notes: list[Note] | None = None,
) -> CustomerState:
    """Fold one storefront event into the customer's state and runs.

    Runs count from the event's own time, but never from the future: a storefront
    clock running ahead must not postpone a message. ``product_categories`` and
    ``repurchase`` are what the catalogue says of an order's products. ``notes``, if
    given, collects the flows a trigger's ``where`` or ``key`` failed to judge.
    """
    base_ms = min(event.ts, now_ms)
    if isinstance(event, CustomerEvent):
        return _apply_customer(state, event, flows, base_ms, now_ms, notes)
    remembered = isinstance(event, OrderEvent) or event.type in _NOT_IDEMPOTENT
    if remembered and event.event_id in state.recent_events:
        return state
    starts: list[Start] = []
    if isinstance(event, ClickEvent):
        new = fold_click(state, event, base_ms)
        new, starts = abandonment.on_click(flows, state, new, event, base_ms)
    else:
        categories = categories_of_order(state, event, product_categories)
        episode = abandonment.cart_episode(flows, state)
        new = fold_order(state, event, base_ms, episode, categories)
        new = abandonment.on_order(flows, new, event, categories, base_ms)
    # The customer's own activity (a click, an order placed) restarts inactivity waits;
    # a shop's status update or an imported order is not the customer coming back.
    if flows.inactivity() and (
        isinstance(event, ClickEvent) or (event.type == "order_placed" and not event.historical)
    ):
        starts = [*starts, *inactivity.starts_on_activity(flows, new, base_ms)]
    if flows.dates() and not getattr(event, "historical", False):
        starts = [*starts, *date.starts_on_activity(flows, new, base_ms, now_ms)]
    triggered = flows.on_event(event.type) and not getattr(event, "historical", False)
    if triggered or (new.runs and event.type in flows.listens):
        # History (an imported order) starts nothing, but may still end runs.
        data = event_data(event)
        found: list[Start] = []
        if triggered:
            per_item = []
            if isinstance(event, OrderEvent) and event.type == "order_placed":
                # Against the state before the order: when each was bought before.
                per_item = item_payloads(state, event, data, base_ms, repurchase)
            found, failed = starts_for(flows, new, event.type, data, base_ms, per_item)
            _note(notes, failed, state.customer_id, base_ms)
        new = engine.apply(
            new, event.type, data, [*starts, *found], flows, base_ms, now_ms,
            owned=new is not state,
        )  # fmt: skip
    elif starts:
        # ``new``, if not ``state``, was made by the folds above: finished in place.
        new = engine.apply(
            new, event.type, {}, starts, flows, base_ms, now_ms, owned=new is not state
        )
    # Only an event that changed something counts as activity: a no-op (order_status,
    # removing what is not in the cart, a redelivery) must return the same object.
    if new is not state:
        # ``new`` was created by this call and nobody else holds it yet, so it is
        # finished in place instead of being copied once more (this runs per event).
        if base_ms > new.last_activity_ms:
            object.__setattr__(new, "last_activity_ms", base_ms)
        if remembered:
            recent = (event.event_id, *new.recent_events)[:RECENT_EVENTS]
            object.__setattr__(new, "recent_events", recent)
    return new


def _apply_customer(
    state: CustomerState,
    event: CustomerEvent,
    flows: FlowSet,
    base_ms: int,
    now_ms: int,
    notes: list[Note] | None,
) -> CustomerState:
    new = apply_customer(state, event)
    happened: list[str] = []
    if state.created_ms == 0:
        # The first record of this customer on ``customers``, whatever its source:
        # the customer is created, unless the record is history (an import of the
        # customers a shop already has), which starts no flow.
        new = new.evolve(created_ms=max(base_ms, 1))  # 0 means "not yet"
        happened.append(CUSTOMER_CREATED)
    before, after = state.profile.consent.get("email"), new.profile.consent.get("email")
    if after != before and after in ("pending", "subscribed"):
        happened.append(f"consent_{after}")
    if not event.historical:
        if flows.dates():  # a profile update may set or change the date
            armed = date.starts_on_activity(flows, new, base_ms, now_ms)
            new = engine.apply(new, "profile", {}, armed, flows, base_ms, now_ms)
        for name in happened:
            if flows.on_event(name) or (new.runs and name in flows.listens):
                data = event_data(event)
                found, failed = starts_for(flows, new, name, data, base_ms)
                _note(notes, failed, state.customer_id, base_ms)
                new = engine.apply(new, name, data, found, flows, base_ms, now_ms)
    return engine.release_waiting(new, now_ms)


def apply_signal(
    state: CustomerState, signal: CatalogSignal, flows: FlowSet, now_ms: int
) -> CustomerState:
    """A product's price drop or return to stock, for a customer in its audience: the
    runs of the flows the signal names. A replayed signal starts nothing twice."""
    if signal.event_id in state.recent_events:
        return state
    base_ms = min(signal.ts, now_ms)
    starts = starts_for_signal(flows, signal, base_ms)
    if not starts:
        return state
    data = starts[0].payload["event"]
    new = engine.apply(state, signal.type, data, starts, flows, base_ms, now_ms)
    if new is not state:
        new = new.evolve(recent_events=(signal.event_id, *new.recent_events)[:RECENT_EVENTS])
    return new


def _note(
    notes: list[Note] | None, failed: list[tuple[str, str]], customer_id: str, at_ms: int
) -> None:
    if notes is not None:
        notes.extend(
            Note(flow, customer_id, at_ms, "condition_failed", detail=why) for flow, why in failed
        )


def fire_due(
    state: CustomerState, flows: FlowSet, now_ms: int
) -> tuple[CustomerState, list[SendCommand]]:
    """Run what is due at ``now_ms``; returns the same state object if nothing was due."""
    fired = engine.fire(state, flows, now_ms)
    return fired.state, fired.commands


__all__ = [
    "STALE_AFTER_MS",
    "Event",
    "apply_event",
    "apply_signal",
    "command_id",
    "fire_due",
]
