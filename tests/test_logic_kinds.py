"""abandoned_view, abandoned_category, abandoned_search."""

from __future__ import annotations

import pytest

from tests.test_logic_support import KINDS, Sim, make_trigger


@pytest.fixture
def view() -> Sim:
    return Sim(make_trigger("abandoned_view", delay=60))


@pytest.fixture
def category() -> Sim:
    return Sim(make_trigger("abandoned_category", delay=60))


@pytest.fixture
def search() -> Sim:
    return Sim(make_trigger("abandoned_search", delay=60))


def product_ids(cmd) -> list[str]:
    return [i["product_id"] for i in cmd.context.items]


# -- abandoned_view ----------------------------------------------------------------


def test_view_fires_with_viewed_products(view: Sim) -> None:
    view.click("product_view", product_id="p1")
    view.clock.advance(10)
    view.click("product_view", product_id="p2")
    assert view.tick(59) == []
    [cmd] = view.tick(1)
    assert cmd.kind == "abandoned_view"
    assert product_ids(cmd) == ["p2", "p1"]  # most recent first
    assert all(i["quantity"] == 1 for i in cmd.context.items)


def test_view_items_are_capped_and_deduplicated(view: Sim) -> None:
    for pid in ("p1", "p2", "p1", "p3", "p4"):
        view.click("product_view", product_id=pid)
    [cmd] = view.tick(60)
    assert product_ids(cmd) == ["p4", "p3", "p1"]


def test_cart_add_of_the_only_viewed_product_cancels(view: Sim) -> None:
    view.click("product_view", product_id="p1")
    view.click("cart_add", product_id="p1", offset_s=5)
    assert view.state.runs == ()
    assert view.tick(3600) == []


def test_cart_add_removes_only_that_product(view: Sim) -> None:
    view.click("product_view", product_id="p1")
    view.click("product_view", product_id="p2")
    view.click("cart_add", product_id="p1", offset_s=5)
    [cmd] = view.tick(60)
    assert product_ids(cmd) == ["p2"]


def test_cart_add_of_unviewed_product_keeps_same_state_for_views(view: Sim) -> None:
    view.click("product_view", product_id="p1")
    pending = view.state.runs
    view.click("cart_add", product_id="p9")
    assert view.state.runs == pending


def test_order_of_viewed_product_cancels(view: Sim) -> None:
    view.click("product_view", product_id="p1")
    view.order("p1", offset_s=5)
    assert view.state.runs == ()
    assert view.tick(3600) == []


def test_order_removes_only_bought_product(view: Sim) -> None:
    view.click("product_view", product_id="p1")
    view.click("product_view", product_id="p2")
    view.order("p2", offset_s=5)
    [cmd] = view.tick(60)
    assert product_ids(cmd) == ["p1"]


def test_bought_product_is_not_offered_again_by_a_later_view(view: Sim) -> None:
    view.click("product_view", product_id="p1")
    view.order("p1", offset_s=1)
    view.clock.advance(10)
    view.click("product_view", product_id="p2")
    [cmd] = view.tick(60)
    assert product_ids(cmd) == ["p2"]


def test_view_applied_after_the_order_that_bought_it_arms_nothing(view: Sim) -> None:
    # Clicks and orders are separate topics: the order may be applied first.
    view.order("p1")
    view.click("product_view", product_id="p1", offset_s=-5)
    assert view.tick(3600) == []
    assert [s.value for s in view.state.views] == []


def test_late_view_of_another_product_still_arms(view: Sim) -> None:
    view.order("p1")
    view.click("product_view", product_id="p2", offset_s=-5)
    [cmd] = view.tick(60)
    assert product_ids(cmd) == ["p2"]


def test_view_of_product_already_in_cart_arms_nothing(view: Sim) -> None:
    view.click("cart_add", product_id="p1")
    before = view.state
    view.click("product_view", product_id="p1")
    assert view.state.runs == before.runs == ()


def test_order_of_unrelated_product_does_not_cancel_view(view: Sim) -> None:
    view.click("product_view", product_id="p1")
    view.order("p9", offset_s=5)
    assert len(view.tick(60)) == 1


# -- abandoned_category ------------------------------------------------------------


