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


#: Where a run stands in its flow: step indexes, and the branch names between them
#: (``(2, "then", 0)``: the first step of the ``then`` branch of step 2).
StepPath = tuple[int | str, ...]


@dataclass(frozen=True, slots=True)
class Run:
    """A customer's journey through one flow: at step ``at``, resuming at ``due_ms``.

    ``episode`` is when the run started (the event time that opened or last restarted
    it); with the flow id, ``key`` and the send's ordinal it makes the send command id
    stable. ``version`` pins the flow definition the run started on. ``payload`` is
    the trigger's snapshot: product ids, a category, a query, the event.
    ``waiting_for`` names the event a ``wait_for`` step waits for, with its timeout
    at ``due_ms``.
    """

    flow_id: str
    at: StepPath
    due_ms: int
    episode: int
    payload: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    key: str = ""
    variant: str | None = None
    waiting_for: str | None = None


@dataclass(frozen=True, slots=True)
class FlowMark:
    """What a customer's past runs of one flow leave behind, for ``reentry`` and smart
    sending: when a run last started, and when (and by which run) it last mailed."""

    flow_id: str
    started_ms: int = 0
    sent_ms: int = 0
    sent_episode: int = -1


@dataclass(frozen=True, slots=True)
class Profile:
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    timezone: str | None = None
    consent: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    #: When each channel's consent last changed (epoch ms): the time an opt-out is
    #: compared with when a re-subscription arrives.
    consent_at: dict[str, int] = field(default_factory=dict)
    #: The address whose hard bounce opted email out, and the email consent before it:
    #: a bounce stops an address, not the person, so a new address restores that consent.
    bounced_email: str | None = None
    consent_before_bounce: str | None = None

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
            "tags": list(self.tags),
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
    runs: tuple[Run, ...] = ()
    #: Ids of the latest non-idempotent events (cart changes, orders): Kafka delivers
    #: at least once, and a redelivered cart_add must not add the item twice.
    recent_events: tuple[str, ...] = ()
    #: The latest products bought, newest first: recommendations leave them out.
    bought: tuple[Seen, ...] = ()
    flow_marks: tuple[FlowMark, ...] = ()
    total_spent: float = 0.0
    first_order_ms: int = 0
    #: When the customer id was first seen (0: before flows kept it, or never).
    created_ms: int = 0
    #: Categories of the latest orders and when, newest first. Clicks and orders come
    #: on separate topics: a category browsed before an order may be applied after it.
    bought_categories: tuple[Seen, ...] = ()

    def evolve(self, **changes: Any) -> CustomerState:
        """``dataclasses.replace`` without its introspection: this runs per event."""
        return _evolve(self, changes)

    def next_due_ms(self) -> int | None:
        return min((r.due_ms for r in self.runs), default=None)

    def run_of(self, flow_id: str) -> Run | None:
        for run in self.runs:
            if run.flow_id == flow_id:
                return run
        return None

    def mark_of(self, flow_id: str) -> FlowMark | None:
        for mark in self.flow_marks:
            if mark.flow_id == flow_id:
                return mark
        return None


def bought_since(seen: tuple[Seen, ...], value: str, ts: int) -> bool:
    """Whether ``value`` (a product in ``bought``, a category in ``bought_categories``)
    was bought at ``ts`` or later: an event of ``ts`` applied after that order is stale."""
    return any(s.value == value and s.ts >= ts for s in seen)


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
