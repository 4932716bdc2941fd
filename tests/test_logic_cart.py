"""abandoned_cart: detection, cancellation, follow-up and new episodes."""

from __future__ import annotations

import pytest

from nudge.models.state import CartLine
from nudge.streams.logic import command_id, fire_due
from tests.test_logic_support import CUSTOMER, EMAIL, Sim, customer, make_trigger, new_state


@pytest.fixture
def sim() -> Sim:
    return Sim(make_trigger("abandoned_cart", delay=60))


@pytest.fixture
def sim_follow() -> Sim:
    return Sim(make_trigger("abandoned_cart", delay=60, follow_up=120))


def test_idle_cart_sends_one_command_with_items(sim: Sim) -> None:
    sim.click("cart_add", product_id="p1", quantity=2, price=9.5)
    sim.click("cart_add", product_id="p2", quantity=1, price=3.0)
    assert sim.tick(59.999) == []
    [cmd] = sim.tick(0.001)
    assert cmd.kind == "abandoned_cart"
    assert cmd.step == 0
    assert cmd.customer_id == CUSTOMER
    assert cmd.recipient == EMAIL
    assert cmd.channel == "email"
    assert cmd.due_ms == sim.now
    assert cmd.trigger_id == "abandoned_cart"
    assert cmd.version == sim.triggers.get("abandoned_cart").version
    assert cmd.message.subject == "Hello {{ customer.first_name }}"
    assert list(cmd.context.items) == [
        {"product_id": "p1", "quantity": 2, "price": 9.5},
        {"product_id": "p2", "quantity": 1, "price": 3.0},
    ]
    assert cmd.context.customer["email"] == EMAIL
    assert sim.tick(3600) == []
    assert sim.state.runs == ()


def test_cart_activity_renews_the_wait(sim: Sim) -> None:
    sim.click("cart_add", product_id="p1")
    sim.clock.advance(50)
    sim.click("cart_add", product_id="p2")
    assert sim.tick(50) == []  # 100 s after the first add, 50 s after the last
    [cmd] = sim.tick(10)
    assert [i["product_id"] for i in cmd.context.items] == ["p1", "p2"]


def test_order_cancels(sim: Sim) -> None:
    sim.click("cart_add", product_id="p1")
    sim.clock.advance(30)
    sim.order("p1")
    assert sim.state.cart == ()
    assert sim.state.runs == ()
    assert sim.tick(3600) == []


def test_order_of_other_products_still_cancels_and_clears_cart(sim: Sim) -> None:
    sim.click("cart_add", product_id="p1")
    sim.order("p9", offset_s=1)
    assert sim.state.cart == ()
    assert sim.tick(3600) == []


def test_emptying_the_cart_cancels(sim: Sim) -> None:
    sim.click("cart_add", product_id="p1", quantity=2)
    sim.click("cart_add", product_id="p2")
    sim.click("cart_remove", product_id="p1")  # no quantity: the whole line goes
    assert sim.state.run_of("abandoned_cart") is not None
    sim.click("cart_remove", product_id="p2", quantity=1)
    assert sim.state.cart == ()
    assert sim.state.runs == ()
    assert sim.tick(3600) == []


def test_partial_remove_keeps_line_and_price(sim: Sim) -> None:
    sim.click("cart_add", product_id="p1", quantity=3, price=2.5)
    sim.click("cart_remove", product_id="p1", quantity=2)
    assert sim.state.cart == (CartLine("p1", 1, 2.5),)
    [cmd] = sim.tick(60)
    assert cmd.context.items == ({"product_id": "p1", "quantity": 1, "price": 2.5},)


def test_cart_add_without_price_keeps_known_price(sim: Sim) -> None:
    sim.click("cart_add", product_id="p1", quantity=1, price=4.0)
    sim.click("cart_add", product_id="p1")
    assert sim.state.cart == (CartLine("p1", 2, 4.0),)


