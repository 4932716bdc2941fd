"""Builders shared by the tests/test_logic_*.py files (no tests of its own).

Everything is pure: a ``Sim`` holds one customer's state, a ``ManualClock`` and the
commands sent so far; it calls ``apply_event`` / ``fire_due`` the way the workers do.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from nudge.clock import ManualClock
from nudge.flows.plan import FlowPlan, FlowSet
from nudge.models.commands import SendCommand
from nudge.models.events import ClickEvent, CustomerEvent, OrderEvent, OrderItem
from nudge.models.state import CustomerState, Profile
from nudge.streams.logic import apply_event, fire_due

CUSTOMER = "c1"
EMAIL = "ann@example.com"
KINDS = ("abandoned_cart", "abandoned_view", "abandoned_category", "abandoned_search")

_ids = itertools.count(1)


def make_trigger(kind: str, delay: float = 60, **kw: Any) -> FlowPlan:
    """A valid shorthand definition; ``follow_up=30`` is short for ``{"delay": 30}``."""
    data: dict[str, Any] = {"id": kw.pop("id", kind), "kind": kind, "delay": delay}
    data.setdefault("subject", "Hello {{ customer.first_name }}")
    if isinstance(kw.get("follow_up"), int | float):
        kw["follow_up"] = {"delay": kw["follow_up"], "subject": "Still there?"}
    data.update(kw)
    return FlowPlan.parse(data)


def click(type: str, ts: int, **kw: Any) -> ClickEvent:
    kw.setdefault("customer_id", CUSTOMER)
    return ClickEvent(event_id=f"e{next(_ids)}", type=type, ts=ts, **kw)


def order(ts: int, *product_ids: str, type: str = "order_placed", **kw: Any) -> OrderEvent:
    items = [OrderItem(product_id=pid, quantity=1, price=10.0) for pid in product_ids]
    kw.setdefault("customer_id", CUSTOMER)
    kw.setdefault("order_id", f"o{next(_ids)}")
    return OrderEvent(event_id=f"e{next(_ids)}", type=type, ts=ts, items=items, **kw)


def customer(ts: int = 0, **kw: Any) -> CustomerEvent:
    kw.setdefault("customer_id", CUSTOMER)
    return CustomerEvent(event_id=f"e{next(_ids)}", ts=ts, **kw)


def new_state(email: str | None = EMAIL, **profile: Any) -> CustomerState:
    return CustomerState(CUSTOMER, profile=Profile(email=email, **profile))


#: Per kind: the click that opens an episode, and an order that answers it.
OPEN = {
    "abandoned_cart": dict(type="cart_add", product_id="p1", quantity=1, price=9.5),
    "abandoned_view": dict(type="product_view", product_id="p1"),
    "abandoned_category": dict(type="category_view", category_id="cat1"),
    "abandoned_search": dict(type="search", query="red shoes"),
}
CATALOGUE: Mapping[str, Sequence[str]] = {"p1": ["cat1"], "p2": ["cat2"], "p3": ["cat1"]}


class Sim:
    """One customer, a manual clock, and everything ``fire_due`` has produced."""

    def __init__(
        self,
        *definitions: FlowPlan,
        state: CustomerState | None = None,
        categories: Mapping[str, Sequence[str]] = CATALOGUE,
        smart_sending_ms: int = 0,
    ) -> None:
        self.clock = ManualClock()
        # Smart sending off unless asked: these tests are about each kind's own rules.
        self.smart_sending_ms = smart_sending_ms
        self.triggers = FlowSet(definitions, smart_sending_ms=smart_sending_ms)
        self.state = state if state is not None else new_state()
        self.categories = categories
        self.sent: list[SendCommand] = []

    @property
    def now(self) -> int:
        return self.clock.now_ms()

    def at(self, offset_s: float = 0) -> int:
        """An event time relative to now (negative: in the past)."""
        return self.now + int(offset_s * 1000)

    def apply(self, event: Any) -> CustomerState:
        self.state = apply_event(self.state, event, self.triggers, self.now, self.categories)
        return self.state

    def click(self, type: str, offset_s: float = 0, **kw: Any) -> CustomerState:
        return self.apply(click(type, self.at(offset_s), **kw))

    def open(self, kind: str, offset_s: float = 0, **override: Any) -> CustomerState:
        return self.click(**{**OPEN[kind], **override}, offset_s=offset_s)

    def order(self, *product_ids: str, offset_s: float = 0, **kw: Any) -> CustomerState:
        return self.apply(order(self.at(offset_s), *product_ids, **kw))

    def fire(self) -> list[SendCommand]:
        before = self.state
        self.state, commands = fire_due(self.state, self.triggers, self.now)
        if not commands and self.state.runs == before.runs:
            assert self.state is before, "fire_due changed nothing but returned a new state"
        self.sent.extend(commands)
        return commands

    def tick(self, seconds: float) -> list[SendCommand]:
        self.clock.advance(seconds)
        return self.fire()

    def reconfigure(self, *definitions: FlowPlan) -> None:
        self.triggers = FlowSet(definitions, smart_sending_ms=self.smart_sending_ms)
