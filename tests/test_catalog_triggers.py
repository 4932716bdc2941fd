"""Price drop and back in stock, pure: the product-keyed index, the fan-out to the
customers of a change's audience, and the runs those signals start."""

from __future__ import annotations

from typing import Any

import pytest

from nudge.clock import ManualClock
from nudge.errors import InvalidMessage
from nudge.flows.plan import FlowPlan, FlowSet
from nudge.flows.triggers.catalog import (
    Member,
    ProductAudience,
    fan_out,
    keep_ms,
    note_interests,
)
from nudge.models.catalog import (
    CatalogChange,
    CatalogSignal,
    Interest,
    decode_interests,
    encode_interests,
)
from nudge.models.events import ClickEvent
from nudge.streams.audience_codec import audience_from_bytes, audience_to_bytes
from nudge.streams.catalog_join import INTEREST_EVERY_MS, CatalogJoin
from nudge.streams.logic import apply_signal
from nudge.streams.metrics import StreamMetrics
from nudge.trigger_registry import TriggerRegistry
from tests.test_logic_support import CUSTOMER, Sim, new_state

DAY = 86_400_000
NOW = 1_800_000_000_000


def plan(trigger: dict[str, Any], id: str = "drop", **fields: Any) -> FlowPlan:
    return FlowPlan.parse(
        {"id": id, "trigger": trigger, "steps": [{"send": {"template": "flow"}}], **fields}
    )


def drop(old: float = 100.0, new: float = 80.0, **kw: Any) -> CatalogChange:
    values: dict[str, Any] = {
        "event_id": "e1", "type": "price_drop", "product_id": "p1", "ts": NOW,
        "old_price": old, "new_price": new, "currency": "EUR",
    }  # fmt: skip
    values.update(kw)
    return CatalogChange(**values)


def audience(**members: Member) -> ProductAudience:
    return ProductAudience("p1", 0, members)


def test_the_index_keeps_the_latest_interest_per_customer_and_forgets_old_casual_ones() -> None:
    start = audience(old=Member(viewed_ms=NOW - 40 * DAY), fan=Member(subscribed=1))
    after = note_interests(
        start,
        [
            Interest("p1", "ann", "viewed", NOW - DAY),
            Interest("p1", "ann", "viewed", NOW - 2 * DAY),  # out of order: the later stays
            Interest("p1", "ann", "carted", NOW - 3 * DAY),
            Interest("p1", "bob", "subscribed", NOW - 5 * DAY, "back_in_stock"),
        ],
        NOW,
        keep_ms=30 * DAY,
    )
    assert after.members == {
        "fan": Member(subscribed=1),  # subscribers stay, however long ago
        "ann": Member(viewed_ms=NOW - DAY, carted_ms=NOW - 3 * DAY),
        "bob": Member(subscribed=2),
    }
    assert start.members["old"] == Member(viewed_ms=NOW - 40 * DAY), "values are never mutated"


def test_the_index_keeps_only_the_most_recent_casual_members_beyond_its_cap() -> None:
    interests = [Interest("p1", f"c{i}", "viewed", NOW - i) for i in range(10)]
    interests.append(Interest("p1", "fan", "subscribed", NOW - DAY, "price_drop"))
    after = note_interests(audience(), interests, NOW, cap=3)
    assert set(after.members) == {"c0", "c1", "c2", "fan"}


def test_the_index_remembers_as_long_as_the_longest_lookback_and_a_month_at_least() -> None:
    assert keep_ms([]) == 30 * DAY
    long = plan({"price_drop": {"lookback": "P90D"}})
    assert keep_ms([long, plan({"back_in_stock": {"lookback": "P7D"}})]) == 90 * DAY


