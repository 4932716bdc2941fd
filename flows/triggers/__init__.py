"""The trigger types of a flow, registered in one place.

A trigger is written as a one-key mapping: ``{event: order_placed}``,
``{date: {...}}``, ``{inactivity: {...}}``, ``{price_drop: {...}}``,
``{back_in_stock: {...}}``, ``{abandoned: cart}``, ``{seller_sales: {...}}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import BaseModel, Discriminator, Tag

from nudge.flows.starts import Start
from nudge.flows.triggers import abandonment, catalog, date, event, inactivity
from nudge.flows.triggers.abandonment import AbandonmentTrigger
from nudge.flows.triggers.catalog import BackInStockTrigger, PriceDropTrigger
from nudge.flows.triggers.date import DateTrigger
from nudge.flows.triggers.event import EventTrigger
from nudge.flows.triggers.inactivity import InactivityTrigger
from nudge.flows.triggers.seller import SellerSalesTrigger
from nudge.models.message import MessageContext
from nudge.models.state import CustomerState, Run

TRIGGER_TYPES: dict[str, type[BaseModel]] = {
    "event": EventTrigger,
    "date": DateTrigger,
    "inactivity": InactivityTrigger,
    "price_drop": PriceDropTrigger,
    "back_in_stock": BackInStockTrigger,
    "abandoned": AbandonmentTrigger,
    "seller_sales": SellerSalesTrigger,
}
_TAG_OF = {model: tag for tag, model in TRIGGER_TYPES.items()}


def trigger_type(value: Any) -> str | None:
    """The trigger type: ``event`` when the mapping has an ``event`` key, else its one key."""
    if isinstance(value, dict):
        if "event" in value:
            return "event"
        return next(iter(value)) if len(value) == 1 else None
    return _TAG_OF.get(type(value))


if TYPE_CHECKING:
    from nudge.flows.plan import FlowPlan

    Trigger = (
        EventTrigger
        | DateTrigger
        | InactivityTrigger
        | PriceDropTrigger
        | BackInStockTrigger
        | AbandonmentTrigger
        | SellerSalesTrigger
    )
else:
    Trigger = Annotated[
        Union[tuple(Annotated[model, Tag(tag)] for tag, model in TRIGGER_TYPES.items())],  # noqa: UP007
        Discriminator(
            trigger_type,
            custom_error_type="trigger_type",
            custom_error_message=(
                "a trigger is {event: NAME, ...} or one of "
                + ", ".join(t for t in TRIGGER_TYPES if t != "event")
                + ", written as {type: ...}"
            ),
        ),
    ]


def message_context(plan: FlowPlan, state: CustomerState, run: Run) -> MessageContext | None:
    """What a message of ``plan`` is about, by its trigger type; None: nothing to send."""
    if isinstance(plan.flow.trigger, AbandonmentTrigger):
        return abandonment.message_context(plan, state, run)
    if isinstance(plan.flow.trigger, PriceDropTrigger | BackInStockTrigger):
        return catalog.message_context(state, run)
    return event.message_context(plan, state, run)


def start_for_existing(plan: FlowPlan, state: CustomerState, now_ms: int) -> Start | None:
    """``include_existing``: the run a time-based flow starts for a customer the worker
    already holds, as if armed by their past activity; None if none (no such trigger,
    no date). A customer the flow already started for (a mark) or runs for is skipped."""
    if state.mark_of(plan.id) is not None or any(r.flow_id == plan.id for r in state.runs):
        return None
    if isinstance(plan.flow.trigger, InactivityTrigger):
        return inactivity.start_for_existing(plan, state, now_ms)
    if isinstance(plan.flow.trigger, DateTrigger):
        return date.start_for_existing(plan, state, now_ms)
    return None


__all__ = ["TRIGGER_TYPES", "Trigger", "message_context", "start_for_existing", "trigger_type"]
