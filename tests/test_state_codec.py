"""The changelog format of customer state: lossless, compact, versioned."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from models.state import CartLine, CustomerState, Pending, Profile, Seen
from streams.state_codec import state_from_bytes, state_to_bytes


def rich_state() -> CustomerState:
    return CustomerState(
        customer_id="c-1",
        partition=3,
        profile=Profile(
            email="ann@example.com",
            phone="+100",
            first_name="Ann",
            last_name="Lee",
            timezone="Europe/Berlin",
            consent={"email": "subscribed", "sms": "pending"},
            attributes={"tier": "gold", "score": 3.5, "vip": True, "note": None},
        ),
        cart=(CartLine("p1", 2, 9.5), CartLine("p2", 1, 0.0)),
        views=(Seen("p3", 10, "shoes"), Seen("p4", 9, None)),
        categories=(Seen("shoes", 8),),
        searches=(Seen("rain boots", 7),),
        last_activity_ms=10,
        last_order_ms=5,
        orders=2,
        pending=(
            Pending("cart", 1, 100, 10, {}),
            Pending("view", 0, 70, 10, {"product_ids": ["p3", "p4"]}),
        ),
        recent_events=("e9", "e8"),
        bought=(Seen("p7", 5), Seen("p6", 4)),
    )


@pytest.mark.parametrize("state", [CustomerState("only-id"), rich_state()])
def test_round_trip_is_lossless(state: CustomerState) -> None:
    assert state_from_bytes(state_to_bytes(state)) == state


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown customer-state format"):
        state_from_bytes(b'{"customer_id": "c-1"}')
    with pytest.raises(ValueError):
        state_from_bytes(b"[99]")


def test_a_record_from_before_bought_was_kept_still_decodes() -> None:
    state = rich_state()
    fields = orjson.loads(state_to_bytes(state))
    assert len(fields) == 14
    older = orjson.dumps(fields[:13])  # the layout before ``bought`` was appended
    assert state_from_bytes(older) == replace(state, bought=())