def test_a_price_drop_reaches_subscribers_and_recent_viewers_and_carters() -> None:
    members = audience(
        fan=Member(subscribed=1),
        stock_fan=Member(subscribed=2),  # asked about stock, not price
        viewer=Member(viewed_ms=NOW - 2 * DAY),
        stale=Member(viewed_ms=NOW - 10 * DAY),
        carter=Member(carted_ms=NOW - DAY),
    )
    flow = plan({"price_drop": {"lookback": "P7D"}})
    signals, after = fan_out(members, drop(), [flow], NOW)
    assert {s.customer_id: s.reasons for s in signals} == {
        "fan": ("subscribed",),
        "viewer": ("viewed",),
        "carter": ("carted",),
    }
    first = signals[0]
    assert (first.flows, first.old_price, first.new_price, first.type) == (
        ("drop",), 100.0, 80.0, "price_drop",
    )  # fmt: skip
    assert len({s.event_id for s in signals}) == 3
    assert after is members, "a price-drop subscription is not used up"


def test_audience_and_minimum_drop_narrow_who_hears_of_it() -> None:
    members = audience(fan=Member(subscribed=1), viewer=Member(viewed_ms=NOW - DAY))
    only_fans = plan({"price_drop": {"audience": ["subscribed"]}}, id="fans")
    big_drops = plan({"price_drop": {"min_drop_percent": 25}}, id="big")
    signals, _ = fan_out(members, drop(old=100, new=80), [only_fans, big_drops], NOW)
    assert [(s.customer_id, s.flows) for s in signals] == [("fan", ("fans",))]
    signals, _ = fan_out(members, drop(old=100, new=70), [only_fans, big_drops], NOW)
    assert [(s.customer_id, s.flows) for s in signals] == [
        ("fan", ("fans", "big")),
        ("viewer", ("big",)),
    ]
    unknown_old = drop(old=None)
    signals, _ = fan_out(members, unknown_old, [big_drops], NOW)
    assert signals == [], "no claim of a 25% drop without the old price"


def test_back_in_stock_uses_up_the_subscription_it_answers() -> None:
    members = audience(fan=Member(subscribed=3), viewer=Member(viewed_ms=NOW - DAY))
    flow = plan({"back_in_stock": {}})
    back = drop(type="back_in_stock", old=None, new=10.0)
    signals, after = fan_out(members, back, [flow], NOW)
    assert {s.customer_id for s in signals} == {"fan", "viewer"}
    assert after.members["fan"] == Member(subscribed=1), "the price-drop one stays"
    assert after.members["viewer"] == members.members["viewer"]
    assert fan_out(members, back, [plan({"price_drop": {}})], NOW)[0] == []
    disabled = plan({"back_in_stock": {}}, enabled=False)
    assert fan_out(members, back, [disabled], NOW)[0] == []


def signal(**kw: Any) -> CatalogSignal:
    values: dict[str, Any] = {
        "event_id": "e1:c1", "type": "price_drop", "customer_id": CUSTOMER,
        "product_id": "p1", "ts": NOW, "flows": ("drop",), "old_price": 100.0,
        "new_price": 80.0, "currency": "EUR", "reasons": ("viewed",),
    }  # fmt: skip
    values.update(kw)
    return CatalogSignal(**values)


def test_a_signal_starts_the_flow_and_its_message_is_about_the_product() -> None:
    sim = Sim(plan({"price_drop": {}}))
    sim.clock._now = NOW
    sim.state = apply_signal(sim.state, signal(), sim.triggers, sim.now)
    [command] = sim.fire()
    assert command.trigger_id == "drop" and command.context.items[0]["product_id"] == "p1"
    event = command.context.event
    assert (event["old_price"], event["new_price"], event["reasons"]) == (100.0, 80.0, ["viewed"])
    replayed = apply_signal(sim.state, signal(), sim.triggers, sim.now)
    assert replayed is sim.state, "a replayed signal starts nothing"
    other_product = apply_signal(
        sim.state, signal(event_id="e2:c1", product_id="p2"), sim.triggers, sim.now
    )
    assert len(other_product.runs) == 1, "a run per product"


