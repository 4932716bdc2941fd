"""``{abandoned: cart | view | category | search}``: the shopper stopped short.

Activity of the kind opens an episode and restarts it; what answers it (an order, an
emptied cart) ends it. The shorthand definitions (``kind: abandoned_cart``) expand to
flows with this trigger (``flows.shorthand``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from nudge.flows.customer_context import base_context
from nudge.flows.fields import Strict
from nudge.flows.starts import Start
from nudge.models.events import ClickEvent, OrderEvent
from nudge.models.message import MessageContext
from nudge.models.state import CustomerState, Run, bought_since

if TYPE_CHECKING:
    from nudge.flows.plan import FlowPlan, FlowSet

AbandonmentKind = Literal["cart", "view", "category", "search"]


class AbandonmentTrigger(Strict):
    abandoned: AbandonmentKind


#: Products a view-abandonment message is about, at most.
VIEW_ITEMS = 3


def on_click(
    flows: FlowSet, before: CustomerState, state: CustomerState, event: ClickEvent, base_ms: int
) -> tuple[CustomerState, list[Start]]:
    """Activity of a kind (re)starts its runs; emptying the cart ends the cart's;
    carting a viewed product takes it out of the view runs."""
    kind = event.type
    if kind == "product_view" and event.product_id:
        if bought_since(state.bought, event.product_id, base_ms):
            return state, []  # a view answered by an order applied before it
        in_cart = {line.product_id for line in state.cart}
        candidates = [s.value for s in state.views if s.value not in in_cart][:VIEW_ITEMS]
        if candidates:
            return state, _starts(flows, "view", base_ms, {"product_ids": candidates})
    elif kind == "category_view" and event.category_id:
        # Clicks and orders come on separate topics: an order applied first answers it.
        if not bought_since(state.bought_categories, event.category_id, base_ms):
            return state, _starts(flows, "category", base_ms, {"category_id": event.category_id})
    elif kind == "search" and event.query:
        if base_ms >= state.last_order_ms:  # else a later order already answered it
            return state, _starts(flows, "search", base_ms, {"query": event.query})
    elif kind in ("cart_add", "cart_remove") and state.cart != before.cart:
        if not state.cart:
            return _drop(state, _ids(flows, "cart"), lambda run: True), []
        if kind == "cart_add" and event.product_id:
            state = _update(state, _ids(flows, "view"), _without({event.product_id}))
        return state, _starts(flows, "cart", base_ms, {})
    return state, []


def on_order(
    flows: FlowSet,
    state: CustomerState,
    event: OrderEvent,
    bought_categories: Collection[str],
    base_ms: int,
) -> CustomerState:
    """An order ends the runs it answers, opened before it: the cart, the search, a
    browsed category it bought from; viewed products it bought leave the view runs."""
    if event.type != "order_placed":
        return state
    ts = base_ms
    bought = {item.product_id for item in event.items}
    cart, search, category = _ids(flows, "cart"), _ids(flows, "search"), _ids(flows, "category")

    def answered(run: Run) -> bool:
        if run.episode > ts:
            return False
        if run.flow_id in cart or run.flow_id in search:
            return True
        return run.flow_id in category and run.payload.get("category_id") in bought_categories

    state = _drop(state, cart | search | category, answered)
    without = _without(bought)
    return _update(state, _ids(flows, "view"), lambda r: r if r.episode > ts else without(r))


def cart_episode(flows: FlowSet, state: CustomerState) -> int:
    """When the open cart episode started (0: none), for an order applied late."""
    cart = _ids(flows, "cart")
    return max((r.episode for r in state.runs if r.flow_id in cart), default=0)


def message_context(plan: FlowPlan, state: CustomerState, run: Run) -> MessageContext | None:
    """What the message is about; None when nothing is left to send about."""
    trigger = plan.flow.trigger
    assert isinstance(trigger, AbandonmentTrigger)
    context = base_context(state)
    kind = trigger.abandoned
    if kind == "cart":
        if not state.cart:
            return None
        items = tuple(
            {"product_id": line.product_id, "quantity": line.quantity, "price": line.price}
            for line in state.cart
        )
        return replace(context, items=items)
    if kind == "view":
        viewed = tuple(
            {"product_id": pid, "quantity": 1} for pid in run.payload.get("product_ids", ())
        )
        return replace(context, items=viewed) if viewed else None
    if kind == "category":
        return replace(context, category={"category_id": run.payload.get("category_id")})
    return replace(context, search_query=run.payload.get("query", ""))


def _ids(flows: FlowSet, kind: str) -> frozenset[str]:
    return frozenset(plan.id for plan in flows.abandonment(kind))


def _starts(flows: FlowSet, kind: str, base_ms: int, payload: dict[str, Any]) -> list[Start]:
    return [Start(plan, base_ms, payload) for plan in flows.abandonment(kind)]


def _without(products: set[str]) -> Callable[[Run], Run | None]:
    def change(run: Run) -> Run | None:
        ids = run.payload.get("product_ids", ())
        remaining = [pid for pid in ids if pid not in products]
        if not remaining:
            return None
        if len(remaining) == len(ids):
            return run
        return replace(run, payload={**run.payload, "product_ids": remaining})

    return change


def _drop(
    state: CustomerState, flow_ids: frozenset[str], doomed: Callable[[Run], bool]
) -> CustomerState:
    kept = tuple(r for r in state.runs if not (r.flow_id in flow_ids and doomed(r)))
    return state if len(kept) == len(state.runs) else state.evolve(runs=kept)


def _update(
    state: CustomerState, flow_ids: frozenset[str], change: Callable[[Run], Run | None]
) -> CustomerState:
    """Rewrite (or end, when ``change`` returns None) the runs of some flows."""
    result: list[Run] = []
    changed = False
    for run in state.runs:
        if run.flow_id in flow_ids:
            new = change(run)
            changed = changed or new is not run
            if new is not None:
                result.append(new)
        else:
            result.append(run)
    return state.evolve(runs=tuple(result)) if changed else state
