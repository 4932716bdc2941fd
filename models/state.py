"""Per-customer state kept in the ``customer-state`` Faust table.

Immutable values: the logic returns a new ``CustomerState`` (or the same object when
nothing changed, so the worker can skip the changelog write), and the worker always
reassigns ``table[key] = new``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EMPTY: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)
class CartLine:
    product_id: str
    quantity: int
    price: float


@dataclass(frozen=True, slots=True)
class Seen:
    """A viewed or bought product, a browsed category or a search query, and when."""

    value: str
    ts: int
    category_id: str | None = None


@dataclass(frozen=True, slots=True)
class Pending:
    """An armed timer: trigger ``trigger_id`` sends step ``step`` at ``due_ms``.

    ``episode`` identifies the abandonment episode (the event time that opened or
    last renewed it); with the step it makes the send command id stable.
    ``payload`` is the kind's snapshot: product ids, a category, a query.
    """

    trigger_id: str
    step: int
    due_ms: int
    episode: int
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Profile:
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    timezone: str | None = None
    consent: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)

    def as_context(self, customer_id: str) -> dict[str, Any]:
        return {
            "customer_id": customer_id,
            "email": self.email,
            "phone": self.phone,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "timezone": self.timezone,
            "consent": dict(self.consent),
            "attributes": dict(self.attributes),
        }


@dataclass(frozen=True, slots=True)
class CustomerState:
    customer_id: str
    partition: int = -1
    profile: Profile = field(default_factory=Profile)
    cart: tuple[CartLine, ...] = ()
    views: tuple[Seen, ...] = ()
    categories: tuple[Seen, ...] = ()
    searches: tuple[Seen, ...] = ()
    last_activity_ms: int = 0
    last_order_ms: int = 0
    orders: int = 0
    pending: tuple[Pending, ...] = ()
    #: Ids of the latest non-idempotent events (cart changes, orders): Kafka delivers
    #: at least once, and a redelivered cart_add must not add the item twice.
    recent_events: tuple[str, ...] = ()
    #: The latest products bought, newest first: recommendations leave them out.
    bought: tuple[Seen, ...] = ()

    def evolve(self, **changes: Any) -> CustomerState:
        """``dataclasses.replace`` without its introspection: this runs per event."""
        return _evolve(self, changes)

    def next_due_ms(self) -> int | None:
        return min((p.due_ms for p in self.pending), default=None)

    def pending_for(self, trigger_id: str) -> Pending | None:
        for p in self.pending:
            if p.trigger_id == trigger_id:
                return p
        return None


def _compile_evolve() -> Any:
    # Generated like dataclasses' own __init__: one straight line per field is about
    # twice as fast as a loop with getattr.
    lines = [
        f"    _set(new, {f!r}, changes[{f!r}] if {f!r} in changes else self.{f})"
        for f in CustomerState.__slots__
    ]
    source = (
        "def evolve(self, changes):\n    new = _new(cls)\n"
        + "\n".join(lines)
        + "\n    return new\n"
    )
    namespace: dict[str, Any] = {"_new": object.__new__, "_set": object.__setattr__,
                                 "cls": CustomerState}  # fmt: skip
    exec(source, namespace)
    return namespace["evolve"]


_evolve = _compile_evolve()
