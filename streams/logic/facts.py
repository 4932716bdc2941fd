"""What the customer did, folded into their state: the cart, what they viewed,
browsed, searched and bought. Flows decide what to do about it (``flows``)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from nudge.models.events import ClickEvent, OrderEvent
from nudge.models.state import CartLine, CustomerState, Seen, bought_since

MAX_SEEN = 10
MAX_BOUGHT = 20


def _remember(seen: tuple[Seen, ...], item: Seen) -> tuple[Seen, ...]:
    rest = tuple(s for s in seen if s.value != item.value)
    return (item, *rest)[:MAX_SEEN]


def _bought(bought: tuple[Seen, ...], products: Sequence[str], ts: int) -> tuple[Seen, ...]:
    """The latest ``MAX_BOUGHT`` products (or categories) bought, newest first; a
    historical order older than what is known goes behind it."""
    fresh = {p: Seen(p, ts) for p in products}
    merged = sorted(
        [*fresh.values(), *(s for s in bought if s.value not in fresh)],
        key=lambda s: -s.ts,
    )
    return tuple(merged[:MAX_BOUGHT])


def categories_of_order(
    state: CustomerState, event: OrderEvent, product_categories: Mapping[str, Sequence[str]]
) -> set[str]:
    """The categories an order bought from: the catalogue's, or the views' before it."""
    bought = {item.product_id for item in event.items}
    found = {c for pid in bought for c in product_categories.get(pid, ())}
    found.update(s.category_id for s in state.views if s.value in bought and s.category_id)
    return found


def fold_click(state: CustomerState, event: ClickEvent, base_ms: int) -> CustomerState:
    kind = event.type
    if kind == "product_view" and event.product_id:
        if bought_since(state.bought, event.product_id, base_ms):
            return state  # viewed before an order that bought it, applied after it
        views = _remember(state.views, Seen(event.product_id, base_ms, event.category_id))
        return state if views == state.views else state.evolve(views=views)
    if kind == "category_view" and event.category_id:
        categories = _remember(state.categories, Seen(event.category_id, base_ms))
        return state if categories == state.categories else state.evolve(categories=categories)
    if kind == "search" and event.query:
        searches = _remember(state.searches, Seen(event.query, base_ms))
        return state if searches == state.searches else state.evolve(searches=searches)
    if kind in ("cart_add", "cart_remove") and event.product_id:
        return _fold_cart(state, event, base_ms)
    return state


def _fold_cart(state: CustomerState, event: ClickEvent, base_ms: int) -> CustomerState:
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
    return state if cart == state.cart else state.evolve(cart=cart)


def fold_order(
    state: CustomerState,
    event: OrderEvent,
    base_ms: int,
    cart_episode: int,
    categories: Collection[str] = (),
) -> CustomerState:
    """A placed order: counted, its products and ``categories`` bought, and the cart
    settled by it.

    ``cart_episode`` is when the open cart episode started: an order older than it
    (delivered late) takes only what it bought out of the cart.
    """
    if event.type != "order_placed":
        return state
    ts = base_ms
    bought = {item.product_id for item in event.items}
    state = state.evolve(
        last_order_ms=max(state.last_order_ms, ts),
        first_order_ms=min(state.first_order_ms or ts, ts),
        orders=state.orders + 1,
        total_spent=round(state.total_spent + max(event.total, 0.0), 2),
        bought=_bought(state.bought, [item.product_id for item in event.items], ts),
    )
    if categories:
        state = state.evolve(
            bought_categories=_bought(state.bought_categories, sorted(categories), ts)
        )
    if state.cart and not event.historical:
        if cart_episode > ts:
            cart = tuple(line for line in state.cart if line.product_id not in bought)
        else:
            cart = ()
        if cart != state.cart:
            state = state.evolve(cart=cart)
    # Bought products are answered views: a later view must not offer them again.
    views = tuple(s for s in state.views if not (s.value in bought and s.ts <= ts))
    if views != state.views:
        state = state.evolve(views=views)
    return state
