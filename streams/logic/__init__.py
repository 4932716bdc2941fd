"""The pure core: ``(state, event, now) -> (new state, outputs)``, no I/O, no clock.

Agents decode an event, call ``apply_event``, reassign the table value and send;
the timer task calls ``fire_due``. Both return the *same* state object when
nothing changed, so callers skip the changelog write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from models.events import ClickEvent, CustomerEvent, OrderEvent
from models.state import CustomerState
from models.triggers import TriggerSet
from streams.logic.abandonment import apply_click, apply_order
from streams.logic.profile import apply_customer
from streams.logic.timers import (
    STALE_AFTER_MS,
    build_command,
    command_id,
    fire_due,
    release_for_address,
)

Event = ClickEvent | OrderEvent | CustomerEvent
NO_CATEGORIES: Mapping[str, Sequence[str]] = {}
RECENT_EVENTS = 16
_NOT_IDEMPOTENT = frozenset({"cart_add", "cart_remove"})


def apply_event(
    state: CustomerState,
    event: Event,
    triggers: TriggerSet,
    now_ms: int,
    product_categories: Mapping[str, Sequence[str]] = NO_CATEGORIES,
) -> CustomerState:
    """Fold one storefront event into the customer's state, (re)arming or cancelling timers.

    Timers count from the event's own time, but never from the future: a storefront
    clock running ahead must not postpone a message.
    """
    if isinstance(event, CustomerEvent):
        return release_for_address(apply_customer(state, event), now_ms)
    base_ms = min(event.ts, now_ms)
    remembered = isinstance(event, OrderEvent) or event.type in _NOT_IDEMPOTENT
    if remembered and event.event_id in state.recent_events:
        return state
    if isinstance(event, ClickEvent):
        new = apply_click(state, event, triggers, base_ms)
    else:
        new = apply_order(state, event, triggers, product_categories, base_ms)
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


__all__ = [
    "STALE_AFTER_MS",
    "Event",
    "apply_event",
    "build_command",
    "command_id",
    "fire_due",
]
