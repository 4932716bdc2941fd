"""The changelog format of customer state: lossless, compact, versioned."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from nudge.models.state import CartLine, CustomerState, FlowMark, Profile, Run, Seen
from nudge.streams.state_codec import state_from_bytes, state_to_bytes


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
            tags=("vip", "newsletter"),
        ),
        cart=(CartLine("p1", 2, 9.5), CartLine("p2", 1, 0.0)),
        views=(Seen("p3", 10, "shoes"), Seen("p4", 9, None)),
        categories=(Seen("shoes", 8),),
        searches=(Seen("rain boots", 7),),
        last_activity_ms=10,
        last_order_ms=5,
        orders=2,
        runs=(
            Run("cart", (3,), 100, 10, {}, "v1"),
            Run("view", (1,), 70, 10, {"product_ids": ["p3", "p4"]}, "v2"),
            Run("welcome", (2, "then", 0), 90, 8, {"event": {"type": "x"}}, "v3", "o-1", "B",
                "order_placed"),
        ),
        recent_events=("e9", "e8"),
        bought=(Seen("p7", 5), Seen("p6", 4)),
        flow_marks=(FlowMark("welcome", 8, 9, 8),),
        total_spent=99.5,
        first_order_ms=3,
        created_ms=2,
        bought_categories=(Seen("shoes", 5),),
    )  # fmt: skip


@pytest.mark.parametrize("state", [CustomerState("only-id"), rich_state()])
def test_round_trip_is_lossless(state: CustomerState) -> None:
    assert state_from_bytes(state_to_bytes(state)) == state


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown customer-state format"):
        state_from_bytes(b'{"customer_id": "c-1"}')
    with pytest.raises(ValueError):
        state_from_bytes(b"[99]")


def _version_1(state: CustomerState, *, with_bought: bool = True) -> bytes:
    """The layout before flows: abandonment timers, no marks, no tags."""
    fields = orjson.loads(state_to_bytes(state))
    fields[0] = 1
    fields[3] = fields[3][:7]
    fields[11] = [[r[0], {(1,): 0, (3,): 1}[tuple(r[1])], r[2], r[3], r[4]] for r in fields[11]]
    return orjson.dumps(fields[:14] if with_bought else fields[:13])


def test_a_record_from_before_flows_decodes_with_its_timers_as_runs() -> None:
    state = replace(rich_state(), runs=rich_state().runs[:2])
    old = state_from_bytes(_version_1(state))
    assert [(r.flow_id, r.at, r.due_ms, r.episode, r.payload) for r in old.runs] == [
        ("cart", (3,), 100, 10, {}),
        ("view", (1,), 70, 10, {"product_ids": ["p3", "p4"]}),
    ]
    assert old.created_ms == 1, "a customer known before flows is never created again"
    assert old.profile.tags == () and old.flow_marks == () and old.cart == state.cart


def test_a_record_from_before_bought_was_kept_still_decodes() -> None:
    state = replace(rich_state(), runs=())
    older = state_from_bytes(_version_1(state, with_bought=False))
    assert older.bought == () and older.views == state.views


def test_a_record_from_before_bought_categories_were_kept_still_decodes() -> None:
    state = rich_state()
    older = state_from_bytes(orjson.dumps(orjson.loads(state_to_bytes(state))[:18]))
    assert older == replace(state, bought_categories=())
