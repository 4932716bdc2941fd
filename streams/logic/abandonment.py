"""How storefront events open, renew and close abandonment episodes.

Each kind keeps at most one armed timer per trigger per customer. Activity of the
kind re-arms it (a new episode); the cancelling activity drops it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from models.events import ClickEvent, OrderEvent
from models.state import CartLine, CustomerState, Pending, Seen
from models.triggers import TriggerSet
from streams.logic.pending import arm, arm_pending, drop_where, update_payloads

MAX_SEEN = 10
MAX_BOUGHT = 20
VIEW_ITEMS = 3


def _remember(seen: tuple[Seen, ...], item: Seen) -> tuple[Seen, ...]:
    rest = tuple(s for s in seen if s.value != item.value)
    return (item, *rest)[:MAX_SEEN]


def _bought(bought: tuple[Seen, ...], products: Sequence[str], ts: int) -> tuple[Seen, ...]:
    """The latest ``MAX_BOUGHT`` products bought, newest first; a historical order older
    than what is known goes behind it."""
    fresh = {p: Seen(p, ts) for p in products}
    merged = sorted(
        [*fresh.values(), *(s for s in bought if s.value not in fresh)],
        key=lambda s: -s.ts,
    )
    return tuple(merged[:MAX_BOUGHT])


def _ids(triggers: TriggerSet, kind: str) -> frozenset[str]:
    return frozenset(t.id for t in triggers.of_kind(kind))


def _without_products(p: Pending, product_ids: set[str]) -> Pending | None:
    remaining = [pid for pid in p.payload.get("product_ids", ()) if pid not in product_ids]
    if not remaining:
        return None
    if len(remaining) == len(p.payload.get("product_ids", ())):
        return p
    return replace(p, payload={**p.payload, "product_ids": remaining})


def apply_click(
    state: CustomerState, event: ClickEvent, triggers: TriggerSet, base_ms: int
) -> CustomerState:
    kind = event.type
    # Views, categories and searches are the bulk of the traffic: each builds its
    # new lists and timers first and creates one new state at most.
    pending = state.pending
    if kind == "product_view" and event.product_id:
        views = _remember(state.views, Seen(event.product_id, base_ms, event.category_id))
        in_cart = {line.product_id for line in state.cart}
        candidates = [s.value for s in views if s.value not in in_cart][:VIEW_ITEMS]
        if candidates:
            for trigger in triggers.of_kind("abandoned_view"):
                pending = arm_pending(pending, trigger, base_ms, {"product_ids": candidates})
        if views != state.views or pending is not state.pending:
            state = state.evolve(views=views, pending=pending)
    elif kind == "category_view" and event.category_id:
        categories = _remember(state.categories, Seen(event.category_id, base_ms))
        for trigger in triggers.of_kind("abandoned_category"):
            pending = arm_pending(pending, trigger, base_ms, {"category_id": event.category_id})
        if categories != state.categories or pending is not state.pending:
            state = state.evolve(categories=categories, pending=pending)
    elif kind == "search" and event.query:
        searches = _remember(state.searches, Seen(event.query, base_ms))
        if base_ms >= state.last_order_ms:  # else a later order already answered it
            for trigger in triggers.of_kind("abandoned_search"):
                pending = arm_pending(pending, trigger, base_ms, {"query": event.query})
        if searches != state.searches or pending is not state.pending:
            state = state.evolve(searches=searches, pending=pending)
    elif kind in ("cart_add", "cart_remove") and event.product_id:
        state = _apply_cart(state, event, triggers, base_ms)
    return state


def _apply_cart(
    state: CustomerState, event: ClickEvent, triggers: TriggerSet, base_ms: int
) -> CustomerState:
    if base_ms < state.last_order_ms:
        return state  # a late cart event: the later order already settled the cart
    product_id = event.product_id or ""
    quantity = event.quantity if event.quantity and event.quantity > 0 else 1
    lines = {line.product_id: line for line in state.cart}
    old = lines.get(product_id)
    if event.type == "cart_add":
        price = event.price if event.price is not None else (old.price if old else 0.0)
        lines[product_id] = CartLine(product_id, (old.quantity if old else 0) + quantity, price)
    elif old is not None:
        left = old.quantity - quantity if event.quantity else 0
        if left > 0:
            lines[product_id] = CartLine(product_id, left, old.price)
        else:
            del lines[product_id]
    cart = tuple(lines.values())
    if cart == state.cart:
        return state  # removing what is not in the cart is no cart activity
    state = state.evolve(cart=cart)
    cart_ids = _ids(triggers, "abandoned_cart")
    if not cart:
        return drop_where(state, lambda p: p.trigger_id in cart_ids)
    for trigger in triggers.of_kind("abandoned_cart"):
        state = arm(state, trigger, base_ms, {})
    if event.type == "cart_add":
        state = update_payloads(
            state, _ids(triggers, "abandoned_view"), lambda p: _without_products(p, {product_id})
        )
    return state


def apply_order(
    state: CustomerState,
    event: OrderEvent,
    triggers: TriggerSet,
    product_categories: Mapping[str, Sequence[str]],
    base_ms: int,
) -> CustomerState:
    """An order ends the episodes it answers: the cart, the search, viewed or browsed items.

    Only episodes opened before the order are closed; ``product_categories`` maps
    ordered product ids to their categories, from the catalogue. ``base_ms`` is the
    order's time, capped at now.
    """
    if event.type != "order_placed":
        return state
    ts = base_ms
    bought = {item.product_id for item in event.items}
    bought_categories = {c for pid in bought for c in product_categories.get(pid, ())}
    bought_categories.update(
        s.category_id for s in state.views if s.value in bought and s.category_id
    )
    state = state.evolve(
        last_order_ms=max(state.last_order_ms, ts),
        orders=state.orders + 1,
        bought=_bought(state.bought, [item.product_id for item in event.items], ts),
    )
    cart_ids = _ids(triggers, "abandoned_cart")
    if state.cart and not event.historical:
        if any(p.trigger_id in cart_ids and p.episode > ts for p in state.pending):
            # A late order, older than the current cart episode: only what it bought goes.
            cart = tuple(line for line in state.cart if line.product_id not in bought)
        else:
            cart = ()
        if cart != state.cart:
            state = state.evolve(cart=cart)
    # Bought products are answered views: a later view must not offer them again.
    views = tuple(s for s in state.views if not (s.value in bought and s.ts <= ts))
    if views != state.views:
        state = state.evolve(views=views)
    search_ids = _ids(triggers, "abandoned_search")
    category_ids = _ids(triggers, "abandoned_category")

    def answered(p: Pending) -> bool:
        if p.episode > ts:
            return False
        if p.trigger_id in cart_ids or p.trigger_id in search_ids:
            return True
        return p.trigger_id in category_ids and p.payload.get("category_id") in bought_categories

    state = drop_where(state, answered)
    return update_payloads(
        state,
        _ids(triggers, "abandoned_view"),
        lambda p: p if p.episode > ts else _without_products(p, bought),
    )
