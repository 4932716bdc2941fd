"""Marketplace sellers, pure: messages of a buyer's flow to each seller of the order,
the seller side that addresses them, and the sales milestones it counts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from nudge.codec import AVRO_HEADERS, decode_seller, encode_avro
from nudge.errors import InvalidMessage
from nudge.flows import DefinitionError
from nudge.flows.plan import FlowPlan, FlowSet
from nudge.flows.triggers.seller import shares
from nudge.models.commands import SendCommand
from nudge.models.events import OrderEvent, OrderItem
from nudge.models.message import MessageContext
from nudge.models.sellers import MAX_HELD, SellerProfile, SellerRecord, SellerSale, SellerState
from nudge.streams.logic.seller import apply_message, apply_profile, apply_sale
from nudge.streams.seller_codec import seller_from_bytes, seller_to_bytes
from nudge.streams.seller_side import SellerSide
from tests.test_logic_support import CUSTOMER, Sim

NOW = 1_800_000_000_000
DAY = 86_400_000

TO_SELLERS = {
    "id": "seller-status",
    "class": "transactional",
    "trigger": {"event": "order_status", "key": "{{ event.order_id }}-{{ event.status }}"},
    "reentry": "always",
    "steps": [{"send": {"to": "seller", "subject": "Order {{ order.order_id }}"}}],
}
MILESTONES = {
    "id": "milestones",
    "class": "transactional",
    "trigger": {"seller_sales": {"at": [1, 3]}},
    "steps": [{"send": {"to": "seller", "template": "flow"}}],
}


def two_seller_order(type: str = "order_status", **kw: Any) -> OrderEvent:
    items = [
        OrderItem(product_id="lamp", quantity=2, price=10.0, seller_id="s-anna"),
        OrderItem(product_id="rug", quantity=1, price=50.0),  # the order's own seller
        OrderItem(product_id="mug", quantity=1, price=5.0, seller_id="s-anna"),
    ]
    return OrderEvent(
        event_id=kw.pop("event_id", "e1"), type=type, order_id="o1", customer_id=CUSTOMER,
        ts=kw.pop("ts", NOW), items=items, total=75.0, currency="EUR", seller_id="s-bob", **kw,
    )  # fmt: skip


def test_an_order_splits_into_its_sellers_shares() -> None:
    order = {"seller_id": "s-bob", "items": [
        {"product_id": "a", "seller_id": "s-anna"}, {"product_id": "b"}, "junk"]}  # fmt: skip
    assert shares(order) == {"s-anna": [order["items"][0]], "s-bob": [order["items"][1]]}
    assert shares({"items": [{"product_id": "a"}]}) == {}, "nobody's items are nobody's share"


def test_a_buyers_flow_writes_one_message_per_seller_with_only_their_items() -> None:
    sim = Sim(FlowPlan.parse(TO_SELLERS))
    sim.clock._now = NOW
    sim.apply(two_seller_order(status="shipped"))
    commands = {c.seller_id: c for c in sim.fire()}
    assert set(commands) == {"s-anna", "s-bob"}
    anna = commands["s-anna"]
    assert anna.recipient == "" and not anna.marketing, "the seller side addresses it"
    assert [i["product_id"] for i in anna.context.items] == ["lamp", "mug"]
    assert anna.context.order["total"] == 25.0 and anna.context.order["order_id"] == "o1"
    assert anna.id.endswith(":s-anna") and commands["s-bob"].id.endswith(":s-bob")
    assert anna.id.removesuffix(":s-anna") == commands["s-bob"].id.removesuffix(":s-bob")
    nobody = Sim(FlowPlan.parse(TO_SELLERS))
    nobody.order("p1", type="order_status", status="shipped", order_id="o2")
    assert nobody.fire() == [], "an order without sellers has nobody to tell"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"class": "marketing"}, "messages to sellers are transactional"),
        ({"trigger": {"event": "cart_add"}}, "'seller' needs a flow triggered by an order"),
    ],
)
def test_messages_to_sellers_are_refused_where_they_make_no_sense(
    change: dict[str, Any], problem: str
) -> None:
    with pytest.raises(DefinitionError, match=problem):
        FlowPlan.parse({**TO_SELLERS, **change})


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"class": "marketing"}, "set class: transactional"),
        ({"steps": [{"wait": "P1D"}, {"send": {"to": "seller"}}]}, "only send steps"),
        ({"steps": [{"send": {}}]}, "set to: seller"),
    ],
)
def test_a_milestone_flow_only_sends_to_the_seller_at_once(
    change: dict[str, Any], problem: str
) -> None:
    with pytest.raises(DefinitionError, match=problem):
        FlowPlan.parse({**MILESTONES, **change})


def seller(email: str | None = "anna@shop.example", **kw: Any) -> SellerState:
    profile = SellerProfile("s-anna", email=email, name="Anna's Lamps") if email else None
    return SellerState("s-anna", 1, profile, **kw)


def sale(order_id: str, historical: bool = False) -> SellerSale:
    item = {"product_id": "lamp", "quantity": 1, "price": 10.0}
    return SellerSale("s-anna", order_id, "c1", NOW, (item,), "EUR", historical)


def test_sales_are_counted_once_per_order_and_milestones_congratulate() -> None:
    flows = FlowSet.of(MILESTONES)
    state, [first], notes = apply_sale(seller(), sale("o1"), flows, NOW)
    assert (state.sales, notes) == (1, [])
    assert first.recipient == "anna@shop.example" and first.context.milestone == 1
    assert first.context.seller["name"] == "Anna's Lamps" and first.seller_id == "s-anna"
    assert first.id == "milestones:seller:s-anna:1:0" and not first.marketing
    assert apply_sale(state, sale("o1"), flows, NOW)[0] is state, "a replayed sale"
    state, sent, _ = apply_sale(state, sale("o2"), flows, NOW)
    assert (state.sales, sent) == (2, [])
    state, [third], _ = apply_sale(state, sale("o3"), flows, NOW)
    assert third.context.milestone == 3
    history, sent, _ = apply_sale(seller(), sale("o0", historical=True), flows, NOW)
    assert (history.sales, sent) == (1, []), "history counts but tells nobody"


def test_messages_wait_for_the_sellers_contact_and_go_once_it_comes() -> None:
    flows = FlowSet.of(MILESTONES)
    state, sent, _ = apply_sale(seller(email=None), sale("o1"), flows, NOW)
    assert sent == [] and len(state.held) == 1
    buyer_message = command("order-note", due_ms=NOW)
    state, sent, _ = apply_message(state, buyer_message, NOW)
    assert sent == [] and len(state.held) == 2
    assert apply_message(state, buyer_message, NOW)[0] is state, "a replay of one held"
    state, released, notes = apply_profile(state, SellerProfile("s-anna", email="a@x.example"), NOW)
    assert [c.recipient for c in released] == ["a@x.example"] * 2 and notes == []
    assert state.held == () and released[1].context.seller["email"] == "a@x.example"
    assert apply_profile(state, SellerProfile("s-anna"), NOW)[0] is state, "nothing new"


def test_held_messages_are_bounded_and_go_stale() -> None:
    state = seller(email=None)
    for n in range(MAX_HELD + 2):
        state, _, notes = apply_message(state, command(f"m{n}", due_ms=NOW), NOW)
    assert len(state.held) == MAX_HELD and [n.reason for n in notes] == ["no_seller_contact"]
    state, released, notes = apply_profile(
        state, SellerProfile("s-anna", email="a@x.example"), NOW + 2 * DAY
    )
    assert released == [] and len(notes) == MAX_HELD, "a day late is too late"


def command(id: str, due_ms: int) -> SendCommand:
    return SendCommand(
        id=id, trigger_id="seller-status", kind="flow", step=0, channel="email",
        customer_id="c1", recipient="", context=MessageContext(), due_ms=due_ms,
        created_ms=due_ms, marketing=False, seller_id="s-anna",
    )  # fmt: skip


def test_seller_records_and_state_round_trip() -> None:
    state = seller(sales=7, recent_orders=("o1", "o2"), held=(command("m1", NOW),))
    assert seller_from_bytes(seller_to_bytes(state)) == state
    for record in (SellerRecord(sale=sale("o1")), SellerRecord(message=command("m1", NOW))):
        assert SellerRecord.from_bytes(record.to_bytes()) == record
        assert record.seller_id == "s-anna"
    nobodys = replace(command("m", NOW), seller_id=None)
    with pytest.raises(InvalidMessage, match="missing_field"):
        SellerRecord.from_bytes(b'{"message": ' + nobodys.to_bytes() + b"}")


def test_a_sellers_contact_is_checked_field_by_field() -> None:
    profile = decode_seller(b'{"seller_id": "s1", "email": "a@X.example", "x": 1}')
    assert profile == SellerProfile("s1", email="a@x.example")
    with pytest.raises(InvalidMessage, match="missing_field"):
        decode_seller(b'{"email": "a@x.example"}')
    with pytest.raises(InvalidMessage, match="control character"):
        decode_seller(b'{"seller_id": "s1", "email": "a@x.example\\r\\nBcc: x@y.example"}')
    with pytest.raises(InvalidMessage, match="bad_field"):
        decode_seller(b'{"seller_id": "s1", "attributes": [1]}')
    avro = encode_avro("sellers", {"seller_id": "s2", "name": "Bo", "attributes": {"tier": "gold"}})
    assert decode_seller(avro, AVRO_HEADERS) == SellerProfile(
        "s2", name="Bo", attributes={"tier": "gold"}
    )


def test_placed_orders_become_sales_of_each_seller() -> None:
    records = SellerSide.sales([two_seller_order(type="order_placed"), two_seller_order()])
    assert {(r.seller_id, len(r.sale.items)) for r in records if r.sale} == {
        ("s-anna", 2),
        ("s-bob", 1),
    }