def test_a_signal_for_a_flow_since_switched_off_or_retyped_starts_nothing() -> None:
    state = new_state()
    off = FlowSet([plan({"price_drop": {}}, enabled=False)])
    assert apply_signal(state, signal(), off, NOW) is state
    retyped = FlowSet([plan({"back_in_stock": {}})])
    assert apply_signal(state, signal(), retyped, NOW) is state
    assert apply_signal(state, signal(flows=("gone",)), FlowSet([]), NOW) is state


def test_the_audience_codec_round_trips() -> None:
    value = audience(ann=Member(1, 2, 3), bob=Member(viewed_ms=5))
    assert audience_from_bytes(audience_to_bytes(value)) == value
    with pytest.raises(ValueError, match="product-audience"):
        audience_from_bytes(b"[99]")


def test_catalogue_records_are_checked_field_by_field() -> None:
    assert drop().drop_percent == pytest.approx(20.0)
    with pytest.raises(InvalidMessage, match="unknown_type"):
        CatalogChange.from_bytes(b'{"event_id":"e","type":"sale","product_id":"p","ts":1}')
    with pytest.raises(InvalidMessage, match="missing_field"):
        CatalogChange.from_bytes(b'{"event_id":"e","type":"price_drop","ts":1}')
    with pytest.raises(InvalidMessage, match="bad_field"):
        decode_interests(b'{"interests": [["p", "c", "subscribed", 1, null]]}')
    with pytest.raises(InvalidMessage, match="missing_field"):
        decode_interests(b'{"interest": []}')
    many = [Interest("p1", "c1", "viewed", 5), Interest("p2", "c1", "subscribed", 6, "price_drop")]
    assert decode_interests(encode_interests(many)) == many
    assert CatalogSignal.from_bytes(signal().to_bytes()) == signal()


def click(type: str, ts: int, product: str = "p1", **kw: Any) -> ClickEvent:
    return ClickEvent(
        event_id=f"{type}{ts}", type=type, customer_id="c1", ts=ts, product_id=product, **kw
    )


def test_views_reach_the_index_once_an_hour_per_customer_and_product() -> None:
    join = CatalogJoin(
        store=None,  # type: ignore[arg-type]  # not reached by ``interests``
        registry=TriggerRegistry(),
        dead_letters=None,  # type: ignore[arg-type]
        send_interest=None,  # type: ignore[arg-type]
        send_signal=None,  # type: ignore[arg-type]
        partitions=2,
        clock=ManualClock(),
        metrics=StreamMetrics(),
        applied=lambda messages: None,
    )
    batch = [
        click("product_view", NOW),
        click("product_view", NOW + 60_000),
        click("product_view", NOW + 60_000, product="p2"),
        click("cart_add", NOW + 60_000),
        click("search", NOW, product=""),
        click("product_subscribe", NOW, topic="back_in_stock"),
        click("product_subscribe", NOW, topic="nonsense"),
    ]
    found = [(i.product_id, i.kind, i.topic) for i in join.interests(batch)]
    assert found == [
        ("p1", "viewed", None),
        ("p2", "viewed", None),
        ("p1", "carted", None),
        ("p1", "subscribed", "back_in_stock"),
    ]
    later = join.interests([click("product_view", NOW + INTEREST_EVERY_MS)])
    assert [i.ts for i in later] == [NOW + INTEREST_EVERY_MS]
    join.forget(later)  # its publishing failed: the replay sends it again
    assert len(join.interests([click("product_view", NOW + INTEREST_EVERY_MS)])) == 1


def test_interests_go_where_their_products_changes_go() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    from nudge.streams.partitions import partition_of

    for key in (b"p1", b"desk", b"floor", "\u00e9t\u00e9".encode()):
        expected = DefaultPartitioner()(key, [0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5])
        assert partition_of(key, 6) == expected
