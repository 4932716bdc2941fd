"""Customers inactive past the horizon keep only what flows need."""

from __future__ import annotations

from nudge.clock import ManualClock
from nudge.flows.plan import FlowPlan, FlowSet
from nudge.models.state import CartLine, CustomerState, FlowMark, Profile, Run, Seen
from nudge.streams.horizon import sweep_inactive
from nudge.streams.logic.horizon import compact_inactive
from nudge.streams.state_codec import state_to_bytes
from tests.test_processor_order_first import MemoryStore

DAY = 86_400_000
NOW = 1_800_000_000_000
HORIZON = 180 * DAY


def lapsed(last_active_days_ago: int, **changes: object) -> CustomerState:
    state = CustomerState(
        "c1",
        partition=0,
        profile=Profile(email="ann@example.com", consent={"email": "unsubscribed"},
                        consent_at={"email": NOW - 400 * DAY}),
        cart=(CartLine("p1", 1, 9.5),),
        views=tuple(Seen(f"p{i}", NOW - 200 * DAY, "shoes") for i in range(10)),
        categories=(Seen("shoes", NOW - 200 * DAY),),
        searches=(Seen("boots", NOW - 200 * DAY),),
        last_activity_ms=NOW - last_active_days_ago * DAY,
        last_order_ms=NOW - 300 * DAY,
        orders=3,
        runs=(Run("win-back", (1,), NOW + DAY, NOW - 200 * DAY),),
        recent_events=tuple(f"e{i}" for i in range(16)),
        bought=(Seen("p7", NOW - 300 * DAY),),
        flow_marks=(FlowMark("welcome", 1, 2, 1),),
        total_spent=120.0,
        first_order_ms=NOW - 900 * DAY,
        created_ms=NOW - 900 * DAY,
        bought_categories=(Seen("shoes", NOW - 300 * DAY),),
    )  # fmt: skip
    return state.evolve(**changes)


def test_an_inactive_customer_keeps_what_flows_need() -> None:
    state = lapsed(200)
    small = compact_inactive(state, NOW, HORIZON, browsing_flows=frozenset())
    assert (small.views, small.categories, small.searches, small.cart) == ((), (), (), ())
    assert small.recent_events == () and small.bought_categories == ()
    # Opt-out evidence, timers, reentry marks, purchase history and totals stay.
    assert small.profile == state.profile
    assert small.runs == state.runs and small.flow_marks == state.flow_marks
    assert small.bought == state.bought and small.orders == 3 and small.total_spent == 120.0
    assert (small.last_activity_ms, small.last_order_ms) == (
        state.last_activity_ms,
        state.last_order_ms,
    )
    assert len(state_to_bytes(small)) < len(state_to_bytes(state)) / 2


def test_an_active_or_already_compact_customer_is_left_as_it_is() -> None:
    active = lapsed(100)
    assert compact_inactive(active, NOW, HORIZON, frozenset()) is active
    small = compact_inactive(lapsed(200), NOW, HORIZON, frozenset())
    assert compact_inactive(small, NOW, HORIZON, frozenset()) is small
    assert compact_inactive(lapsed(200), NOW, 0, frozenset()).views, "0 keeps everything"


def test_browsing_stays_while_an_abandonment_run_waits_on_it() -> None:
    waiting = lapsed(200, runs=(Run("cart-30d", (3,), NOW + DAY, NOW - 200 * DAY),))
    assert compact_inactive(waiting, NOW, HORIZON, frozenset({"cart-30d"})) is waiting


async def test_the_sweep_compacts_the_owned_partitions_through_the_changelog() -> None:
    store = MemoryStore()
    store.put(b"old", lapsed(200))
    store.put(b"recent", lapsed(10))
    store.put(b"elsewhere", lapsed(200, partition=3))
    flows = FlowSet([FlowPlan.parse({"id": "cart-1h", "kind": "abandoned_cart"})])
    clock = ManualClock(NOW)
    assert await sweep_inactive(store, flows, clock, HORIZON, {0}) == 1  # type: ignore[arg-type]
    assert store.data[b"old"].views == ()
    assert store.data[b"recent"].views and store.data[b"elsewhere"].views
    assert await sweep_inactive(store, flows, clock, HORIZON, {0}) == 0  # type: ignore[arg-type]
