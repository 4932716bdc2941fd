"""The changelog codec for ``CustomerState``: positional JSON arrays, versioned.

It runs on every changelog write, so it avoids orjson's dataclass path (four times
slower) and field names (twice the bytes). The first element is the format version;
a new field is appended at the end and older records decode with its default.
The memory store keeps live objects, so decoding runs only on recovery.
"""

from __future__ import annotations

from typing import Any

import orjson
from faust.serializers import codecs

from models.state import CartLine, CustomerState, Pending, Profile, Seen

CODEC_NAME = "nudge-state"
VERSION = 1


def _seen(items: tuple[Seen, ...]) -> list[list[Any]]:
    return [[s.value, s.ts, s.category_id] for s in items]


def state_to_bytes(state: CustomerState) -> bytes:
    p = state.profile
    return orjson.dumps(
        [
            VERSION,
            state.customer_id,
            state.partition,
            [p.email, p.phone, p.first_name, p.last_name, p.timezone, p.consent, p.attributes],
            [[c.product_id, c.quantity, c.price] for c in state.cart],
            _seen(state.views),
            _seen(state.categories),
            _seen(state.searches),
            state.last_activity_ms,
            state.last_order_ms,
            state.orders,
            [[q.trigger_id, q.step, q.due_ms, q.episode, q.payload] for q in state.pending],
            list(state.recent_events),
            _seen(state.bought),
        ]
    )


def state_from_bytes(raw: bytes) -> CustomerState:
    data = orjson.loads(raw)
    if not isinstance(data, list) or not data or data[0] != VERSION:
        raise ValueError(f"unknown customer-state format: {raw[:40]!r}")
    (_, customer_id, partition, profile, cart, views, categories, searches,
     last_activity_ms, last_order_ms, orders, pending, recent) = data[:13]  # fmt: skip
    bought = data[13] if len(data) > 13 else []  # appended later: older records lack it
    return CustomerState(
        customer_id=customer_id,
        partition=partition,
        profile=Profile(*profile),
        cart=tuple(CartLine(*c) for c in cart),
        views=tuple(Seen(*s) for s in views),
        categories=tuple(Seen(*s) for s in categories),
        searches=tuple(Seen(*s) for s in searches),
        last_activity_ms=last_activity_ms,
        last_order_ms=last_order_ms,
        orders=orders,
        pending=tuple(Pending(*q) for q in pending),
        recent_events=tuple(recent),
        bought=tuple(Seen(*s) for s in bought),
    )


class StateCodec(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return state_to_bytes(obj)

    def _loads(self, s: bytes) -> Any:
        return state_from_bytes(s)


def register() -> None:
    """Idempotent: Faust looks codecs up by name when the table serializes."""
    if CODEC_NAME not in codecs.codecs:
        codecs.register(CODEC_NAME, StateCodec())