def test_cart_remove_of_absent_product_returns_same_state(sim: Sim) -> None:
    sim.click("cart_add", product_id="p1")
    before = sim.state
    sim.clock.advance(30)
    assert sim.click("cart_remove", product_id="p9") is before
    [cmd] = sim.tick(30)  # the episode was not renewed
    assert cmd.id == command_id("abandoned_cart", CUSTOMER, before.runs[0].episode, 0)


def test_cart_remove_on_empty_cart_returns_same_state(sim: Sim) -> None:
    before = sim.state
    assert sim.click("cart_remove", product_id="p1") is before


def test_follow_up_sent_once_after_its_delay(sim_follow: Sim) -> None:
    sim = sim_follow
    sim.click("cart_add", product_id="p1")
    [first] = sim.tick(60)
    assert sim.tick(119) == []
    [second] = sim.tick(1)
    assert (first.step, second.step) == (0, 1)
    assert first.id != second.id
    assert second.due_ms == first.due_ms + 120_000
    assert second.message.subject == "Still there?"
    assert second.context.items == first.context.items
    assert sim.tick(24 * 3600) == []
    assert sim.state.runs == ()


def test_order_between_first_mail_and_follow_up_cancels_it(sim_follow: Sim) -> None:
    sim = sim_follow
    sim.click("cart_add", product_id="p1")
    assert len(sim.tick(60)) == 1
    sim.clock.advance(30)
    sim.order("p1")
    assert sim.state.runs == ()
    assert sim.tick(3600) == []
    assert [c.step for c in sim.sent] == [0]


def test_emptying_cart_between_first_mail_and_follow_up_cancels_it(sim_follow: Sim) -> None:
    sim = sim_follow
    sim.click("cart_add", product_id="p1")
    sim.tick(60)
    sim.click("cart_remove", product_id="p1")
    assert sim.tick(3600) == []
    assert len(sim.sent) == 1


def test_no_follow_up_without_follow_up_config(sim: Sim) -> None:
    sim.click("cart_add", product_id="p1")
    sim.tick(60)
    assert sim.tick(7 * 24 * 3600) == []
    assert len(sim.sent) == 1


def test_cart_activity_after_first_mail_starts_new_episode(sim_follow: Sim) -> None:
    sim = sim_follow
    sim.click("cart_add", product_id="p1")
    [first] = sim.tick(60)
    sim.clock.advance(10)
    sim.click("cart_add", product_id="p2")
    pending = sim.state.run_of("abandoned_cart")
    assert (pending.at, pending.episode) == ((1,), sim.now), "waiting for the first mail"
    assert sim.tick(59) == []
    [again] = sim.tick(1)
    assert again.step == 0
    assert again.id != first.id
    assert len(again.context.items) == 2


def test_historical_order_keeps_current_cart(sim: Sim) -> None:
    sim.click("cart_add", product_id="p1")
    sim.order("p1", offset_s=-30 * 24 * 3600, historical=True)
    assert [line.product_id for line in sim.state.cart] == ["p1"]
    assert len(sim.tick(60)) == 1


def test_historical_order_counts_but_does_not_clear(sim: Sim) -> None:
    sim.click("cart_add", product_id="p1")
    sim.order("p2", offset_s=-3600, historical=True)
    assert sim.state.orders == 1
    assert len(sim.state.cart) == 1


def test_late_order_older_than_cart_activity_does_not_cancel(sim: Sim) -> None:
    sim.click("cart_add", product_id="p1")
    sim.order("p0", offset_s=-120)  # an older order, delivered late
    assert sim.state.run_of("abandoned_cart") is not None
    [cmd] = sim.tick(60)
    assert [i["product_id"] for i in cmd.context.items] == ["p1"]


def test_late_older_cart_add_after_order_does_not_fire(sim: Sim) -> None:
    sim.click("cart_add", product_id="p1", offset_s=-20)
    sim.order("p1", offset_s=-10)
    sim.click("cart_add", product_id="p1", offset_s=-15)  # before the order, delivered late
    assert sim.tick(3600) == []


