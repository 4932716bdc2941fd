"""The changelog codec for ``CustomerState``: orjson out, dataclasses back in.

The memory store keeps live objects, so this runs once per changelog write and
once per record on recovery, never on a plain table read.
"""

from __future__ import annotations

from typing import Any

import orjson
from faust.serializers import codecs

from models.state import CartLine, CustomerState, Pending, Profile, Seen

CODEC_NAME = "nudge-state"


def state_to_bytes(state: CustomerState) -> bytes:
    return orjson.dumps(state)


def state_from_dict(data: dict[str, Any]) -> CustomerState:
    profile = data.get("profile") or {}
    return CustomerState(
        customer_id=data["customer_id"],
        partition=data.get("partition", -1),
        profile=Profile(**profile),
        cart=tuple(CartLine(**line) for line in data.get("cart", ())),
        views=tuple(Seen(**s) for s in data.get("views", ())),
        categories=tuple(Seen(**s) for s in data.get("categories", ())),
        searches=tuple(Seen(**s) for s in data.get("searches", ())),
        last_activity_ms=data.get("last_activity_ms", 0),
        last_order_ms=data.get("last_order_ms", 0),
        orders=data.get("orders", 0),
        pending=tuple(Pending(**p) for p in data.get("pending", ())),
        recent_events=tuple(data.get("recent_events", ())),
    )


def state_from_bytes(raw: bytes) -> CustomerState:
    return state_from_dict(orjson.loads(raw))


class StateCodec(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return state_to_bytes(obj)

    def _loads(self, s: bytes) -> Any:
        return state_from_bytes(s)


def register() -> None:
    """Idempotent: Faust looks codecs up by name when the table serializes."""
    if CODEC_NAME not in codecs.codecs:
        codecs.register(CODEC_NAME, StateCodec())