def test_category_fires(category: Sim) -> None:
    category.click("category_view", category_id="cat1")
    assert category.tick(59.999) == []
    [cmd] = category.tick(0.001)
    assert cmd.kind == "abandoned_category"
    assert cmd.context.category == {"category_id": "cat1"}
    assert cmd.context.items == ()


def test_order_in_category_via_catalogue_cancels(category: Sim) -> None:
    category.click("category_view", category_id="cat1")
    category.order("p3", offset_s=5)  # p3 -> cat1 in the catalogue mapping
    assert category.tick(3600) == []


def test_order_in_category_via_product_view_cancels() -> None:
    sim = Sim(make_trigger("abandoned_category", delay=60), categories={})
    sim.click("category_view", category_id="cat7")
    sim.click("product_view", product_id="p7", category_id="cat7")
    sim.order("p7", offset_s=5)
    assert sim.tick(3600) == []


def test_category_view_applied_after_an_order_from_it_arms_nothing(category: Sim) -> None:
    category.order("p3")  # p3 -> cat1; the view before it is applied after it
    category.click("category_view", category_id="cat1", offset_s=-5)
    assert category.tick(3600) == []


def test_category_view_after_an_order_from_it_still_arms(category: Sim) -> None:
    category.order("p3", offset_s=-5)
    category.click("category_view", category_id="cat1")
    assert len(category.tick(60)) == 1


def test_late_category_view_of_another_category_still_arms(category: Sim) -> None:
    category.order("p2")  # p2 -> cat2
    category.click("category_view", category_id="cat1", offset_s=-5)
    assert len(category.tick(60)) == 1


def test_order_in_other_category_does_not_cancel(category: Sim) -> None:
    category.click("category_view", category_id="cat1")
    category.order("p2", offset_s=5)  # p2 -> cat2
    [cmd] = category.tick(60)
    assert cmd.context.category["category_id"] == "cat1"


def test_unknown_product_order_does_not_cancel_category(category: Sim) -> None:
    category.click("category_view", category_id="cat1")
    category.order("unknown", offset_s=5)
    assert len(category.tick(60)) == 1


def test_latest_category_is_the_one_sent(category: Sim) -> None:
    category.click("category_view", category_id="cat1")
    category.clock.advance(10)
    category.click("category_view", category_id="cat2")
    [cmd] = category.tick(60)
    assert cmd.context.category["category_id"] == "cat2"


# -- abandoned_search --------------------------------------------------------------


def test_search_fires_with_query(search: Sim) -> None:
    search.click("search", query="red shoes")
    [cmd] = search.tick(60)
    assert cmd.kind == "abandoned_search"
    assert cmd.context.search_query == "red shoes"
    assert cmd.context.items == ()


@pytest.mark.parametrize("bought", ["p1", "p2", "anything"])
def test_any_order_cancels_search(search: Sim, bought: str) -> None:
    search.click("search", query="red shoes")
    search.order(bought, offset_s=5)
    assert search.tick(3600) == []


def test_search_without_query_is_ignored(search: Sim) -> None:
    before = search.state
    search.click("search", query=None)
    assert search.state.runs == before.runs == ()


# -- several triggers at once ------------------------------------------------------


def test_one_order_answers_each_kind_independently() -> None:
    sim = Sim(*(make_trigger(k, delay=60) for k in KINDS))
    sim.click("product_view", product_id="p1")
    sim.click("product_view", product_id="p2")
    sim.click("category_view", category_id="cat2")
    sim.click("search", query="socks")
    sim.click("cart_add", product_id="p1")
    sim.order("p1", offset_s=1)
    sent = sim.tick(60)
    # cart and search are answered by any order; p2 still viewed; cat2 not bought.
    assert sorted(c.kind for c in sent) == ["abandoned_category", "abandoned_view"]
    [view_cmd] = [c for c in sent if c.kind == "abandoned_view"]
    assert product_ids(view_cmd) == ["p2"]


def test_two_triggers_of_one_kind_fire_separately() -> None:
    sim = Sim(
        make_trigger("abandoned_cart", delay=60, id="cart-1h"),
        make_trigger("abandoned_cart", delay=120, id="cart-2h"),
    )
    sim.click("cart_add", product_id="p1")
    assert [c.trigger_id for c in sim.tick(60)] == ["cart-1h"]
    assert [c.trigger_id for c in sim.tick(60)] == ["cart-2h"]