def test_order_status_changes_nothing(sim: Sim) -> None:
    sim.click("cart_add", product_id="p1")
    before = sim.state
    sim.clock.advance(10)
    assert sim.order("p1", type="order_status", status="shipped") is before
    assert len(sim.tick(50)) == 1


def test_replayed_timer_yields_same_command(sim_follow: Sim) -> None:
    sim = sim_follow
    sim.click("cart_add", product_id="p1")
    sim.clock.advance(60)
    saved = sim.state  # the table write of the fired state is lost: replay from here
    _, first = fire_due(saved, sim.triggers, sim.now)
    sim.clock.advance(5)
    _, replay = fire_due(saved, sim.triggers, sim.now)
    assert [c.id for c in first] == [c.id for c in replay]
    assert first[0].due_ms == replay[0].due_ms


def test_timer_replayed_while_still_in_cart_is_not_resent(sim: Sim) -> None:
    sim.click("cart_add", product_id="p1")
    sim.clock.advance(120)
    assert len(sim.fire()) == 1
    assert sim.fire() == []
    assert sim.fire() == []


def test_first_mail_waits_for_its_recipient_and_the_follow_up_counts_from_it() -> None:
    sim = Sim(make_trigger("abandoned_cart", delay=60, follow_up=120), state=new_state(email=None))
    sim.click("cart_add", product_id="p1")
    assert sim.tick(60) == []
    sim.apply(customer(email=EMAIL))
    assert [c.step for c in sim.fire()] == [0], "the first mail, not a reminder of it"
    assert sim.tick(119) == []
    assert [c.step for c in sim.tick(1)] == [1]
    assert sim.tick(3600) == []


def test_late_order_removes_only_what_it_bought(sim: Sim) -> None:
    sim.click("cart_add", product_id="p1")
    sim.click("cart_add", product_id="p2")
    sim.order("p1", offset_s=-60)  # placed before this cart episode, delivered late
    assert [line.product_id for line in sim.state.cart] == ["p2"]
    assert len(sim.tick(60)) == 1


def test_redelivered_cart_add_and_order_apply_once(sim: Sim) -> None:
    from tests.test_logic_support import click, order

    added = click("cart_add", sim.now, product_id="p1", quantity=2, price=9.5)
    once = sim.apply(added)
    assert sim.apply(added) is once, "Kafka redelivers; the cart must not double"
    assert once.cart == (CartLine("p1", 2, 9.5),)
    placed = order(sim.now + 1000, "p1")
    after = sim.apply(placed)
    assert sim.apply(placed) is after
    assert after.orders == 1
    another = sim.apply(click("cart_add", sim.now + 2000, product_id="p1", quantity=1, price=9.5))
    assert another.cart == (CartLine("p1", 1, 9.5),), "a new event with a new id still counts"


def test_command_carries_the_history_the_recommender_needs(sim: Sim) -> None:
    sim.click("product_view", product_id="p9")
    sim.click("product_view", product_id="p8")
    sim.click("cart_add", product_id="p1", quantity=1, price=2.0)
    [cmd] = sim.tick(60)
    assert cmd.context.history == ("p9", "p8", "p1"), "viewed oldest first, then the cart"


def test_command_carries_what_was_bought_newest_first(sim: Sim) -> None:
    sim.order("p-old", offset_s=-90 * 24 * 3600, historical=True)
    sim.order("p1", "p2")
    sim.clock.advance(10)
    sim.order("p3", "p1")  # bought again: moves to the front
    sim.order("p-older", offset_s=-400 * 24 * 3600, historical=True)  # goes behind
    sim.click("cart_add", product_id="p9", quantity=1, price=2.0)
    [cmd] = sim.tick(60)
    assert cmd.context.bought == ("p3", "p1", "p2", "p-old", "p-older")


def test_only_the_latest_purchases_are_kept(sim: Sim) -> None:
    for n in range(25):
        sim.clock.advance(1)
        sim.order(f"p{n}")
    assert [s.value for s in sim.state.bought] == [f"p{n}" for n in range(24, 4, -1)]
