"""``{event: NAME}``: a run starts on a storefront event, or when a customer is created.

``key`` makes a run per key (``"{{ event.order_id }}"``: one per order) instead of one
per customer. ``per_item`` (orders only) makes a run per ordered product:
replenishment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateError
from jinja2.sandbox import SecurityError
from pydantic import model_validator

from nudge.flows.conditions import ConditionFailed, holds, variables
from nudge.flows.customer_context import base_context
from nudge.flows.fields import Condition, EventName, Strict, Template
from nudge.flows.starts import Start
from nudge.models.message import MessageContext
from nudge.models.state import CustomerState, Run
from nudge.templating import make_environment

if TYPE_CHECKING:
    from nudge.flows.plan import FlowPlan, FlowSet


class EventTrigger(Strict):
    event: EventName
    where: Condition | None = None
    key: Template | None = None
    per_item: bool = False

    @model_validator(mode="after")
    def _per_item_orders_only(self) -> EventTrigger:
        if self.per_item and self.event != "order_placed":
            raise ValueError("'per_item' applies to the order_placed event")
        if self.per_item and self.key is not None:
            raise ValueError("'per_item' already keys a run by order and product; drop 'key'")
        return self


def starts_for(
    flows: FlowSet,
    state: CustomerState,
    event_type: str,
    event: dict[str, Any],
    base_ms: int,
    per_item: Sequence[tuple[str, dict[str, Any]]] = (),
) -> tuple[list[Start], list[tuple[str, str]]]:
    """The runs an event starts, and the problems of flows whose ``where`` or ``key``
    failed on it, as (flow id, error): those flows start nothing. ``per_item``: for an
    order, a (key, payload) per product, for the flows with ``per_item: true``."""
    starts: list[Start] = []
    problems: list[tuple[str, str]] = []
    for plan in flows.on_event(event_type):
        trigger = plan.flow.trigger
        assert isinstance(trigger, EventTrigger)
        found = variables(state, None, event)
        try:
            if trigger.where is not None and not holds(trigger.where, found):
                continue
            key = _render_key(trigger.key, found) if trigger.key is not None else ""
        except ConditionFailed as exc:
            problems.append((plan.id, str(exc)))
            continue
        if trigger.per_item:
            starts.extend(Start(plan, base_ms, payload, item_key) for item_key, payload in per_item)
        else:
            starts.append(Start(plan, base_ms, {"event": event}, key))
    return starts, problems


def message_context(plan: FlowPlan, state: CustomerState, run: Run) -> MessageContext | None:
    event: dict[str, Any] = run.payload.get("event") or {}
    items: tuple[dict[str, Any], ...] = ()
    if run.payload.get("item"):  # a run per ordered product (replenishment)
        items = (dict(run.payload["item"]),)
    elif event.get("items"):
        items = tuple(
            {
                "product_id": item.get("product_id"),
                "quantity": item.get("quantity") or 1,
                "price": item.get("price"),
            }
            for item in event["items"]
            if isinstance(item, dict) and item.get("product_id")
        )
    elif event.get("product_id"):
        items = ({"product_id": event["product_id"], "quantity": 1},)
    return replace(
        base_context(state),
        items=items,
        category={"category_id": event["category_id"]} if event.get("category_id") else None,
        search_query=event.get("query") or None,
        order=event if event.get("order_id") else None,
        event=event,
    )


def _render_key(template: str, found: dict[str, Any]) -> str:
    try:
        return _compiled_key(template).render(**found).strip()
    except (TemplateError, SecurityError, TypeError, ValueError) as exc:
        raise ConditionFailed(template, exc) from exc


@lru_cache(maxsize=512)
def _compiled_key(template: str) -> Any:
    return make_environment().from_string(template)
